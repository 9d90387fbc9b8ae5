"""Benchmark: chapter 10's Transformer tagger against a BiLSTM of the same size and recipe on MSRA NER, written to JSON.

    .venv/bin/python benchmarks/rnn_vs_transformer.py               # full mode, results/rnn_vs_transformer_full.json
    .venv/bin/python benchmarks/rnn_vs_transformer.py --epochs 4    # a CPU run: both capped at 4 epochs
    .venv/bin/python benchmarks/rnn_vs_transformer.py --readme-only # rewrite the README table from the JSON

Trains (or loads from the course cache) the demo Transformer tagger of the mode and a BiLSTM
with about as many parameters on the same sentences with the same recipe, and measures both
with ``course_lib.cases.ner.rnn_vs_transformer.compare_rnn_transformer``: seqeval F1 on the MSRA test
split (overall and per type) and the latency of one sentence of 8, 32 and 128 characters at
batch 1 on one CPU thread.
"""

from __future__ import annotations

import argparse
import dataclasses

from course_lib.cases.ner.demo import demo_recipe
from course_lib.cases.ner.rnn_vs_transformer import compare_rnn_transformer
from course_lib.context import CourseContext
from course_lib.course.bench import Benchmark
from course_lib.data import load_msra


def readme_table(payload: dict) -> str:
    """The README block: both architectures' parameters, test F1 (overall, per type), training time, latency."""
    rows = payload["rows"]
    lengths = sorted(next(iter(rows.values()))["latency_ms"], key=int)
    recipe = payload["recipe"]
    cap = f", both capped at {payload['epochs_cap']} epochs" if payload.get("epochs_cap") else ""
    sentences = f"{recipe['train_sentences']:,}" if recipe["train_sentences"] else "all"
    lines = [
        f"_Source: `results/rnn_vs_transformer_{payload['mode']}.json` ({payload['mode']} mode{cap}, "
        f"{payload['device']}; both trained on {sentences} training sentences with one recipe, "
        f"{payload['wall_seconds'] / 60:.0f} min wall time; latency: one CPU thread, batch 1)._",
        "",
        "| model | parameters | test F1 | PER | LOC | ORG | training s | "
        + " | ".join(f"ms at {length} chars" for length in lengths) + " |",
        "|---|---|---|---|---|---|---|" + "---|" * len(lengths),
    ]
    for name in sorted(rows, key=lambda name: name != "Transformer"):
        row = rows[name]
        per_type = row["per_type_f1"]
        lines.append(f"| {name} | {row['parameters']:,} | {100 * row['test_f1']:.1f} | {100 * per_type['PER']:.1f} | "
                     f"{100 * per_type['LOC']:.1f} | {100 * per_type['ORG']:.1f} | {row['train_seconds']:.0f} | "
                     + " | ".join(f"{row['latency_ms'][length]:.2f}" for length in lengths) + " |")
    return "\n".join(lines)


def measure(args: argparse.Namespace, context: CourseContext) -> dict:
    """Load (or train) the demo Transformer and the BiLSTM and measure both the same way."""
    recipe = demo_recipe(args.mode)
    if args.epochs is not None:
        recipe = dataclasses.replace(recipe, epochs=min(recipe.epochs, max(1, args.epochs)))
    comparison = compare_rnn_transformer(context, corpus=load_msra(), recipe=recipe, latency_rounds=args.latency_rounds)
    for name, row in comparison.rows.items():
        print(f"{name:<12} F1 {100 * row.test_f1:5.1f}  {row.parameters:>9,} params  {row.train_seconds:7.1f} s")
    return {**comparison.to_dict(), "latency_rounds": args.latency_rounds,
            "note": "train_seconds of a cached model are those of the run that trained it (one CPU thread)"}


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--epochs", type=int, default=None, help="cap both models' epochs (e.g. for a CPU)")


BENCHMARK = Benchmark("rnn_vs_transformer", __doc__, measure, readme_marker="rnn-vs-transformer",
                      readme_table=readme_table, latency_rounds=30, options=_options)


main = BENCHMARK.run


if __name__ == "__main__":
    main()
