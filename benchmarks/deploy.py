"""Benchmark: serving chapter 08's teachers and students on a CPU, written to JSON.

    .venv/bin/python benchmarks/deploy.py                          # full mode, results/deploy_full.json
    .venv/bin/python benchmarks/deploy.py --epochs 3 --student-epochs 1   # the CPU run of benchmarks/ner_kd.py
    .venv/bin/python benchmarks/deploy.py --mode fast              # the chapter-08 fast settings
    .venv/bin/python benchmarks/deploy.py --readme-only            # rewrite the README table from the JSON

For NER (chapter 07's teacher and its layer_kd student) and MNIST (chapter 06's teacher and a
distilled student), saves both models as bundles, exports the student to ONNX and int8
(``course_lib.serve.onnx.export_bundle``) and measures the four variants of
``course_lib.cases.deploy.table``: parameters, size on disk, test F1 or accuracy, CPU latency p50/p95
at batch 1 and 32 on one thread, throughput. The goal checked: the int8 ONNX NER student answers
≥ 10× faster than the PyTorch teacher at batch 1 and loses ≤ 1 F1 point against the float student.
``--epochs`` / ``--student-epochs`` cap the NER recipes exactly as ``benchmarks/ner_kd.py`` does,
so the models it cached are reused.
"""

from __future__ import annotations

import argparse
import platform

import onnxruntime

from course_lib.cases.deploy.bundles import DEPLOYED_NER_STUDENT, mnist_bundles, ner_bundles
from course_lib.cases.deploy.table import DEPLOY_GOALS, VARIANTS, measure_deployment
from course_lib.cases.ner.models import capped_recipes
from course_lib.context import CourseContext
from course_lib.course.bench import Benchmark, device_description
from course_lib.data import load_mnist, load_msra
from course_lib.serve.onnx import export_bundle


def _size(size_bytes: int) -> str:
    return f"{size_bytes / 1e6:.2f} MB" if size_bytes >= 1e6 else f"{size_bytes / 1e3:.0f} kB"


def readme_table(payload: dict) -> str:
    """The README block: one table per task (every variant's size, score and latency) and the goals."""
    cap = (f", NER teacher epochs capped at {payload['epochs_cap']}, student at "
           f"{payload.get('student_epochs_cap') or payload['epochs_cap']}" if payload.get("epochs_cap") else "")
    lines = [
        f"_Source: `results/deploy_{payload['mode']}.json` ({payload['mode']} mode{cap}; latency on "
        f"{payload['measured_on']}, ONNX Runtime {payload['onnxruntime']}; p50 and p95 of the quietest of "
        f"{payload['latency_rounds']} interleaved rounds)._",
    ]
    for task, title in (("ner", "MSRA NER"), ("mnist", "MNIST")):
        table = payload["tasks"][task]
        score = table["score_name"]
        lines += [
            "",
            f"**{title}**",
            "",
            f"| variant | parameters | size on disk | test {score} | batch 1 p50 / p95 (ms) | batch 32 p50 / p95 (ms) "
            "| items/s at batch 32 | speed-up vs teacher, batch 1 |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for variant in VARIANTS:
            row = table["rows"][variant]
            b1, b32 = row["batch1"], row["batch32"]
            lines.append(
                f"| {row['title']} | {row['parameters']:,} | {_size(row['size_bytes'])} | {100 * row['score']:.2f} | "
                f"{b1['p50_ms']:.3f} / {b1['p95_ms']:.3f} | {b32['p50_ms']:.2f} / {b32['p95_ms']:.2f} | "
                f"{b32['throughput_per_s']:,.0f} | {table['speedup_batch1'][variant]:.1f}× |"
            )
    lines += ["", "| goal (NER) | target | measured | met |", "|---|---|---|---|"]
    for check in payload["tasks"]["ner"]["goals"]:
        speed = "speed-up" in check["goal"]
        fmt = (lambda v: f"{v:.1f}×") if speed else (lambda v: f"{100 * v:.2f} points")
        lines.append(f"| {check['goal']} | {fmt(check['target'])} | {fmt(check['measured'])} | "
                     f"{'yes' if check['met'] else 'no'} |")
    return "\n".join(lines)


def measure(args: argparse.Namespace, context: CourseContext) -> dict:
    """Save the teachers and students as bundles, export the students, measure the four ways of serving each."""
    recipes = capped_recipes(args.mode, args.epochs, args.student_epochs)
    pairs = {
        "ner": ner_bundles(context, recipes={role: recipes[role] for role in ("teacher", DEPLOYED_NER_STUDENT)}),
        "mnist": mnist_bundles(context),
    }
    tests = {"ner": load_msra().test, "mnist": load_mnist()}
    tables = {}
    for task, pair in pairs.items():
        export_bundle(pair.student)
        tables[task] = measure_deployment(pair, tests[task], rounds=args.latency_rounds)
        for variant, row in tables[task].rows.items():
            print(f"{task:<6}{row.title:<28} {tables[task].score_name} {100 * row.score:6.2f}  "
                  f"{row.size_bytes / 1e6:6.2f} MB  b1 {row.batch1.p50_ms:7.3f} ms  b32 {row.batch32.p50_ms:7.2f} ms  "
                  f"{tables[task].speedup(variant):5.1f}×")
    return {
        "trained_on": device_description(context.device, 2),
        "measured_on": device_description("cpu", 1),
        "python": platform.python_version(),
        "onnxruntime": onnxruntime.__version__,
        "latency_rounds": args.latency_rounds,
        "bundles": {task: {"teacher": pair.teacher.name, "student": pair.student.name} for task, pair in pairs.items()},
        "tasks": {task: table.to_dict() for task, table in tables.items()},
        "goal_targets": DEPLOY_GOALS,
    }


BENCHMARK = Benchmark("deploy", __doc__, measure, readme_marker="deploy", readme_table=readme_table,
                      epoch_caps=True, latency_rounds=30, threads=2)


main = BENCHMARK.run


if __name__ == "__main__":
    main()
