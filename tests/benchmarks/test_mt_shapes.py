"""Tests for benchmarks/mt_shapes.py: the README block it writes from a results file."""

from __future__ import annotations

from tests.benchmarks import load_benchmark, readme_only


def payload() -> dict:
    def row(bleu: float, speedup: float, encoder: int, decoder: int, d_model: int, parameters: int) -> dict:
        shape = {"encoder_layers": encoder, "decoder_layers": decoder, "d_model": d_model, "d_ff": 4 * d_model,
                 "num_heads": 4}
        return {"shape": shape, "parameters": parameters, "size_ratio": parameters / 4_000_000,
                "test": {"bleu_greedy": bleu, "bleu_beam": bleu + 1, "chrf_greedy": 40.0, "chrf_beam": 41.0},
                "speedup": speedup, "beam_speedup": speedup - 0.2, "batched_speedup": speedup + 0.5,
                "bleu_below_teacher": round(20.0 - bleu, 2),
                "meets": {"seq_kd_gap": 20.0 - bleu <= 1.0, "seq_kd_speedup": speedup >= 3.0}}

    rows = {"teacher": row(20.0, 1.0, 3, 3, 192, 4_000_000), "2+2, d_model 96": row(19.4, 1.9, 2, 2, 96, 900_000),
            "6+1, d_model 64": row(17.4, 3.1, 6, 1, 64, 600_000)}
    for key in ("bleu_below_teacher", "meets"):
        del rows["teacher"][key]
    return {"mode": "full", "device": "cpu: test", "wall_seconds": 600.0, "method": "seq_kd", "seed": 0,
            "test_pairs": 2005, "batched_sentences": 128, "serving_batch": 64,
            "goals": {"seq_kd_gap": 1.0, "seq_kd_speedup": 3.0}, "rows": rows}


def test_the_block_sets_every_shape_against_both_goals():
    table = load_benchmark("mt_shapes").readme_table(payload())
    assert "| teacher (3+3, d_model 192) | 4,000,000 | 20.0 | – | – | 1.0× | – | 1.0× | 1.0× |" in table
    assert "| 2+2, d_model 96 | 900,000 (22%) | 19.4 | 0.6 | yes | 1.90× | no | 1.70× | 2.40× |" in table
    assert "| 6+1, d_model 64 | 600,000 (15%) | 17.4 | 2.6 | no | 3.10× | yes | 2.90× | 3.60× |" in table
    assert "| within 1 BLEU | speed-up, greedy, batch 1 | 3× faster |" in table
    assert "one sequence-level-KD student of each shape, seed 0" in table and "128 verses in batches of 64" in table
    assert table.endswith("Shapes that meet both goals: none.")


def test_readme_only_rewrites_just_the_marked_block(tmp_path):
    text = readme_only("mt_shapes", payload(), "mt-shapes", tmp_path)
    assert text.startswith("intro\n") and text.endswith("outro\n") and "old" not in text and "cpu: test" in text
