"""Benchmark: MNIST students of four widths, each trained alone and distilled at five temperatures, written to JSON.

    .venv/bin/python benchmarks/mnist_size_temperature.py                     # full mode
    .venv/bin/python benchmarks/mnist_size_temperature.py --student-epochs 30 # a CPU run: students capped
    .venv/bin/python benchmarks/mnist_size_temperature.py --readme-only       # rewrite the README table

Loads (or trains) chapter 06's teacher for the mode from the course cache and runs
``course_lib.mnist_kd.size_temperature_sweep``: for 30-30, 100-100, 300-300 and 800-800 students
on the scratch student's recipe, the test errors of the labels-only student and of students
distilled at T = 1, 2.5, 4, 8 and 20 (α = 0.5 on the hard labels), with the best temperature of
each width and what Hinton et al. (2015) report. Chapter 10 answers "how large should the
student be, and at what temperature?" from this file.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from course_lib.data import load_mnist
from course_lib.mnist_kd import SIZE_SWEEP_PAPER, size_temperature_sweep
from course_lib.mnist_zoo import CPU_THREADS, mnist_model, mnist_recipe
from course_lib.notebook import setup_notebook
from course_lib.results import (
    benchmark_header,
    benchmark_output,
    benchmark_parser,
    epoch_caps_text,
    replace_marked_block,
    rewrite_readme_only,
    save_benchmark,
)

WIDTHS = (30, 100, 300, 800)
TEMPERATURES = (1.0, 2.5, 4.0, 8.0, 20.0)
ALPHA = 0.5
README_START = "<!-- mnist-size:start -->"
README_END = "<!-- mnist-size:end -->"


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


def update_readme(readme: Path, payload: dict) -> None:
    """Replace the block between the mnist-size markers of ``readme`` with :func:`readme_table`."""
    replace_marked_block(readme, README_START, README_END, readme_table(payload))


def main(argv: list[str] | None = None) -> Path:
    parser = benchmark_parser("mnist_size_temperature", __doc__.split("\n\n")[0], epoch_caps=True)
    args = parser.parse_args(argv)
    out = benchmark_output(args, "mnist_size_temperature")
    if rewrite_readme_only(args, out, update_readme):
        return out
    if args.epochs is not None:
        parser.error("the teacher is chapter 06's cached teacher: cap only the students with --student-epochs")
    context = setup_notebook(args.mode, device=args.device)
    data = load_mnist()
    start = time.perf_counter()
    teacher = mnist_model(context, "teacher", data=data)
    recipe = mnist_recipe("student_scratch", args.mode)
    if args.student_epochs is not None:
        recipe = dataclasses.replace(recipe, epochs=min(recipe.epochs, args.student_epochs))
    sweep = size_temperature_sweep(teacher.model, data, recipe, widths=WIDTHS, temperatures=TEMPERATURES,
                                   alpha=ALPHA, device=context.device)
    wall = time.perf_counter() - start
    payload = {
        **benchmark_header("mnist_size_temperature", args, context.device, CPU_THREADS),
        "student_recipe": recipe.to_dict(),
        "teacher_errors": teacher.test_errors,
        **sweep.to_dict(),
        "paper": SIZE_SWEEP_PAPER,
        "wall_seconds": round(wall, 1),
        "note": "wall_seconds includes training the teacher when it was not in the cache",
    }
    save_benchmark(out, payload, args, update_readme)
    print(readme_table(payload))
    print(f"wall {wall:.1f} s; wrote {out}")
    return out


if __name__ == "__main__":
    main()
