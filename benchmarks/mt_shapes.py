"""Benchmark: which translation student shape is three times faster than the teacher, and at what BLEU, to JSON.

    .venv/bin/python benchmarks/mt_shapes.py                # full mode, results/mt_shapes_full.json
    .venv/bin/python benchmarks/mt_shapes.py --mode fast    # the small budget (a few minutes on a CPU)
    .venv/bin/python benchmarks/mt_shapes.py --readme-only  # rewrite the README table from the JSON

Trains (or loads from the model cache) one sequence-level-KD student of each shape of
``course_lib.cases.translation_shapes.STUDENT_SHAPES`` — the course's students' 2+2 layers, then
deeper encoders with one decoder layer and narrower widths, all under a quarter of the teacher's
parameters — with the students' recipe, budget and seed 0, learning from the shipped teacher's beam
translations, and measures each with ``compare_shapes``: test BLEU and chrF (greedy and beam), BLEU
points below the teacher, and the speed-up over the teacher of greedy and beam decoding at batch 1
and of greedy decoding in batches of 64, on one CPU thread, against chapter 09's goals (within 1 BLEU
of the teacher, 3× faster greedy decoding). The 2+2 student is seed 0 of ``benchmarks/mt_kd.py``'s
(c) and comes from the model cache when that benchmark ran first. Full mode: about 10 min a student
on two CPU cores, and 4 min to score and time them all.
"""

from __future__ import annotations

import argparse

from course_lib.cases.translation_reference import as_trained, reference_student_recipes, reference_translator
from course_lib.cases.translation_shapes import compare_shapes
from course_lib.context import CourseContext
from course_lib.course.bench import Benchmark


def _yes(met: bool) -> str:
    return "yes" if met else "no"


def readme_table(payload: dict) -> str:
    """The README block: each shape's size, test BLEU, distance to the teacher and speed-ups against the goals, slowest first."""
    rows, goals = payload["rows"], payload["goals"]
    teacher = rows["teacher"]
    lines = [
        f"_Source: `results/mt_shapes_{payload['mode']}.json` ({payload['mode']} mode, {payload['device']}, "
        f"{payload['wall_seconds'] / 60:.0f} min wall time, models from the cache included; one "
        f"sequence-level-KD student of each shape, seed {payload['seed']}, the students' "
        f"recipe and budget; {payload['test_pairs']:,} test verses; decoding on one CPU thread, one verse at a time "
        f"(batch 1) or {payload['batched_sentences']} verses in batches of {payload['serving_batch']})._",
        "",
        "| shape (encoder + decoder layers, width) | parameters | test BLEU, greedy | BLEU below the teacher | "
        f"within {goals['seq_kd_gap']:g} BLEU | speed-up, greedy, batch 1 | {goals['seq_kd_speedup']:g}× faster | "
        f"speed-up, beam, batch 1 | speed-up, greedy, batches of {payload['serving_batch']} |",
        "|---|---|---|---|---|---|---|---|---|",
        f"| teacher ({teacher['shape']['encoder_layers']}+{teacher['shape']['decoder_layers']}, d_model "
        f"{teacher['shape']['d_model']}) | {teacher['parameters']:,} | {teacher['test']['bleu_greedy']:.1f} | – | – | "
        "1.0× | – | 1.0× | 1.0× |",
    ]
    for name, row in sorted(((name, row) for name, row in rows.items() if name != "teacher"),
                            key=lambda item: item[1]["speedup"]):
        lines.append(
            f"| {name} | {row['parameters']:,} ({row['size_ratio']:.0%}) | {row['test']['bleu_greedy']:.1f} | "
            f"{row['bleu_below_teacher']:.1f} | {_yes(row['meets']['seq_kd_gap'])} | {row['speedup']:.2f}× | "
            f"{_yes(row['meets']['seq_kd_speedup'])} | {row['beam_speedup']:.2f}× | {row['batched_speedup']:.2f}× |"
        )
    both = [name for name, row in rows.items() if name != "teacher" and all(row["meets"].values())]
    lines += ["", "Shapes that meet both goals: " + (", ".join(both) if both else "none") + "."]
    return "\n".join(lines)


def measure(args: argparse.Namespace, context: CourseContext) -> dict:
    """Load the shipped teacher, train or load a student of each shape and measure them all."""
    artefact = reference_translator()
    recipe = reference_student_recipes(artefact, args.mode)["seq_kd"]
    table = compare_shapes(context, teacher=as_trained(artefact), recipe=recipe, latency_rounds=args.latency_rounds)
    for name, row in table["rows"].items():
        print(f"{name:<22} {row['parameters']:>10,} params  BLEU greedy {row['test']['bleu_greedy']:5.1f}  "
              f"speed-up {row['speedup']:.2f}× (beam {row['beam_speedup']:.2f}×, batched {row['batched_speedup']:.2f}×)")
    return table


BENCHMARK = Benchmark("mt_shapes", __doc__, measure, readme_marker="mt-shapes", readme_table=readme_table,
                      latency_rounds=3, threads=2)


main = BENCHMARK.run


if __name__ == "__main__":
    main()
