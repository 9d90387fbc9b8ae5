"""Benchmark: chapter 07's MSRA teacher, its students and the cascade at full size, written to JSON.

    .venv/bin/python benchmarks/ner_kd.py                   # full mode, results/ner_kd_full.json
    .venv/bin/python benchmarks/ner_kd.py --mode fast       # the chapter-07 fast settings
    .venv/bin/python benchmarks/ner_kd.py --epochs 3        # full data, every model capped at 3 epochs
    .venv/bin/python benchmarks/ner_kd.py --epochs 3 --student-epochs 2   # the students at 2
    .venv/bin/python benchmarks/ner_kd.py --readme-only     # rewrite the README table from the JSON

Trains (or loads from the course cache) the teacher and every student of
``course_lib.cases.ner.models`` and measures each with ``course_lib.cases.ner.compare.compare_ner``: seqeval
precision/recall/F1 on the MSRA test split (overall and per type), parameters, CPU latency
per sentence at batch 1 and 32. The JSON holds every row, the goal checks, the recipes, the
total wall time and the device. ``--epochs`` caps the epochs of every model and
``--student-epochs`` those of the students (a CPU run of the full data); the caps are written
into the JSON and the README table.
"""

from __future__ import annotations

import argparse

from course_lib.cases.ner.compare import GOALS, TENER_F1, compare_ner
from course_lib.cases.ner.models import NER_ROLES, capped_recipes
from course_lib.context import CourseContext
from course_lib.course.bench import Benchmark, epoch_caps_text
from course_lib.data import load_msra


def shape(recipe: dict) -> str:
    """A model's shape as width×layers (heads, feed-forward width)."""
    return f"{recipe['d_model']}×{recipe['num_layers']} ({recipe['num_heads']} heads, FF {recipe['d_ff']})"


def readme_table(payload: dict) -> str:
    """The README block: every row's test F1 (overall and per type), parameters, latency; the goals."""
    cap = epoch_caps_text(payload)
    lines = [
        f"_Source: `results/ner_kd_{payload['mode']}.json` ({payload['mode']} mode{cap}, {payload['device']}, "
        f"{payload['train_seconds_total'] / 60:.0f} min of training; latency: one CPU thread, lowest of "
        f"{payload['latency_rounds']} interleaved round medians, batch 32 of sentences near the median length)._",
        "",
        "| model | shape | parameters | test F1 | PER | LOC | ORG | ms/sentence, batch 1 | ms/sentence, batch 32 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    teacher_params = payload["rows"]["teacher"]["parameters"]
    for role in (role for role in NER_ROLES if role in payload["rows"]):
        row = payload["rows"][role]
        per_type = row["per_type_f1"]
        lines.append(
            f"| {row['title']} | {shape(payload['recipes'][role])} | {row['parameters']:,} "
            f"({row['parameters'] / teacher_params:.0%}) | {100 * row['f1']:.1f} | "
            f"{100 * per_type['PER']:.1f} | {100 * per_type['LOC']:.1f} | {100 * per_type['ORG']:.1f} | "
            f"{row['latency_batch1_ms']:.2f} | {row['latency_batch32_ms']:.3f} |"
        )
    lines += ["", f"TENER (a Transformer encoder without pre-training, on pretrained character and bigram embeddings) "
                    f"reports {100 * TENER_F1:.1f} F1 on this test split.", "",
              "| goal | target | measured | met |", "|---|---|---|---|"]
    for check in payload["goals"]:
        percent = "F1" in check["goal"] or "share" in check["goal"] or "parameters" in check["goal"]
        fmt = (lambda v: f"{100 * v:.1f} %") if percent else (lambda v: f"{v:.1f}×")
        lines.append(f"| {check['goal']} | {fmt(check['target'])} | {fmt(check['measured'])} | "
                     f"{'yes' if check['met'] else 'no'} |")
    return "\n".join(lines)


def measure(args: argparse.Namespace, context: CourseContext) -> dict:
    """Train (or load) the teacher and every student, and measure each on the test split."""
    recipes = capped_recipes(args.mode, args.epochs, args.student_epochs)
    comparison = compare_ner(context, corpus=load_msra(), recipes=recipes, latency_rounds=args.latency_rounds)
    for role, row in comparison.rows.items():
        print(f"{NER_ROLES[role].title:<45} F1 {100 * row.f1:5.1f}  {row.parameters:>9,} params  "
              f"{row.latency_batch1_ms:6.2f} ms  {row.train_seconds:7.1f} s")
    for check in comparison.goals():
        print(f"{'met    ' if check.met else 'not met'} {check.goal}: {check.measured:.3f} (target {check.target:g})")
    return {
        "recipes": {role: recipe.to_dict() for role, recipe in recipes.items()},
        "latency_rounds": args.latency_rounds,
        **comparison.to_dict(),
        "goal_targets": GOALS,
        "tener_f1": TENER_F1,
        "train_seconds_total": round(sum(row.train_seconds for row in comparison.rows.values()), 1),
        "note": "train_seconds of a cached model are those of the run that trained it; wall_seconds is this "
                "invocation's, which loads cached models instead of training them",
    }


BENCHMARK = Benchmark("ner_kd", __doc__, measure, readme_marker="ner-kd", readme_table=readme_table,
                      epoch_caps=True, latency_rounds=30, threads=2)


main = BENCHMARK.run


if __name__ == "__main__":
    main()
