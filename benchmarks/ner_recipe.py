"""Benchmark: what makes an MSRA tagger strong — positions, bigrams, architecture, decoding, schedule — one change at a time.

    .venv/bin/python benchmarks/ner_recipe.py                    # full mode, results/ner_recipe_full.json
    .venv/bin/python benchmarks/ner_recipe.py --variants relative bilstm
    .venv/bin/python benchmarks/ner_recipe.py --readme-only      # rewrite the README table from the JSON

Trains (or loads from the course cache) every variant of ``course_lib.cases.ner.recipe_study``
with one shared budget and measures it: dev F1 after every epoch, test F1 with Viterbi decoding
under the BIO constraint and with plain argmax, parameters and training seconds. It also records
the share of test characters read as ``<unk>`` and how the packaged corpus cut its sentences.
Chapter 07 reads the results file.
"""

from __future__ import annotations

import argparse

from course_lib.cases.ner.recipe_study import STUDY_VARIANTS, recipe_study, study_recipe
from course_lib.context import CourseContext
from course_lib.course.bench import Benchmark
from course_lib.data import load_msra


def readme_table(payload: dict) -> str:
    """The README block: one row per variant with its dev curve and both test F1s."""
    some = next(iter(payload["rows"]))
    recipe = payload["recipes"][some]
    lines = [
        f"_Source: `results/ner_recipe_{payload['mode']}.json` ({payload['mode']} mode, {payload['device']}; every "
        f"variant {recipe['epochs']} epochs of batch {recipe['batch_size']}, lr {recipe['lr']:g}, warm-up + linear "
        f"decay; {payload['wall_seconds'] / 60:.0f} min wall time; {100 * payload['unknown_rate']:.2f} % of test "
        "characters are `<unk>`)._",
        "",
        "| variant | parameters | dev F1 per epoch | test F1, Viterbi | test F1, argmax | training s |",
        "|---|---|---|---|---|---|",
    ]
    for row in payload["rows"].values():
        curve = " → ".join(f"{100 * f:.1f}" for f in row["dev_curve"])
        lines.append(f"| {row['title']} | {row['parameters']:,} | {curve} | {100 * row['test_f1']:.1f} | "
                     f"{100 * row['test_f1_argmax']:.1f} | {row['train_seconds']:.0f} |")
    return "\n".join(lines)


def measure(args: argparse.Namespace, context: CourseContext) -> dict:
    """Train (or load) the chosen variants and measure each."""
    variants = tuple(args.variants)
    study = recipe_study(context, variants=variants, corpus=load_msra())
    for row in study["rows"].values():
        print(f"{row['title']:<50} test F1 {100 * row['test_f1']:5.1f} (argmax {100 * row['test_f1_argmax']:5.1f})  "
              f"{row['parameters']:>9,} params  {row['train_seconds']:7.1f} s")
    return {**study, "recipes": {variant: study_recipe(variant, args.mode).to_dict() for variant in variants},
            "note": "train_seconds of a cached model are those of the run that trained it"}


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--variants", nargs="+", choices=tuple(STUDY_VARIANTS), default=list(STUDY_VARIANTS))


BENCHMARK = Benchmark("ner_recipe", __doc__, measure, readme_marker="ner-recipe", readme_table=readme_table,
                      threads=2, options=_options)


main = BENCHMARK.run


if __name__ == "__main__":
    main()
