"""Tests for benchmarks/ner_architectures.py: the README block it writes from a results file."""

from __future__ import annotations

from course_lib.cases.ner.recipe_study import study_recipe
from tests.benchmarks import load_benchmark, readme_only


def row(title: str, parameters: int, lr: float, f1s: list[float]) -> dict:
    mean = sum(f1s) / len(f1s)
    summary = {"per_seed": f1s, "mean": mean, "sd": 0.004}
    return {"title": title, "parameters": parameters, "dev_f1_by_lr": {"0.001": 0.7, "0.002": 0.75, "0.004": 0.72},
            "lr": lr, "test_f1": summary, "test_f1_argmax": {**summary, "mean": mean - 0.03}, "train_seconds": 250.0}


def payload() -> dict:
    rows = {"sinusoidal": row("Transformer, sinusoidal positions (chapter 04)", 940_679, 0.002, [0.65, 0.66, 0.655]),
            "bilstm": row("BiLSTM", 808_967, 0.004, [0.73, 0.72, 0.725])}
    return {"mode": "full", "device": "cpu: test", "wall_seconds": 3000.0, "seeds": [0, 1, 2],
            "learning_rates": [0.001, 0.002, 0.004], "rows": rows,
            "verdicts": {"bilstm_vs_sinusoidal":
                         "BiLSTM beats Transformer, sinusoidal positions (chapter 04) by 7.0 F1 points"},
            "recipe": study_recipe("sinusoidal", "full").to_dict()}


def test_the_block_shows_the_tuning_the_rate_used_and_mean_and_spread():
    table = load_benchmark("ner_architectures").readme_table(payload())
    assert "| model | parameters | dev F1 at lr 0.001 | dev F1 at lr 0.002 | dev F1 at lr 0.004 | lr used |" in table
    assert "| BiLSTM | 808,967 | 70.0 | 75.0 | 72.0 | 0.004 | 72.5 ± 0.4 | 69.5 ± 0.4 |" in table
    assert "3 epochs of batch 64 on all training sentences" in table and "seeds 0, 1, 2, mean ± sd" in table
    assert "- BiLSTM beats Transformer, sinusoidal positions (chapter 04) by 7.0 F1 points." in table


def test_readme_only_rewrites_just_the_marked_block(tmp_path):
    text = readme_only("ner_architectures", payload(), "ner-architectures", tmp_path)
    assert text.startswith("intro\n") and text.endswith("outro\n") and "old" not in text and "cpu: test" in text
