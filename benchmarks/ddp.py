"""Benchmark: the MNIST student distilled in one process and in two (torchrun, DDP), digits per second.

    .venv/bin/python benchmarks/ddp.py --mode fast --device cpu   # this CPU: 1 process × 1 and × 2 threads, 2 × 1
    .venv/bin/python benchmarks/ddp.py --mode fast --device cuda  # a GPU machine: 1 process, and one per GPU
    .venv/bin/python benchmarks/ddp.py --readme-only              # rewrite the README table from the JSON

Each setting runs ``python -m course_lib.cases.distributed`` (the teacher from the course cache,
frozen on every rank; the 800-800 student wrapped in DistributedDataParallel) for the same epochs,
global batch and seed, three times, and keeps the fastest run. The test errors show that every
setting trains the same student.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from course_lib.context import REPO_ROOT, CourseContext
from course_lib.course.bench import Benchmark

REPEATS = 3


def settings(device: str) -> list[tuple[int, int]]:
    """(processes, threads per process) to compare: on a CPU the same cores used by threads or by processes."""
    if device == "cuda":
        gpus = torch.cuda.device_count()
        return [(1, 1)] + ([(gpus, 1)] if gpus > 1 else [])
    cores = os.cpu_count() or 1
    return [(1, 1), (1, cores), (cores, 1)] if cores > 1 else [(1, 1)]


def _one_run(processes: int, threads: int, device: str, args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "result.json"
        command = [sys.executable, "-m", "course_lib.cases.distributed", "--nproc", str(processes), "--threads",
                   str(threads), "--mode", args.mode, "--epochs", str(args.train_epochs), "--device", device,
                   "--out", str(out)]
        env = {**os.environ, "COURSE_PROGRESS": "0", "OMP_NUM_THREADS": str(threads)}
        done = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=1800)
        if done.returncode != 0:
            raise RuntimeError(f"{processes} process(es) × {threads} thread(s) failed:\n{done.stderr[-3000:]}")
        return json.loads(out.read_text())


def measure(args: argparse.Namespace, context: CourseContext) -> dict:
    """Every setting, fastest of three runs."""
    rows = []
    device = context.device.type
    for processes, threads in settings(device):
        runs = [_one_run(processes, threads, device, args) for _ in range(REPEATS)]
        best = max(runs, key=lambda run: run["samples_per_second"])
        best["samples_per_second_all"] = [run["samples_per_second"] for run in runs]
        rows.append(best)
        print(f"{processes} process(es) × {threads} thread(s): {best['samples_per_second']:,.0f} digits/s "
              f"(runs: {', '.join(f'{s:,.0f}' for s in best['samples_per_second_all'])}), "
              f"{best['test_errors']} test errors")
    return {"rows": rows, "epochs": args.train_epochs, "repeats": REPEATS,
            "same_student": len({row["test_errors"] for row in rows}) == 1}


def readme_table(payload: dict) -> str:
    """The README block: digits per second for each setting."""
    first = payload["rows"][0]
    lines = [f"_Source: `results/ddp_{payload['mode']}.json` ({payload['device']}; the 800-800 student distilled "
             f"for {payload['epochs']} epochs, global batch {first['global_batch']}, fastest of "
             f"{payload['repeats']} runs)._", "",
             "| processes × threads | backend | digits/s | vs 1 × 1 | test errors |", "|---|---|---|---|---|"]
    for row in payload["rows"]:
        ratio = row["samples_per_second"] / first["samples_per_second"]
        lines.append(f"| {row['world_size']} × {row['threads_per_process']} | {row['backend']} | "
                     f"{row['samples_per_second']:,.0f} | {ratio:.2f}× | {row['test_errors']} |")
    same = "the same" if payload["same_student"] else "not the same"
    lines += ["", f"Every setting trained {same} student (equal test errors)."]
    return "\n".join(lines)


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--train-epochs", type=int, default=2, help="the student's epochs in every setting")


BENCHMARK = Benchmark("ddp", __doc__, measure, readme_marker="ddp", readme_table=readme_table, threads=os.cpu_count() or 1,
                      options=_options)


main = BENCHMARK.run


if __name__ == "__main__":
    main()
