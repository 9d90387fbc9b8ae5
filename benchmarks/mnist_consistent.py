"""Benchmark: a CNN teacher distilled into the 800-800 student on the same jittered digits, against the control, over seeds.

    .venv/bin/python benchmarks/mnist_consistent.py                 # full mode, seeds 0 1 2
    .venv/bin/python benchmarks/mnist_consistent.py --mode fast     # the chapter-06 fast settings, one seed
    .venv/bin/python benchmarks/mnist_consistent.py --readme-only   # rewrite the README table from the JSON

Trains (or loads from the course cache) the convolutional teacher of
``course_lib.cases.mnist.models`` (role ``teacher_cnn``), then for every seed the 800-800 student
alone on jittered digits (the control) and distilled from the teacher on the very jittered digit
it sees (``course_lib.cases.mnist.consistent``). The course's goals in full mode: the distilled
student makes at most Hinton et al.'s 74 test errors, and fewer than the control by more than
twice the seed-to-seed spread.
"""

from __future__ import annotations

import argparse

from course_lib.cases.mnist.consistent import CONSISTENT_SEEDS, consistent_student_recipe, consistent_study
from course_lib.cases.mnist.models import mnist_recipe
from course_lib.context import CourseContext
from course_lib.course.bench import Benchmark
from course_lib.data import load_mnist


def readme_table(payload: dict) -> str:
    """The README block: the teacher, the control and the distilled student per seed, the verdict and the goals."""
    student = payload["recipes"]["student"]
    lines = [
        f"_Source: `results/mnist_consistent_{payload['mode']}.json` ({payload['mode']} mode, {payload['device']}; "
        f"seeds {', '.join(map(str, payload['seeds']))}; students {payload['epochs']} epochs on jittered digits, "
        f"T = {payload['temperature']:g}, α = {payload['alpha']:g}; {payload['wall_seconds'] / 60:.0f} min wall "
        f"time; {student['train_size'] or 60_000:,} training digits)._",
        "",
        "| network | test errors (mean ± sd) | per seed |",
        "|---|---|---|",
        f"| teacher: CNN 16-32-256, dropout, jitter | {payload['teacher']['errors']} | |",
    ]
    for key, title in (("control", "student 800-800, labels only, jitter (control)"),
                       ("distilled", "student 800-800, distilled on the same jittered digits")):
        row = payload[key]
        lines.append(f"| {title} | {row['mean_errors']:.1f} ± {row['std_errors']:.1f} | "
                     f"{' / '.join(str(e) for e in row['errors'])} |")
    lines += ["", f"Verdict: {payload['verdict']}.", "", "| goal | target | measured | met |", "|---|---|---|---|"]
    for goal in payload["goals"]:
        lines.append(f"| {goal['goal']} | {goal['target']} | {goal['measured']} | {'yes' if goal['met'] else 'no'} |")
    return "\n".join(lines)


def measure(args: argparse.Namespace, context: CourseContext) -> dict:
    """Train (or load) the CNN teacher, then a control and a distilled student for every seed."""
    seeds = args.seeds if args.seeds is not None else list(CONSISTENT_SEEDS[args.mode])
    study = consistent_study(context, load_mnist(), seeds=seeds, temperature=args.temperature, alpha=args.alpha)
    table = study.to_dict()
    print(f"teacher (CNN) {study.teacher_errors} errors")
    for key in ("control", "distilled"):
        print(f"{key:<10} {table[key]['mean_errors']:6.1f} ± {table[key]['std_errors']:.1f}  {table[key]['errors']}")
    print(study.verdict)
    for goal in table["goals"]:
        print(f"  {'met    ' if goal['met'] else 'not met'} {goal['goal']}: {goal['measured']} (goal {goal['target']})")
    return {**table, "recipes": {"teacher": mnist_recipe("teacher_cnn", args.mode).to_dict(),
                                 "student": consistent_student_recipe(args.mode).to_dict()},
            "note": "seconds of the cached teacher are those of the run that trained it"}


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seeds", nargs="+", type=int, default=None, help="default: 0 1 2 in full mode, 0 in fast")
    parser.add_argument("--temperature", type=float, default=20.0)
    parser.add_argument("--alpha", type=float, default=0.5, help="weight of the hard-label term")


BENCHMARK = Benchmark("mnist_consistent", __doc__, measure, readme_marker="mnist-consistent",
                      readme_table=readme_table, threads=2, options=_options)


main = BENCHMARK.run


if __name__ == "__main__":
    main()
