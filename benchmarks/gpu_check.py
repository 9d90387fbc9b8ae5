"""Every benchmark on one device in one short run: ``results/<name>_gpu.json`` and a summary, ``results/gpu_check.json``.

On another device the files are named after it (``<name>_cpu.json``, ``gpu_check_cpu.json``).

    make gpu-check                                          # on a machine with a CUDA GPU
    python3 benchmarks/gpu_check.py --budget 480            # the same: full mode, CUDA, 8 minutes
    python3 benchmarks/gpu_check.py --device cpu --mode fast --only compression --results-dir /tmp/r   # a smoke run

The benchmarks run in the order below (the course's central examples first). A benchmark starts
only while the budget has time left; each writes its own results file with the device name and
its wall seconds, and the summary lists what ran, how long it took, what it wrote, and what was
skipped or failed (with the error), so one run on a lent GPU records whatever fits. The data cache
must already hold the corpora (``COURSE_DATA_DIR``): nothing is downloaded on a GPU machine.
"""

from __future__ import annotations

import argparse
import importlib.util
import time
import traceback
from pathlib import Path
from types import ModuleType

import torch

from course_lib.context import REPO_ROOT
from course_lib.course.bench import device_description
from course_lib.files import write_json_atomic

ORDER = ("ner_kd", "ner_reference_kd", "mnist_kd", "ddp", "mnist_consistent", "rnn_vs_transformer", "news_kd", "poetry_kd",
         "qa_kd", "mt_kd", "mnist_size_temperature", "deploy", "compression", "ner_recipe",
         "ner_architectures")


def _script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"{name}_benchmark", REPO_ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line of the GPU check."""
    parser = argparse.ArgumentParser(description=__doc__.strip().split("\n\n")[0])
    parser.add_argument("--device", default="cuda", help="the device every benchmark runs on (default: cuda)")
    parser.add_argument("--mode", choices=("fast", "full"), default="full")
    parser.add_argument("--budget", type=float, default=480.0, help="seconds after which no benchmark starts")
    parser.add_argument("--only", nargs="+", choices=ORDER, default=None, help="run only these benchmarks")
    parser.add_argument("--results-dir", type=Path, default=REPO_ROOT / "results")
    args = parser.parse_args(argv)
    if args.budget <= 0:
        parser.error(f"--budget must be a positive number of seconds, got {args.budget}")
    if torch.device(args.device).type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda was asked for but torch sees no CUDA device; run on a GPU machine or pass "
                     "--device cpu for a smoke run")
    return args


def main(argv: list[str] | None = None) -> Path:
    """Run the benchmarks in :data:`ORDER` within the budget; write the summary and return its path."""
    args = parse_args(argv)
    suffix = "gpu" if torch.device(args.device).type == "cuda" else torch.device(args.device).type
    start = time.perf_counter()
    runs = []
    for name in args.only or ORDER:
        elapsed = time.perf_counter() - start
        if elapsed >= args.budget:
            runs.append({"benchmark": name, "status": "skipped", "reason": f"budget of {args.budget:g} s spent"})
            continue
        out = args.results_dir / f"{name}_{suffix}.json"
        began = time.perf_counter()
        try:
            _script(name).main(["--mode", args.mode, "--device", args.device, "--out", str(out)])
            runs.append({"benchmark": name, "status": "ok", "seconds": round(time.perf_counter() - began, 1),
                         "results": out.name})
        except Exception as error:  # one failing benchmark must not hide the figures of the others
            runs.append({"benchmark": name, "status": "failed", "seconds": round(time.perf_counter() - began, 1),
                         "error": f"{type(error).__name__}: {error}", "traceback": traceback.format_exc(limit=8)})
        print(f"gpu-check: {runs[-1]['benchmark']} {runs[-1]['status']} ({runs[-1].get('seconds', 0):.0f} s)", flush=True)
    summary = args.results_dir / f"gpu_check{'' if suffix == 'gpu' else '_' + suffix}.json"  # gpu_check.json on a GPU
    write_json_atomic(summary, {"device": device_description(args.device, torch.get_num_threads()), "mode": args.mode,
                                "torch": torch.__version__, "budget_seconds": args.budget,
                                "wall_seconds": round(time.perf_counter() - start, 1), "runs": runs})
    print(f"gpu-check: wrote {summary}")
    return summary


if __name__ == "__main__":
    main()
