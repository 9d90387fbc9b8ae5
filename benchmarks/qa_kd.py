"""Benchmark: question answering as span extraction on MSRA (Li et al. 2020), teacher and students, to JSON.

    .venv/bin/python benchmarks/qa_kd.py                    # full mode, results/qa_kd_full.json
    .venv/bin/python benchmarks/qa_kd.py --mode fast        # the small settings of chapter 09
    .venv/bin/python benchmarks/qa_kd.py --epochs 2         # every model capped at 2 epochs
    .venv/bin/python benchmarks/qa_kd.py --seeds 0          # one seed per student (full mode trains three)
    .venv/bin/python benchmarks/qa_kd.py --readme-only      # rewrite the README table from the JSON

Turns every MSRA sentence into three questions, one per entity type, and trains the span
extractors of ``course_lib.cases.qa.compare`` — the teacher (started from the encoder of chapter
07's shipped tagger), a student on the gold spans and a student distilled from the teacher's start
and end probabilities (span-level KD) — then scores them with ``compare_span_qa``: exact-match
span F1 (overall, per type), precision, recall, parameters and CPU latency at batch 1, beside
chapter 07's shipped BIO tagger answering the same test passages. Full mode reads every training
sentence and runs on a CPU; the JSON holds every row, the question counts, answered examples, the
recipes, Li et al.'s figure, wall time and device.
"""

from __future__ import annotations

import argparse

from course_lib.cases.qa.compare import SPAN_QA_ROLES, compare_span_qa, span_qa_recipe
from course_lib.context import CourseContext
from course_lib.course.bench import Benchmark, epoch_caps_text
from course_lib.data import load_msra
from course_lib.train.recipe import cap_epochs
from course_lib.views.tables import seeds_cell

ROW_ORDER = (*SPAN_QA_ROLES, "reference_tagger")


def readme_table(payload: dict) -> str:
    """The README block: each model's span F1, precision, recall, F1 per type, size and speed, beside Li et al."""
    rows, counts, paper = payload["rows"], payload["counts"], payload["li_2020"]
    teacher = rows["teacher"]
    lines = [
        f"_Source: `results/qa_kd_{payload['mode']}.json` ({payload['mode']} mode{epoch_caps_text(payload)}, "
        f"{payload['device']}, {payload['wall_seconds'] / 60:.0f} min wall time; {counts['train']['questions']:,} "
        f"training and {counts['test']['questions']:,} test questions, three per sentence; exact-match span F1; "
        "latency: one CPU thread, batch 1, the three questions of one passage; a student's row is its first seed's "
        "model, the last column its span F1 over every seed, mean ± sd)._",
        "",
        "| model | parameters | span F1 | precision | recall | PER | LOC | ORG | ms per passage | span F1 over seeds |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for role in (role for role in ROW_ORDER if role in rows):
        row = rows[role]
        kinds = row["per_type_f1"]
        lines.append(
            f"| {row['title']} | {row['parameters']:,} ({row['parameters'] / teacher['parameters']:.0%}) | "
            f"{100 * row['f1']:.1f} | {100 * row['precision']:.1f} | {100 * row['recall']:.1f} | "
            f"{100 * kinds['PER']:.1f} | {100 * kinds['LOC']:.1f} | {100 * kinds['ORG']:.1f} | "
            f"{row['latency_batch1_ms']:.2f} | {seeds_cell(row.get('f1_over_seeds'), scale=100)} |"
        )
    lines += ["", f"Span-level KD against the student alone: {payload['verdict']}.",
              "", f"Li et al. (2020), {paper['model']} ({paper['parameters'] / 1e6:.0f}M parameters): "
                  f"F1 {100 * paper['msra_f1']:.2f} on MSRA, with a pretrained encoder."]
    return "\n".join(lines)


def measure(args: argparse.Namespace, context: CourseContext) -> dict:
    """Train (or load) the teacher and both students, and measure them beside the shipped tagger."""
    recipes = cap_epochs({role: span_qa_recipe(role, args.mode) for role in SPAN_QA_ROLES}, args.epochs,
                         args.student_epochs)
    comparison = compare_span_qa(context, corpus=load_msra(), recipes=recipes, latency_rounds=args.latency_rounds,
                                 seeds="mode" if args.seeds is None else args.seeds)
    for row in comparison.rows.values():
        print(f"{row.title:<45} span F1 {100 * row.f1:5.1f}  P {100 * row.precision:5.1f}  R {100 * row.recall:5.1f}  "
              f"{row.parameters:>10,} params  {row.latency_batch1_ms:6.2f} ms  over seeds {row.f1_over_seeds}")
    print(f"span-level KD against the student alone: {comparison.verdict}")
    return {"recipes": {role: recipe.to_dict() for role, recipe in recipes.items()},
            "latency_rounds": args.latency_rounds, **comparison.to_dict()}


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seeds", type=int, nargs="+", default=None,
                        help="seeds for both students (default: span_qa_seeds of the mode: one fast, three full)")


BENCHMARK = Benchmark("qa_kd", __doc__, measure, readme_marker="qa-kd", readme_table=readme_table, epoch_caps=True,
                      latency_rounds=10, threads=2, options=_options)


main = BENCHMARK.run


if __name__ == "__main__":
    main()
