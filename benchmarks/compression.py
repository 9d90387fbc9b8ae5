"""Benchmark: distillation beside magnitude pruning and int8 quantisation on MNIST, written to JSON.

    .venv/bin/python benchmarks/compression.py               # full mode, results/compression_full.json
    .venv/bin/python benchmarks/compression.py --mode fast   # the fast-mode networks

Loads (or trains) chapter 06's teacher and chapter 08's distilled student
(``course_lib.cases.deploy.bundles.mnist_bundles``) and measures the four rows of
``course_lib.cases.deploy.compression.compression_rows``: the teacher, the teacher magnitude-pruned to the
student's parameter count, the teacher quantised to int8, and the distilled student. The lecture
deck's Table 1 is read from this file.
"""

from __future__ import annotations

import argparse

import onnxruntime

from course_lib.cases.deploy.bundles import MNIST_ALPHA, MNIST_TEMPERATURE, mnist_bundles
from course_lib.cases.deploy.compression import compression_rows
from course_lib.context import CourseContext
from course_lib.course.bench import Benchmark, device_description
from course_lib.data import load_mnist


def measure(args: argparse.Namespace, context: CourseContext) -> dict:
    """Prune, quantise and distil the MNIST teacher to the student's size and measure all four."""
    data = load_mnist()
    pair = mnist_bundles(context, data=data)
    rows = compression_rows(pair.teacher, pair.student, data, rounds=args.latency_rounds)
    for row in rows:
        print(f"{row['title']:<58} accuracy {100 * row['accuracy']:6.2f}  {row['nonzero_parameters']:>9,} non-zero  "
              f"{row['size_bytes'] / 1e6:5.2f} MB  {row['latency_batch1_ms']:.3f} ms")
    return {"measured_on": device_description("cpu", 1), "onnxruntime": onnxruntime.__version__,
            "distillation": {"temperature": MNIST_TEMPERATURE, "alpha": MNIST_ALPHA},
            "latency_rounds": args.latency_rounds, "rows": rows}


BENCHMARK = Benchmark("compression", __doc__, measure, latency_rounds=30)


main = BENCHMARK.run


if __name__ == "__main__":
    main()
