"""Benchmark: a Transformer tagger against a BiLSTM of its size on MSRA NER, each at its own learning rate, 3 seeds.

    .venv/bin/python benchmarks/ner_architectures.py             # full mode, results/ner_architectures_full.json
    .venv/bin/python benchmarks/ner_architectures.py --seeds 0 1 # two seeds
    .venv/bin/python benchmarks/ner_architectures.py --readme-only

Chapter 10's first question with the comparison made fair: ``architecture_study`` of
``course_lib.cases.ner.recipe_study`` trains the Transformer with sinusoidal positions, the
Transformer with relative positions and the BiLSTM under the recipe study's one budget, picks each
one's learning rate from a small grid by dev F1 at the first seed, trains the other seeds at that
rate, and scores every run on the MSRA test split (Viterbi under the BIO constraint, and argmax).
The JSON holds every run's test F1, mean ± sd, the tuning, the seed verdicts, wall time and device.
"""

from __future__ import annotations

import argparse

from course_lib.cases.ner.recipe_study import ARCHITECTURE_VARIANTS, architecture_study, study_recipe
from course_lib.context import CourseContext
from course_lib.course.bench import Benchmark
from course_lib.data import load_msra
from course_lib.views.tables import mean_sd


def readme_table(payload: dict) -> str:
    """The README block: each model's size, learning rates tried and used, test F1 mean ± sd, and the verdicts."""
    rows, recipe = payload["rows"], payload["recipe"]
    rates = payload["learning_rates"]
    lines = [
        f"_Source: `results/ner_architectures_{payload['mode']}.json` ({payload['mode']} mode, {payload['device']}, "
        f"{payload['wall_seconds'] / 60:.0f} min wall time; every model {recipe['epochs']} epochs of batch "
        f"{recipe['batch_size']} on {'all' if recipe['train_sentences'] is None else recipe['train_sentences']} "
        f"training sentences, warm-up + linear decay; learning rate picked by dev F1 at seed {payload['seeds'][0]}; "
        f"seeds {', '.join(map(str, payload['seeds']))}, mean ± sd)._",
        "",
        "| model | parameters | " + " | ".join(f"dev F1 at lr {rate:g}" for rate in rates)
        + " | lr used | test F1, Viterbi | test F1, argmax |",
        "|---|---|" + "---|" * len(rates) + "---|---|---|",
    ]
    for row in rows.values():
        lines.append(f"| {row['title']} | {row['parameters']:,} | "
                     + " | ".join(f"{100 * row['dev_f1_by_lr'][f'{rate:g}']:.1f}" for rate in rates)
                     + f" | {row['lr']:g} | {mean_sd(row['test_f1'], scale=100)} | "
                     f"{mean_sd(row['test_f1_argmax'], scale=100)} |")
    lines += ["", *(f"- {verdict}." for verdict in payload["verdicts"].values())]
    return "\n".join(lines)


def measure(args: argparse.Namespace, context: CourseContext) -> dict:
    """Tune, train and score every architecture over the seeds."""
    study = architecture_study(context, corpus=load_msra(), seeds=tuple(args.seeds))
    for row in study["rows"].values():
        print(f"{row['title']:<48} lr {row['lr']:g}  test F1 {mean_sd(row['test_f1'], scale=100)}  "
              f"{row['parameters']:>9,} params")
    for verdict in study["verdicts"].values():
        print(verdict)
    return {**study, "recipe": study_recipe(ARCHITECTURE_VARIANTS[0], args.mode).to_dict()}


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds (default: 0 1 2)")


BENCHMARK = Benchmark("ner_architectures", __doc__, measure, readme_marker="ner-architectures",
                      readme_table=readme_table, threads=2, options=_options)


main = BENCHMARK.run


if __name__ == "__main__":
    main()
