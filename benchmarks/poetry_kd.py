"""Benchmark: case 2 of the lecture deck, a Tang-poetry language model and its students, written to JSON.

    .venv/bin/python benchmarks/poetry_kd.py                # full mode, results/poetry_kd_full.json
    .venv/bin/python benchmarks/poetry_kd.py --mode fast    # the small settings
    .venv/bin/python benchmarks/poetry_kd.py --epochs 6     # every model capped at 6 epochs
    .venv/bin/python benchmarks/poetry_kd.py --readme-only  # rewrite the README table from the JSON

Trains the teacher and the three students of ``course_lib.poetry_kd`` (labels only, word-level
and sequence-level distillation) on the five-character regulated verse of the Tang poems and
measures each with ``compare_poetry``: test perplexity, the share of sampled poems in the form,
the teacher's NLL of those samples, parameters, the CPU time to write a poem at batch 1. The JSON
holds every row with three sampled poems each, the recipes, Kim & Rush's published figures for
comparison, the wall time and the device.
"""

from __future__ import annotations

import time
from pathlib import Path

from course_lib.data import load_tang_poems
from course_lib.notebook import setup_notebook
from course_lib.poetry_kd import (
    POETRY_CPU_THREADS,
    POETRY_ROLES,
    compare_poetry,
    poetry_recipe,
)
from course_lib.results import (
    benchmark_header,
    benchmark_output,
    benchmark_parser,
    cap_epochs,
    epoch_caps_text,
    replace_marked_block,
    rewrite_readme_only,
    save_benchmark,
)

README_START = "<!-- poetry-kd:start -->"
README_END = "<!-- poetry-kd:end -->"


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


def update_readme(readme: Path, payload: dict) -> None:
    """Replace the block between the poetry-kd markers of ``readme`` with :func:`readme_table`."""
    replace_marked_block(readme, README_START, README_END, readme_table(payload))


def main(argv: list[str] | None = None) -> Path:
    parser = benchmark_parser("poetry_kd", __doc__.split("\n\n")[0], epoch_caps=True)
    parser.add_argument("--samples", type=int, default=500, help="poems sampled per model for the form check")
    parser.add_argument("--latency-rounds", type=int, default=10)
    args = parser.parse_args(argv)
    out = benchmark_output(args, "poetry_kd")
    if rewrite_readme_only(args, out, update_readme):
        return out
    recipes = cap_epochs({role: poetry_recipe(role, args.mode) for role in POETRY_ROLES}, args.epochs,
                         args.student_epochs)
    context = setup_notebook(args.mode, device=args.device)
    start = time.perf_counter()
    comparison = compare_poetry(context, corpus=load_tang_poems(), recipes=recipes, samples=args.samples,
                                latency_rounds=args.latency_rounds)
    wall = time.perf_counter() - start
    payload = {
        **benchmark_header("poetry_kd", args, context.device, POETRY_CPU_THREADS),
        "recipes": {role: recipe.to_dict() for role, recipe in recipes.items()},
        "latency_rounds": args.latency_rounds,
        **comparison.to_dict(),
        "wall_seconds": round(wall, 1),
    }
    save_benchmark(out, payload, args, update_readme)
    for role, row in comparison.rows.items():
        print(f"{row.title:<40} ppl {row.test_perplexity:7.1f}  in form {100 * row.in_form:5.1f} %  "
              f"teacher NLL {row.teacher_nll:5.2f}  {row.parameters:>9,} params  {row.ms_per_poem:6.1f} ms  "
              f"{row.train_seconds:7.1f} s")
        print(f"    {row.examples[0]}")
    print(f"wall {wall:.1f} s; wrote {out}")
    return out


if __name__ == "__main__":
    main()
