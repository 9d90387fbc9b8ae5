"""Benchmark: Hinton et al.'s MNIST distillation experiment at full size, written to JSON.

    .venv/bin/python benchmarks/mnist_kd.py                 # full mode, results/mnist_kd_full.json
    .venv/bin/python benchmarks/mnist_kd.py --mode fast     # the chapter-06 fast settings
    .venv/bin/python benchmarks/mnist_kd.py --readme-only   # rewrite the README table from the JSON

Trains (or loads from the course cache) the teacher and the two scratch students of
``course_lib.mnist_zoo``, distils the 800-800 student at T=20 with and without jitter
(``course_lib.mnist_kd.compare_students``) and writes every network's test errors and training
time, the share of the teacher-student gap that distillation closes, the paper's figures, the
total wall time and the device. The course's goal in full mode: the distilled student closes at
least 80 % of the gap (the paper: 91 %).
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path

import torch

from course_lib.data import load_mnist
from course_lib.mnist_kd import PAPER_ERRORS, compare_students
from course_lib.mnist_zoo import CPU_THREADS
from course_lib.notebook import setup_notebook
from course_lib.results import (
    benchmark_output,
    benchmark_parser,
    device_description,
    replace_marked_block,
    rewrite_readme_only,
    save_benchmark,
)

GOAL_GAP_CLOSED = 0.80
README_START = "<!-- mnist-kd:start -->"
README_END = "<!-- mnist-kd:end -->"
ROW_NAMES = {
    "teacher": "teacher 1200-1200, dropout, jitter",
    "student_scratch": "student 800-800, labels only",
    "student_distilled": "student 800-800, distilled (T=20)",
    "student_scratch_jitter": "student 800-800, labels only, jitter (control)",
    "student_distilled_jitter": "student 800-800, distilled on jittered digits",
}


def readme_table(payload: dict) -> str:
    """The README block for a benchmark result: our errors beside the paper's, gap closed, device."""
    paper = payload["paper"]["errors"]
    lines = [
        f"_Source: `results/mnist_kd_{payload['mode']}.json` ({payload['mode']} mode, {payload['device']}, "
        f"T={payload['temperature']:g}, α={payload['alpha']:g} on the hard labels, "
        f"{payload['wall_seconds'] / 60:.0f} min wall time)._",
        "",
        "| network | test errors (ours) | test errors (Hinton et al. 2015) |",
        "|---|---|---|",
    ]
    for name, label in ROW_NAMES.items():
        lines.append(f"| {label} | {payload['rows'][name]['errors']} | {paper.get(name, '–')} |")
    verdict = "met" if payload["goal_met"] else "not met"
    lines.append(
        f"| gap closed by distillation | {payload['gap_closed']:.0%} | {payload['paper']['gap_closed']:.0%} |"
    )
    lines += ["", f"Course goal: at least {payload['goal_gap_closed']:.0%} of the gap closed — {verdict}."]
    return "\n".join(lines)


def update_readme(readme: Path, payload: dict) -> None:
    """Replace the block between the mnist-kd markers of ``readme`` with :func:`readme_table`."""
    replace_marked_block(readme, README_START, README_END, readme_table(payload))


def main(argv: list[str] | None = None) -> Path:
    parser = benchmark_parser("mnist_kd", __doc__.split("\n\n")[0])
    parser.add_argument("--temperature", type=float, default=20.0)
    parser.add_argument("--alpha", type=float, default=0.5, help="weight of the hard-label term")
    args = parser.parse_args(argv)
    out = benchmark_output(args, "mnist_kd")
    if rewrite_readme_only(args, out, update_readme):
        return out

    context = setup_notebook(args.mode, device=args.device)
    start = time.perf_counter()
    comparison = compare_students(context, load_mnist(), temperature=args.temperature, alpha=args.alpha)
    wall = time.perf_counter() - start
    gap = comparison.gap_closed
    payload = {
        "benchmark": "mnist_kd",
        "mode": args.mode,
        "device": device_description(context.device, CPU_THREADS),
        "torch": torch.__version__,
        "recorded_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "temperature": comparison.temperature,
        "alpha": comparison.alpha,
        "rows": comparison.rows,
        "gap_closed": round(gap, 4),
        "goal_gap_closed": GOAL_GAP_CLOSED,
        "goal_met": gap >= GOAL_GAP_CLOSED,
        "paper": {"errors": PAPER_ERRORS, "gap_closed": round((146 - 74) / (146 - 67), 4)},
        "wall_seconds": round(wall, 1),
        "note": "seconds of a cached network are those of the run that trained it",
    }
    save_benchmark(out, payload, args, update_readme)
    for name, row in comparison.rows.items():
        print(f"{name:<26} {row['errors']:>5} errors  {row['seconds']:>8.1f} s")
    print(f"gap closed {gap:.1%} (goal {GOAL_GAP_CLOSED:.0%}); wall {wall:.1f} s; wrote {out}")
    return out


if __name__ == "__main__":
    main()
