"""Benchmark: Kim & Rush (2016) sequence-level distillation in small, KJV English → RV 1909 Spanish, written to JSON.

    .venv/bin/python benchmarks/mt_kd.py                    # full mode, the course's seeds, results/mt_kd_full.json
    .venv/bin/python benchmarks/mt_kd.py --mode fast        # the small settings (about three minutes on a CPU)
    .venv/bin/python benchmarks/mt_kd.py --seeds 0 1 2      # these seeds for every student
    .venv/bin/python benchmarks/mt_kd.py --readme-only      # rewrite the README table from the JSON

Loads the shipped teacher (``course_lib.cases.translation_reference``: trained once on every
training verse, rebuilt by ``make teachers``) and trains (or loads from the model cache) the four
students of ``course_lib.cases.translation`` — references only, word-level KD, sequence-level KD,
both — on the teacher's vocabulary, and measures each with ``compare_translation``: sacrebleu BLEU and chrF on the dev and test verses,
greedy and beam search, per seed with mean and standard deviation (the seeds of ``translation_seeds``:
in full mode three for every student, unless ``--seeds`` names others); parameters; the CPU time on
one thread of greedy and beam decoding at batch 1 and of greedy decoding in batches of 64. The JSON
holds every row, the seed verdicts, example translations, the recipes, sacrebleu's signatures,
Kim & Rush's published figures beside ours, the wall time and the device. Fast mode's students learn from a spread-out part of the training
verses; full mode's from all of them (measured on two CPU cores: the teacher's beam translations
of the training verses 10 min, its top subwords for word-level KD about a minute for each target
set, a student 10–15 min, scoring the thirteen models 7 min; the four students of one seed about
50 min, every seed about two hours and fifty minutes from an empty cache).
"""

from __future__ import annotations

import argparse

from course_lib.cases.translation import TRANSLATION_ROLES, compare_translation, translation_seeds
from course_lib.cases.translation_reference import as_trained, reference_student_recipes, reference_translator
from course_lib.context import CourseContext
from course_lib.course.bench import Benchmark, epoch_caps_text
from course_lib.train.recipe import cap_epochs
from course_lib.views.tables import mean_sd


def readme_table(payload: dict) -> str:
    """The README block: each model's test BLEU (greedy, beam), chrF, size and speed, beside Kim & Rush's figures."""
    rows, paper, paper_row = payload["rows"], payload["kim_rush_2016"], payload["paper_row"]
    teacher = rows["teacher"]
    seeds = "; ".join(f"{rows[role]['title'].split(' ')[0]} {len(rows[role]['seeds'])}"
                      for role in TRANSLATION_ROLES if role != "teacher" and role in rows)
    training = sum(sum(row["train_seconds"]["per_seed"]) for role, row in rows.items() if role != "teacher")
    lines = [
        f"_Source: `results/mt_kd_{payload['mode']}.json` ({payload['mode']} mode{epoch_caps_text(payload)}, "
        f"{payload['device']}, {payload['wall_seconds'] / 60:.0f} min wall time, models from the cache included, "
        f"{training / 60:.0f} min of student training in all; {payload['train_pairs']:,} training "
        f"verse pairs ({payload['dropped_long_pairs']:,} longer than {payload['max_len']} subwords left out), "
        f"{payload['vocab_size']:,} shared BPE subwords; word-level KD on the teacher's top "
        f"{payload['word_kd_top_k']} subwords a position, computed once; "
        f"{payload['test_pairs']:,} test verses (Ruth, Proverbs, Acts); "
        f"seeds per student: {seeds}; mean ± sd; beam {payload['beam_size']}; decoding times on one CPU thread, "
        f"one verse at a time (batch 1) or {payload['batched_sentences']} test verses in batches of "
        f"{payload['serving_batch']}; speed-up: the teacher's time over the model's)._",
        "",
        f"| model | parameters | test BLEU, greedy | test BLEU, beam {payload['beam_size']} | test chrF, beam | "
        "ms per verse, greedy, batch 1 | speed-up, greedy, batch 1 | speed-up, beam, batch 1 | "
        f"speed-up, greedy, batches of {payload['serving_batch']} | Kim & Rush 2016, greedy BLEU |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for role in (role for role in TRANSLATION_ROLES if role in rows):
        row, test = rows[role], rows[role]["test"]
        published = paper.get(paper_row.get(role, ""), "–")
        lines.append(
            f"| {row['title']} | {row['parameters']:,} ({row['parameters'] / teacher['parameters']:.0%}) | "
            f"{mean_sd(test['bleu_greedy'])} | {mean_sd(test['bleu_beam'])} | {mean_sd(test['chrf_beam'])} | "
            f"{row['ms_per_sentence']:.1f} | {row['speedup']:.1f}× | {row['beam_speedup']:.1f}× | "
            f"{row['batched_speedup']:.1f}× | {published} |"
        )
    lines += ["", "Against (a), test BLEU with greedy decoding:"]
    lines += [f"- {rows[role]['title']}: {payload['verdicts'][role]}." for role in TRANSLATION_ROLES
              if role in payload["verdicts"]]
    lines += ["", "Goals (full mode):"]
    lines += [f"- {goal['goal']}: {goal['measured']:g} against {goal['target']:g}: "
              f"{'met' if goal['met'] else 'not met'}." for goal in payload["goals"]]
    lines += [
        "",
        "Kim & Rush (2016), Table 1: WMT 2014 English→German, a 4×1000 LSTM teacher and 2×500 LSTM students, "
        "greedy BLEU. Scores: sacrebleu, BLEU `" + payload["sacrebleu"]["bleu"] + "`, chrF `"
        + payload["sacrebleu"]["chrf"] + "`.",
    ]
    return "\n".join(lines)


def measure(args: argparse.Namespace, context: CourseContext) -> dict:
    """Load the shipped teacher, train every student for each seed and measure them all."""
    artefact = reference_translator()
    students_cap = args.student_epochs if args.student_epochs is not None else args.epochs
    recipes = cap_epochs(reference_student_recipes(artefact, args.mode), None, students_cap)  # the teacher is shipped
    eval_pairs = "mode" if args.eval_pairs is None else (args.eval_pairs or None)
    seeds = translation_seeds(args.mode) if args.seeds is None else args.seeds
    comparison = compare_translation(context, seeds=seeds, recipes=recipes, eval_pairs=eval_pairs,
                                     latency_rounds=args.latency_rounds, teacher=as_trained(artefact))
    for row in comparison["rows"].values():
        test = row["test"]
        print(f"{row['title']:<42} BLEU greedy {mean_sd(test['bleu_greedy']):>11}  "
              f"beam {mean_sd(test['bleu_beam']):>11}  chrF {mean_sd(test['chrf_beam']):>11}  "
              f"{row['parameters']:>10,} params  {row['ms_per_sentence']:7.1f} ms  speed-up {row['speedup']:.2f}× "
              f"(beam {row['beam_speedup']:.2f}×, batched {row['batched_speedup']:.2f}×)  "
              f"{row['train_seconds']['mean']:7.1f} s")
    for role, verdict in comparison["verdicts"].items():
        print(f"{role}: {verdict}")
    for goal in comparison["goals"]:
        print(f"goal, {goal['goal']}: {goal['measured']:g} against {goal['target']:g}, "
              f"{'met' if goal['met'] else 'not met'}")
    return comparison


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seeds", type=int, nargs="+", default=None,
                        help="seeds for every student (default: each student's seeds of translation_seeds)")
    parser.add_argument("--eval-pairs", type=int, default=None,
                        help="dev and test verses scored per model (default: 100 in fast mode, all in full; 0: all)")


BENCHMARK = Benchmark("mt_kd", __doc__, measure, readme_marker="mt-kd", readme_table=readme_table, epoch_caps=True,
                      latency_rounds=3, threads=2, options=_options)


main = BENCHMARK.run


if __name__ == "__main__":
    main()
