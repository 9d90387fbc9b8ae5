"""Benchmark: the shipped MSRA reference teacher's students (labels only, logit KD, a transfer set, teacher-initialised,
layer KD) and the source's cascade.

    .venv/bin/python benchmarks/ner_reference_kd.py                  # full mode, seeds 0 1 2
    .venv/bin/python benchmarks/ner_reference_kd.py --seeds 0        # one seed
    .venv/bin/python benchmarks/ner_reference_kd.py --readme-only    # rewrite the README table from the JSON

Loads the reference teacher from ``course_lib/artefacts`` (``make teachers`` rebuilds it), caches
its logits for the training sentences (and the transfer set's unlabelled news sentences) once,
then trains (or loads from the course cache) the five students and the cascade of
``course_lib.cases.ner.reference_kd`` with every seed (three by default) and scores them on the
MSRA test split (entity F1, Viterbi decoding). Chapter 07 reads the results file.
"""

from __future__ import annotations

import argparse

from course_lib.cases.ner.reference_kd import (
    REFERENCE_KD_ROLES,
    reference_kd,
    reference_kd_recipe,
)
from course_lib.context import CourseContext
from course_lib.course.bench import Benchmark
from course_lib.data import load_msra


def readme_table(payload: dict) -> str:
    """The README block: the teacher and each student's mean ± spread over the seeds."""
    teacher = payload["teacher"]
    recipe = payload["recipes"]["logit_kd"]
    lines = [
        f"_Source: `results/ner_reference_kd_{payload['mode']}.json` ({payload['mode']} mode, {payload['device']}; "
        f"seeds {', '.join(map(str, payload['seeds']))}; students {recipe['epochs']} epochs of batch "
        f"{recipe['batch_size']}, T = {recipe['temperature']:g}, alpha = {recipe['alpha']:g}; the teacher was "
        f"trained once by `make teachers` in {teacher['train_seconds'] / 60:.0f} min on {teacher['device']})._",
        "",
        "| model | parameters | size | test F1 (mean ± sd) | per seed | of the teacher | ms/sentence, batch 1 |",
        "|---|---|---|---|---|---|---|",
        f"| {teacher['title']} | {teacher['parameters']:,} | 100 % | {100 * teacher['test_f1']:.1f} | | 100 % | "
        f"{teacher['latency_batch1_ms']:.2f} |",
    ]
    for row in (payload["students"][role] for role in REFERENCE_KD_ROLES if role in payload["students"]):
        seeds = " / ".join(f"{100 * f:.1f}" for f in row["test_f1"])
        lines.append(f"| {row['title']} | {row['parameters']:,} | {100 * row['size_ratio']:.1f} % | "
                     f"{100 * row['mean_f1']:.1f} ± {100 * row['std_f1']:.1f} | {seeds} | "
                     f"{100 * row['retention']:.1f} % | {row['latency_batch1_ms']:.2f} |")
    verdicts = [role for role in REFERENCE_KD_ROLES if role in payload["verdicts"]]
    lines += ["", *(f"- {payload['students'][role]['title']}, against labels only: {payload['verdicts'][role]}."
                    for role in verdicts), "",
              "| goal | target | measured | met |", "|---|---|---|---|"]
    for check in payload["goals"]:
        percent = not check["goal"].endswith("CPU speed-up at batch 1")
        shown = (lambda v: f"{100 * v:.1f} %") if percent else (lambda v: f"{v:.1f}×")
        lines.append(f"| {check['goal']} | {shown(check['target'])} | {shown(check['measured'])} | "
                     f"{'yes' if check['met'] else 'no'} |")
    return "\n".join(lines)


def measure(args: argparse.Namespace, context: CourseContext) -> dict:
    """Train (or load) every student for every seed and score them beside the teacher."""
    table = reference_kd(context, seeds=tuple(args.seeds), corpus=load_msra(), latency_rounds=30)
    for row in table["students"].values():
        print(f"{row['title']:<60} F1 {100 * row['mean_f1']:5.1f} ± {100 * row['std_f1']:.1f}  "
              f"({100 * row['retention']:.1f} % of the teacher)")
    for line in table["verdicts"].values():
        print(line)
    for check in table["goals"]:
        print(f"  {'met    ' if check['met'] else 'not met'} {check['goal']}: {check['measured']:.3f} (goal {check['target']:g})")
    return {**table, "recipes": {role: reference_kd_recipe(role, args.mode).to_dict() for role in REFERENCE_KD_ROLES},
            "note": "train_seconds of a cached model are those of the run that trained it"}


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])


BENCHMARK = Benchmark("ner_reference_kd", __doc__, measure, readme_marker="ner-reference-kd",
                      readme_table=readme_table, threads=2, options=_options)


main = BENCHMARK.run


if __name__ == "__main__":
    main()
