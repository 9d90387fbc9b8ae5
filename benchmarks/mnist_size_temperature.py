"""Benchmark: MNIST students of four widths, each trained alone and distilled at five temperatures, written to JSON.

    .venv/bin/python benchmarks/mnist_size_temperature.py                     # full mode
    .venv/bin/python benchmarks/mnist_size_temperature.py --student-epochs 30 # a CPU run: students capped
    .venv/bin/python benchmarks/mnist_size_temperature.py --readme-only       # rewrite the README table

Loads (or trains) chapter 06's teacher for the mode from the course cache and runs
``course_lib.cases.mnist.distil.size_temperature_sweep``: for 30-30, 100-100, 300-300 and 800-800 students
on the scratch student's recipe, the test errors of the labels-only student and of students
distilled at T = 1, 2.5, 4, 8 and 20 (α = 0.5 on the hard labels), with the best temperature of
each width and what Hinton et al. (2015) report. Chapter 10 answers "how large should the
student be, and at what temperature?" from this file.
"""

from __future__ import annotations

import argparse
import dataclasses

from course_lib.cases.mnist.distil import SIZE_SWEEP_PAPER, size_temperature_sweep
from course_lib.cases.mnist.models import mnist_model, mnist_recipe
from course_lib.context import CourseContext
from course_lib.course.bench import Benchmark, epoch_caps_text
from course_lib.data import load_mnist


WIDTHS = (30, 100, 300, 800)
TEMPERATURES = (1.0, 2.5, 4.0, 8.0, 20.0)
ALPHA = 0.5


def readme_table(payload: dict) -> str:
    """The README block: test errors per width (labels only, then each temperature) and the best T."""
    temperatures = payload["temperatures"]
    lines = [
        f"_Source: `results/mnist_size_temperature_{payload['mode']}.json` ({payload['mode']} mode"
        f"{epoch_caps_text(payload)}, {payload['device']}, teacher with {payload['teacher_errors']} test errors, "
        f"α={payload['alpha']:g} on the hard labels, {payload['wall_seconds'] / 60:.0f} min wall time)._",
        "",
        "| student | parameters | labels only | " + " | ".join(f"T={t:g}" for t in temperatures) + " | best T |",
        "|---|---|---|" + "---|" * len(temperatures) + "---|",
    ]
    for width in payload["widths"]:
        key = str(width)
        lines.append(f"| {width}-{width} | {payload['parameters'][key]:,} | {payload['scratch'][key]} | "
                     + " | ".join(str(e) for e in payload["distilled"][key])
                     + f" | {payload['best_temperature'][key]:g} |")
    lines += ["", "Hinton et al. (2015): " + "; ".join(payload["paper"].values()) + "."]
    return "\n".join(lines)


def measure(args: argparse.Namespace, context: CourseContext) -> dict:
    """Load (or train) chapter 06's teacher, then sweep student widths and temperatures."""
    data = load_mnist()
    teacher = mnist_model(context, "teacher", data=data)
    recipe = mnist_recipe("student_scratch", args.mode)
    if args.student_epochs is not None:
        recipe = dataclasses.replace(recipe, epochs=min(recipe.epochs, args.student_epochs))
    sweep = size_temperature_sweep(teacher.model, data, recipe, widths=WIDTHS, temperatures=TEMPERATURES,
                                   alpha=ALPHA, device=context.device)
    payload = {"student_recipe": recipe.to_dict(), "teacher_errors": teacher.metrics["test_errors"],
               **sweep.to_dict(), "paper": SIZE_SWEEP_PAPER,
               "note": "wall_seconds includes training the teacher when it was not in the cache"}
    print(readme_table({**payload, "mode": args.mode, "device": str(context.device), "wall_seconds": 0.0}))
    return payload


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--student-epochs", type=int, default=None,
                        help="cap the students' epochs (the teacher is chapter 06's cached teacher)")


BENCHMARK = Benchmark("mnist_size_temperature", __doc__, measure, readme_marker="mnist-size",
                      readme_table=readme_table, threads=2, options=_options)


main = BENCHMARK.run


if __name__ == "__main__":
    main()
