"""Tests for the case benchmarks (news, poetry, MNIST size sweep, architectures, NER recipe study and reference KD):
the README blocks they write from JSON."""

from __future__ import annotations

import pytest

from course_lib.cases.mnist.consistent import ConsistentStudy, consistent_student_recipe
from course_lib.cases.mnist.models import mnist_recipe
from course_lib.cases.ner.recipe_study import STUDY_VARIANTS, study_recipe
from course_lib.cases.ner.reference_kd import REFERENCE_KD_ROLES, reference_kd_recipe
from course_lib.cases.news import DISTILBERT_2019, NEWS_ROLES, news_recipe
from course_lib.cases.poetry import KIM_RUSH_2016, POETRY_ROLES, poetry_recipe
from tests.benchmarks import load_benchmark, readme_only


def news_payload() -> dict:
    f1 = {"teacher": 0.64, "scratch": 0.62, "logit_kd": 0.635, "transfer_kd": 0.64}
    rows = {role: {"title": NEWS_ROLES[role].title, "parameters": 900 if role == "teacher" else 130, "accuracy": f1[role] + 0.1,
                   "macro_f1": f1[role], "per_class_f1": {"positive": 0.4, "neutral": 0.7, "negative": 0.8},
                   "latency_batch1_ms": 2.5 if role == "teacher" else 0.7,
                   "training_windows": 20_000 if role == "transfer_kd" else 5355} for role in NEWS_ROLES}
    return {"mode": "full", "epochs_cap": None, "student_epochs_cap": None, "device": "cpu: test",
            "wall_seconds": 600.0, "split_sizes": {"train": 5355, "dev": 999, "test": 999},
            "recipes": {role: news_recipe(role, "full").to_dict() for role in NEWS_ROLES}, "rows": rows,
            "distilbert_2019": DISTILBERT_2019}


def poetry_payload() -> dict:
    rows = {role: {"title": POETRY_ROLES[role].title, "parameters": 1000 if role == "teacher" else 300,
                   "test_perplexity": 90.0 if role == "teacher" else 150.0, "in_form": 0.9, "teacher_nll": 4.5,
                   "ms_per_poem": 20.0 if role == "teacher" else 8.0} for role in POETRY_ROLES}
    return {"mode": "full", "epochs_cap": 6, "student_epochs_cap": None, "device": "cpu: test", "wall_seconds": 1200.0,
            "train_poems": 12934, "test_poems": 718, "samples": 500, "rows": rows, "kim_rush_2016": KIM_RUSH_2016,
            "recipes": {role: poetry_recipe(role, "full").to_dict() for role in POETRY_ROLES}}


def sweep_payload() -> dict:
    return {"mode": "full", "epochs_cap": None, "student_epochs_cap": 30, "device": "cpu: test", "wall_seconds": 3000.0,
            "teacher_errors": 97, "alpha": 0.5, "widths": [30, 800], "temperatures": [1.0, 2.5],
            "scratch": {"30": 300, "800": 140}, "distilled": {"30": [280, 270], "800": [120, 118]},
            "parameters": {"30": 24_000, "800": 1_276_810}, "best_temperature": {"30": 2.5, "800": 2.5},
            "paper": {"small": "small students like a low T"}}


def test_the_news_block_has_every_model_and_distilberts_figures():
    table = load_benchmark("news_kd").readme_table(news_payload())
    positions = [table.index(f"| {NEWS_ROLES[role].title} |") for role in NEWS_ROLES]
    assert positions == sorted(positions)
    assert "| (c) student, logit KD + unlabelled windows | 130 (14%) | 74.0 | 64.0 | 40.0 | 70.0 | 80.0 | 0.70 | 20,000 |" in table
    assert "Best student ((c) student, logit KD + unlabelled windows): 100% of the teacher's macro-F1 with 14% of its parameters, 3.6× faster" in table
    assert "DistilBERT (Sanh et al. 2019) keeps 97% of BERT's GLUE score with 60% of its parameters" in table


def test_the_poetry_block_states_the_caps_and_kim_and_rushs_figures():
    table = load_benchmark("poetry_kd").readme_table(poetry_payload())
    assert "teacher epochs capped at 6, student epochs capped at 6" in table and "500 poems sampled" in table
    assert "| (c) student, sequence-level KD | 300 (30%) | 150.0 | 90.0 % | 4.50 | 8.0 |" in table
    assert "sequence-level KD 18.9" in table


def test_the_size_block_has_a_row_per_width_and_the_best_temperature():
    table = load_benchmark("mnist_size_temperature").readme_table(sweep_payload())
    assert "| student | parameters | labels only | T=1 | T=2.5 | best T |" in table
    assert "| 800-800 | 1,276,810 | 140 | 120 | 118 | 2.5 |" in table
    assert "student epochs capped at 30" in table and "teacher with 97 test errors" in table


def rnn_payload() -> dict:
    row = {"parameters": 379_463, "test_f1": 0.32, "per_type_f1": {"PER": 0.41, "LOC": 0.4, "ORG": 0.09},
           "dev_f1": 0.3, "train_seconds": 25.0, "latency_ms": {"8": 0.58, "128": 1.48}}
    return {"mode": "full", "epochs_cap": 4, "device": "cpu: test", "wall_seconds": 1800.0,
            "recipe": {"train_sentences": None}, "rows": {"Transformer": row, "BiLSTM": {**row, "test_f1": 0.49}}}


def test_the_architecture_block_has_both_models_and_every_length():
    table = load_benchmark("rnn_vs_transformer").readme_table(rnn_payload())
    assert "both capped at 4 epochs" in table and "trained on all training sentences" in table
    assert "| model | parameters | test F1 | PER | LOC | ORG | training s | ms at 8 chars | ms at 128 chars |" in table
    assert "| BiLSTM | 379,463 | 49.0 | 41.0 | 40.0 | 9.0 | 25 | 0.58 | 1.48 |" in table


def recipe_payload() -> dict:
    rows = {variant: {"variant": variant, "title": STUDY_VARIANTS[variant][0], "parameters": 900_000,
                      "dev_curve": [0.5, 0.7], "test_f1": 0.72, "test_f1_argmax": 0.68, "train_seconds": 300.0}
            for variant in ("relative", "bilstm_bigrams")}
    return {"mode": "full", "device": "cpu: test", "wall_seconds": 1800.0, "unknown_rate": 0.0042, "rows": rows,
            "recipes": {variant: study_recipe(variant, "full").to_dict() for variant in rows}}


def test_the_recipe_block_has_each_variants_curve_and_both_decoders():
    table = load_benchmark("ner_recipe").readme_table(recipe_payload())
    assert "0.42 % of test characters are `<unk>`" in table
    assert "| BiLSTM + bigrams | 900,000 | 50.0 → 70.0 | 72.0 | 68.0 | 300 |" in table


def reference_payload() -> dict:
    students = {role: {"title": REFERENCE_KD_ROLES[role].title, "parameters": 400_000, "size_ratio": 0.1077,
                       "test_f1": [0.80, 0.82, 0.81] if role == "logit_kd" else [0.70, 0.71, 0.72],
                       "mean_f1": 0.81 if role == "logit_kd" else 0.71, "std_f1": 0.01,
                       "retention": 0.9529 if role == "logit_kd" else 0.8353, "train_seconds": 500.0,
                       "latency_batch1_ms": 1.2, "latency_batch32_ms": 0.1}
                for role in REFERENCE_KD_ROLES}
    return {"mode": "full", "device": "cpu: test", "wall_seconds": 3000.0, "seeds": [0, 1, 2],
            "teacher": {"title": "reference teacher", "parameters": 3_712_903, "test_f1": 0.85, "test_f1_argmax": 0.83,
                        "train_seconds": 2400.0, "device": "cpu, 2 threads", "latency_batch1_ms": 6.0},
            "students": students, "verdict": "logit KD beats labels only by 10.0 points",
            "verdicts": {"logit_kd": "logit KD beats labels only by 10.0 points",
                         "transfer_kd": "no measurable difference (+0.0 points, within twice the seed spread)"},
            "goals": [{"goal": "reference teacher's test F1", "target": 0.85, "measured": 0.85, "met": True},
                      {"goal": "best distilled student (logit KD): CPU speed-up at batch 1", "target": 5.0,
                       "measured": 5.0, "met": True}],
            "recipes": {role: reference_kd_recipe(role, "full").to_dict() for role in REFERENCE_KD_ROLES}}


def test_the_reference_block_has_the_teacher_each_seed_and_the_verdict():
    table = load_benchmark("ner_reference_kd").readme_table(reference_payload())
    assert "| reference teacher | 3,712,903 | 100 % | 85.0 | | 100 % | 6.00 |" in table
    assert (f"| {REFERENCE_KD_ROLES['logit_kd'].title} | 400,000 | 10.8 % | 81.0 ± 1.0 | 80.0 / 82.0 / 81.0 | 95.3 % | "
            "1.20 |") in table
    logit, transfer = (REFERENCE_KD_ROLES[role].title for role in ("logit_kd", "transfer_kd"))
    assert "seeds 0, 1, 2" in table and f"- {logit}, against labels only: logit KD beats labels only by 10.0 points." in table
    assert f"- {transfer}, against labels only: no measurable difference (+0.0 points, within twice the seed spread)." in table
    assert "| reference teacher's test F1 | 85.0 % | 85.0 % | yes |" in table
    assert table.endswith("| best distilled student (logit KD): CPU speed-up at batch 1 | 5.0× | 5.0× | yes |")


def consistent_payload() -> dict:
    study = ConsistentStudy(teacher_errors=45, teacher_seconds=150.0, temperature=20.0, alpha=0.5, epochs=30,
                            seeds=[0, 1, 2], control=[80, 82, 81], distilled=[60, 61, 62],
                            seconds={"control": [140.0] * 3, "distilled": [220.0] * 3})
    return {**study.to_dict(), "mode": "full", "device": "cpu: test", "wall_seconds": 1500.0,
            "recipes": {"teacher": mnist_recipe("teacher_cnn", "full").to_dict(),
                        "student": consistent_student_recipe("full").to_dict()}}


def test_the_consistent_block_has_each_seed_the_verdict_and_the_goals():
    table = load_benchmark("mnist_consistent").readme_table(consistent_payload())
    assert "| teacher: CNN 16-32-256, dropout, jitter | 45 | |" in table
    assert "| student 800-800, distilled on the same jittered digits | 61.0 ± 1.0 | 60 / 61 / 62 |" in table
    assert "Verdict: the distilled student beats the control by 20.0 errors." in table
    assert "| distilled student, mean test errors | ≤ 74 | 61.0 | yes |" in table
    assert "seeds 0, 1, 2" in table and "60,000 training digits" in table and "25 min wall" in table


@pytest.mark.parametrize("name, payload, marker", [
    ("mnist_consistent", consistent_payload, "mnist-consistent"),
    ("news_kd", news_payload, "news-kd"), ("poetry_kd", poetry_payload, "poetry-kd"),
    ("mnist_size_temperature", sweep_payload, "mnist-size"), ("rnn_vs_transformer", rnn_payload, "rnn-vs-transformer"),
    ("ner_recipe", recipe_payload, "ner-recipe"), ("ner_reference_kd", reference_payload, "ner-reference-kd")])
def test_readme_only_rewrites_just_the_marked_block_from_the_json(name, payload, marker, tmp_path):
    text = readme_only(name, payload(), marker, tmp_path)
    assert text.startswith("intro\n") and text.endswith("outro\n") and "old" not in text and "cpu: test" in text


def test_the_size_benchmark_refuses_a_teacher_epoch_cap(capsys):
    with pytest.raises(SystemExit):
        load_benchmark("mnist_size_temperature").main(["--epochs", "3"])
    assert "unrecognized arguments: --epochs" in capsys.readouterr().err
