"""Benchmark: distillation beside magnitude pruning and int8 quantisation on MNIST, written to JSON.

    .venv/bin/python benchmarks/compression.py               # full mode, results/compression_full.json
    .venv/bin/python benchmarks/compression.py --mode fast   # the fast-mode networks

Loads (or trains) chapter 06's teacher and chapter 08's distilled student
(``course_lib.deploy_models.mnist_bundles``) and measures the four rows of
``course_lib.compression.compression_rows``: the teacher, the teacher magnitude-pruned to the
student's parameter count, the teacher quantised to int8, and the distilled student. The lecture
deck's Table 1 is read from this file.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path

import onnxruntime
import torch

from course_lib.compression import compression_rows
from course_lib.data import load_mnist
from course_lib.deploy_models import MNIST_ALPHA, MNIST_TEMPERATURE, mnist_bundles
from course_lib.notebook import setup_notebook
from course_lib.results import benchmark_output, benchmark_parser, device_description, write_json_atomic


def main(argv: list[str] | None = None) -> Path:
    parser = benchmark_parser("compression", __doc__.split("\n\n")[0], readme=False)
    parser.add_argument("--latency-rounds", type=int, default=30)
    args = parser.parse_args(argv)
    out = benchmark_output(args, "compression")
    context = setup_notebook(args.mode, device=args.device)
    start = time.perf_counter()
    data = load_mnist()
    pair = mnist_bundles(context, data=data)
    rows = compression_rows(pair.teacher, pair.student, data, rounds=args.latency_rounds)
    payload = {
        "benchmark": "compression",
        "mode": args.mode,
        "measured_on": device_description("cpu", 1),
        "torch": torch.__version__,
        "onnxruntime": onnxruntime.__version__,
        "recorded_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "distillation": {"temperature": MNIST_TEMPERATURE, "alpha": MNIST_ALPHA},
        "latency_rounds": args.latency_rounds,
        "rows": rows,
        "wall_seconds": round(time.perf_counter() - start, 1),
    }
    write_json_atomic(out, payload)
    for row in rows:
        print(f"{row['title']:<58} accuracy {100 * row['accuracy']:6.2f}  {row['nonzero_parameters']:>9,} non-zero  "
              f"{row['size_bytes'] / 1e6:5.2f} MB  {row['latency_batch1_ms']:.3f} ms")
    print(f"wrote {out}")
    return out


if __name__ == "__main__":
    main()
