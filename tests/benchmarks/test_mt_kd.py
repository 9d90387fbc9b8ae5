"""Tests for benchmarks/mt_kd.py: the README block it writes from a results file, beside Kim & Rush's figures."""

from __future__ import annotations

from course_lib.cases.translation import (
    KIM_RUSH_2016,
    PAPER_ROW,
    TRANSLATION_ROLES,
    translation_recipe,
)
from tests.benchmarks import load_benchmark, readme_only


def summary(values: list[float]) -> dict:
    mean = sum(values) / len(values)
    return {"per_seed": values, "mean": mean, "sd": 0.5 if len(values) > 1 else 0.0}


def payload() -> dict:
    bleu = {"teacher": 16.0, "alone": 10.0, "word_kd": 11.0, "seq_kd": 14.0, "word_seq_kd": 14.5}
    seed_lists = {"teacher": [0], "alone": [0, 1, 2], "word_kd": [0], "seq_kd": [0, 1, 2], "word_seq_kd": [0]}
    rows = {}
    for role in TRANSLATION_ROLES:
        seeds = [bleu[role]] if len(seed_lists[role]) == 1 else [bleu[role] - 0.5, bleu[role], bleu[role] + 0.5]
        scores = {"bleu_greedy": summary(seeds), "bleu_beam": summary([s + 1 for s in seeds]),
                  "chrf_greedy": summary([40.0] * len(seeds)), "chrf_beam": summary([42.0] * len(seeds))}
        rows[role] = {"title": TRANSLATION_ROLES[role].title, "method": TRANSLATION_ROLES[role].method,
                      "parameters": 4_000_000 if role == "teacher" else 900_000, "test": scores, "dev": scores,
                      "ms_per_sentence": 40.0 if role == "teacher" else 10.0,
                      "speedup": 1.0 if role == "teacher" else 4.0, "beam_speedup": 1.0 if role == "teacher" else 3.5,
                      "batched_speedup": 1.0 if role == "teacher" else 5.0, "train_seconds": summary([600.0] * len(seeds)),
                      "seeds": list(seed_lists[role])}
    return {"mode": "full", "epochs_cap": None, "student_epochs_cap": None, "device": "cpu: test",
            "wall_seconds": 7200.0, "seeds": [0, 1, 2], "vocab_size": 6000, "max_len": 100, "train_pairs": 28_500,
            "dropped_long_pairs": 84, "test_pairs": 2005, "beam_size": 5, "rows": rows,
            "batched_sentences": 128, "serving_batch": 64,
            "word_kd_top_k": 8,
            "verdicts": {"seq_kd": "(c) student, sequence-level KD beats (a) student, references only by 4.0 BLEU",
                         "word_kd": "no measurable difference (+1.0 BLEU, within twice the seed spread)",
                         "word_seq_kd": "(d) beats (a) by 4.5 BLEU"},
            "goals": [{"goal": "teacher: test BLEU, greedy", "target": 20.0, "measured": 16.0, "met": False},
                      {"goal": "(c) student, sequence-level KD: speed-up", "target": 3.0, "measured": 4.0,
                       "met": True}],
            "sacrebleu": {"bleu": "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0",
                          "chrf": "nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no|version:2.6.0"},
            "kim_rush_2016": KIM_RUSH_2016, "paper_row": PAPER_ROW,
            "recipes": {role: translation_recipe(role, "full").to_dict() for role in TRANSLATION_ROLES}}


def test_the_block_has_every_model_beside_kim_and_rush():
    table = load_benchmark("mt_kd").readme_table(payload())
    positions = [table.index(f"| {TRANSLATION_ROLES[role].title} |") for role in TRANSLATION_ROLES]
    assert positions == sorted(positions)
    assert "| teacher | 4,000,000 (100%) | 16.0 | 17.0 | 42.0 | 40.0 | 1.0× | 1.0× | 1.0× | 17.7 |" in table
    assert ("| (c) student, sequence-level KD | 900,000 (22%) | 14.0 ± 0.5 | 15.0 ± 0.5 | 42.0 ± 0.5 | 10.0 | 4.0× "
            "| 3.5× | 5.0× | 18.9 |") in table
    assert "| speed-up, greedy, batches of 64 |" in table and "128 test verses in batches of 64" in table
    assert "| (d) student, sequence- + word-level KD | 900,000 (22%) | 14.5 | 15.5 |" in table
    assert "| 5.0× | – |" in table
    assert "28,500 training verse pairs (84 longer than 100 subwords left out)" in table
    assert "seeds per student: (a) 3; (b) 1; (c) 3; (d) 1;" in table
    assert "word-level KD on the teacher's top 8 subwords a position, computed once;" in table
    assert "120 min wall time, models from the cache included, 80 min of student training in all;" in table
    verdicts = [table.index(f"- {TRANSLATION_ROLES[role].title}: ") for role in ("word_kd", "seq_kd", "word_seq_kd")]
    assert verdicts == sorted(verdicts), "the verdicts follow the table's order, whatever the JSON's key order"
    assert "- (c) student, sequence-level KD: (c) student, sequence-level KD beats" in table
    assert "- teacher: test BLEU, greedy: 16 against 20: not met." in table
    assert "- (c) student, sequence-level KD: speed-up: 4 against 3: met." in table
    assert "BLEU `nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0`" in table


def test_readme_only_rewrites_just_the_marked_block(tmp_path):
    text = readme_only("mt_kd", payload(), "mt-kd", tmp_path)
    assert text.startswith("intro\n") and text.endswith("outro\n") and "old" not in text and "cpu: test" in text


def test_the_benchmark_defaults_to_the_course_seeds_in_full_mode():
    parser = load_benchmark("mt_kd").BENCHMARK.parser()
    args = parser.parse_args([])
    assert (args.mode, args.seeds, args.eval_pairs, args.latency_rounds) == ("full", None, None, 3)
    assert parser.parse_args(["--seeds", "0", "1"]).seeds == [0, 1]
