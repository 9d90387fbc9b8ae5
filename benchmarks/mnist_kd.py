"""Benchmark: Hinton et al.'s MNIST distillation experiment at full size, written to JSON.

    .venv/bin/python benchmarks/mnist_kd.py                 # full mode, results/mnist_kd_full.json
    .venv/bin/python benchmarks/mnist_kd.py --mode fast     # the chapter-06 fast settings
    .venv/bin/python benchmarks/mnist_kd.py --readme-only   # rewrite the README table from the JSON

Trains (or loads from the course cache) the teacher and the two scratch students of
``course_lib.cases.mnist.models``, distils the 800-800 student at T=20 with and without jitter
(``course_lib.cases.mnist.distil.compare_students``) and writes every network's test errors and training
time, the share of the teacher-student gap that distillation closes, the paper's figures, the
total wall time and the device. The course's goal in full mode: the distilled student closes at
least 80 % of the gap (the paper: 91 %).
"""

from __future__ import annotations

import argparse

from course_lib.cases.mnist.distil import PAPER_ERRORS, compare_students
from course_lib.context import CourseContext
from course_lib.course.bench import Benchmark
from course_lib.data import load_mnist


GOAL_GAP_CLOSED = 0.80
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


def measure(args: argparse.Namespace, context: CourseContext) -> dict:
    """Train (or load) the teacher and the scratch students, distil two students, tabulate all five."""
    comparison = compare_students(context, load_mnist(), temperature=args.temperature, alpha=args.alpha)
    gap = comparison.gap_closed
    for name, row in comparison.rows.items():
        print(f"{name:<26} {row['errors']:>5} errors  {row['seconds']:>8.1f} s")
    print(f"gap closed {gap:.1%} (goal {GOAL_GAP_CLOSED:.0%})")
    return {
        "temperature": comparison.temperature,
        "alpha": comparison.alpha,
        "rows": comparison.rows,
        "gap_closed": round(gap, 4),
        "goal_gap_closed": GOAL_GAP_CLOSED,
        "goal_met": gap >= GOAL_GAP_CLOSED,
        "paper": {"errors": PAPER_ERRORS, "gap_closed": round((146 - 74) / (146 - 67), 4)},
        "note": "seconds of a cached network are those of the run that trained it",
    }


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--temperature", type=float, default=20.0)
    parser.add_argument("--alpha", type=float, default=0.5, help="weight of the hard-label term")


BENCHMARK = Benchmark("mnist_kd", __doc__, measure, readme_marker="mnist-kd", readme_table=readme_table,
                      threads=2, options=_options)


main = BENCHMARK.run


if __name__ == "__main__":
    main()
