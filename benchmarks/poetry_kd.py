"""Benchmark: case 2 of the lecture deck, a Tang-poetry language model and its students, written to JSON.

    .venv/bin/python benchmarks/poetry_kd.py                # full mode, results/poetry_kd_full.json
    .venv/bin/python benchmarks/poetry_kd.py --mode fast    # the small settings
    .venv/bin/python benchmarks/poetry_kd.py --epochs 6     # every model capped at 6 epochs
    .venv/bin/python benchmarks/poetry_kd.py --readme-only  # rewrite the README table from the JSON

Trains the teacher and the three students of ``course_lib.cases.poetry`` (labels only, word-level
and sequence-level distillation) on the five-character regulated verse of the Tang poems and
measures each with ``compare_poetry``: test perplexity, the share of sampled poems in the form,
the teacher's NLL of those samples, parameters, the CPU time to write a poem at batch 1. The JSON
holds every row with three sampled poems each, the recipes, Kim & Rush's published figures for
comparison, the wall time and the device.
"""

from __future__ import annotations

import argparse

from course_lib.cases.poetry import POETRY_ROLES, compare_poetry, poetry_recipe
from course_lib.context import CourseContext
from course_lib.course.bench import Benchmark, epoch_caps_text
from course_lib.data import load_tang_poems
from course_lib.train.recipe import cap_epochs


def readme_table(payload: dict) -> str:
    """The README block: every model's perplexity, share of samples in form, teacher NLL, size and speed."""
    rows = payload["rows"]
    teacher = rows["teacher"]
    paper = payload["kim_rush_2016"]
    lines = [
        f"_Source: `results/poetry_kd_{payload['mode']}.json` ({payload['mode']} mode{epoch_caps_text(payload)}, "
        f"{payload['device']}, {payload['wall_seconds'] / 60:.0f} min wall time; {payload['train_poems']:,} training "
        f"and {payload['test_poems']:,} test poems; {payload['samples']} poems sampled per model at temperature 1; "
        "time to write one poem: one CPU thread, batch 1, key/value cache)._",
        "",
        "| model | parameters | test perplexity | samples in form | teacher's NLL of the samples | ms per poem |",
        "|---|---|---|---|---|---|",
    ]
    for role in (role for role in POETRY_ROLES if role in rows):
        row = rows[role]
        lines.append(
            f"| {row['title']} | {row['parameters']:,} ({row['parameters'] / teacher['parameters']:.0%}) | "
            f"{row['test_perplexity']:.1f} | {100 * row['in_form']:.1f} % | {row['teacher_nll']:.2f} | "
            f"{row['ms_per_poem']:.1f} |"
        )
    lines += [
        "",
        f"Kim & Rush (2016, WMT English→German, greedy BLEU): teacher {paper['teacher']}, student without KD "
        f"{paper['no_kd']}, word-level KD {paper['word_kd']}, sequence-level KD {paper['sequence_kd']}.",
    ]
    return "\n".join(lines)


def measure(args: argparse.Namespace, context: CourseContext) -> dict:
    """Train the teacher and the three students on the poems and measure each."""
    recipes = cap_epochs({role: poetry_recipe(role, args.mode) for role in POETRY_ROLES}, args.epochs,
                         args.student_epochs)
    comparison = compare_poetry(context, corpus=load_tang_poems(), recipes=recipes, samples=args.samples,
                                latency_rounds=args.latency_rounds)
    for row in comparison.rows.values():
        print(f"{row.title:<40} ppl {row.test_perplexity:7.1f}  in form {100 * row.in_form:5.1f} %  "
              f"teacher NLL {row.teacher_nll:5.2f}  {row.parameters:>9,} params  {row.ms_per_poem:6.1f} ms  "
              f"{row.train_seconds:7.1f} s")
        print(f"    {row.examples[0]}")
    return {"recipes": {role: recipe.to_dict() for role, recipe in recipes.items()},
            "latency_rounds": args.latency_rounds, **comparison.to_dict()}


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--samples", type=int, default=500, help="poems sampled per model for the form check")


BENCHMARK = Benchmark("poetry_kd", __doc__, measure, readme_marker="poetry-kd", readme_table=readme_table,
                      epoch_caps=True, latency_rounds=10, threads=2, options=_options)


main = BENCHMARK.run


if __name__ == "__main__":
    main()
