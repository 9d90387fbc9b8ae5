"""Tests for benchmarks/qa_kd.py: the README block it writes from a results file, beside Li et al.'s figure."""

from __future__ import annotations

import pytest

from course_lib.cases.qa.compare import LI_2020, SPAN_QA_ROLES
from tests.benchmarks import load_benchmark, readme_only


def row(title: str, parameters: int, f1: float) -> dict:
    return {"title": title, "parameters": parameters, "f1": f1, "precision": f1 + 0.02, "recall": f1 - 0.02,
            "per_type_f1": {"PER": f1 + 0.05, "LOC": f1, "ORG": f1 - 0.1}, "latency_batch1_ms": 1.5,
            "train_seconds": 60.0, "dev_curve": [f1]}


def payload() -> dict:
    rows = {"teacher": row("teacher", 2_000_000, 0.8), "scratch": row("(a) student, labels only", 200_000, 0.6),
            "span_kd": row("(b) student, span-level KD", 200_000, 0.65)}
    rows["span_kd"] |= {"seeds": [0, 1, 2], "f1_over_seeds": {"per_seed": [0.65, 0.66, 0.64], "mean": 0.65, "sd": 0.01}}
    rows = {"reference_tagger": row("chapter 07's BIO tagger (shipped reference)", 3_000_000, 0.79), **rows}
    counts = {split: {"questions": 3 * n, "answers": n, "without_answer": n} for split, n in
              (("train", 40_000), ("dev", 1_000), ("test", 4_000))}
    return {"mode": "full", "epochs_cap": 4, "student_epochs_cap": None, "device": "cpu: test", "wall_seconds": 600.0,
            "rows": rows, "counts": counts, "examples": [], "li_2020": LI_2020,
            "verdict": "span-level KD beats the student alone by 5.0 F1 points"}


def test_the_block_lists_teacher_students_then_the_tagger_beside_li_et_al():
    table = load_benchmark("qa_kd").readme_table(payload())
    titles = [row["title"] for row in payload()["rows"].values()]
    positions = {title: table.index(f"| {title} |") for title in titles}
    assert sorted(positions, key=positions.get) == [payload()["rows"][role]["title"]
                                                    for role in (*SPAN_QA_ROLES, "reference_tagger")]
    assert ("| (b) student, span-level KD | 200,000 (10%) | 65.0 | 67.0 | 63.0 | 70.0 | 65.0 | 55.0 | 1.50 | "
            "65.0 ± 1.0 (3 seeds) |") in table
    assert "| teacher | 2,000,000 (100%) | 80.0 | 82.0 | 78.0 | 85.0 | 80.0 | 70.0 | 1.50 | – |" in table
    assert "120,000 training and 12,000 test questions" in table and "epochs capped at 4" in table
    assert f"F1 {100 * LI_2020['msra_f1']:.2f} on MSRA" in table
    assert "Span-level KD against the student alone: span-level KD beats the student alone by 5.0 F1 points." in table


def test_readme_only_rewrites_just_the_marked_block(tmp_path):
    text = readme_only("qa_kd", payload(), "qa-kd", tmp_path)
    assert text.startswith("intro\n") and text.endswith("outro\n") and "old" not in text and "cpu: test" in text


def test_epoch_caps_below_one_are_refused(capsys):
    with pytest.raises(SystemExit):
        load_benchmark("qa_kd").main(["--epochs", "0"])
    assert "--epochs must be at least 1" in capsys.readouterr().err
