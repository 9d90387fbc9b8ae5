"""Tests for course_lib.cases.deploy.table: the four served variants measured on real test data."""

from __future__ import annotations

import pytest

from course_lib.serve.bundle import load_bundle
from course_lib.cases.deploy.table import DEPLOY_GOALS, VARIANTS, digit_accuracy, measure_deployment, _ner_f1
from course_lib.views.deployment import plot_deployment
from course_lib.cases.ner.compare import _split_scores
from course_lib.serve.predict import load_predictor


@pytest.fixture(scope="module")
def tables(tiny_deploy_pairs):
    pairs = tiny_deploy_pairs["pairs"]
    return {
        "ner": measure_deployment(pairs["ner"], tiny_deploy_pairs["corpus"].test[:300], rounds=2,
                                  seconds_per_round=0.005),
        "mnist": measure_deployment(pairs["mnist"], tiny_deploy_pairs["mnist"], rounds=2, seconds_per_round=0.005),
    }


@pytest.mark.parametrize("task", ["ner", "mnist"])
def test_every_variant_is_measured_with_its_own_file(tables, tiny_deploy_pairs, task):
    table, pair = tables[task], tiny_deploy_pairs["pairs"][task]
    assert tuple(table.rows) == VARIANTS
    files = {"teacher_torch": pair.teacher / "model.safetensors", "student_torch": pair.student / "model.safetensors",
             "student_onnx": pair.student / "model.onnx", "student_int8": pair.student / "model.int8.onnx"}
    for variant, row in table.rows.items():
        assert row.size_bytes == files[variant].stat().st_size
        assert 0.0 <= row.score <= 1.0
        assert row.batch1.batch_size == 1 and row.batch32.batch_size == 32
        assert 0 < row.batch1.p50_ms <= row.batch1.p95_ms
    student_parameters = table.rows["student_torch"].parameters
    assert {table.rows[v].parameters for v in ("student_onnx", "student_int8")} == {student_parameters}
    assert table.rows["teacher_torch"].parameters > student_parameters
    assert table.rows["student_int8"].size_bytes < table.rows["student_onnx"].size_bytes
    assert table.speedup("teacher_torch") == pytest.approx(1.0)
    assert table.score_loss("student_torch") == 0.0


def test_the_float_onnx_student_scores_exactly_like_pytorch(tables):
    for table in tables.values():
        assert table.rows["student_onnx"].score == pytest.approx(table.rows["student_torch"].score, abs=1e-9)


def test_ner_f1_through_the_predictor_matches_chapter_07s_evaluation(tiny_deploy_pairs):
    sentences = tiny_deploy_pairs["corpus"].test[:200]
    bundle = load_bundle(tiny_deploy_pairs["pairs"]["ner"].teacher)
    predictor = load_predictor(bundle.folder)
    assert _ner_f1(predictor, sentences) == pytest.approx(_split_scores(bundle.model, bundle.vocab, sentences)["f1"])
    texts = ["".join(sentence.chars) for sentence in sentences]
    for text, tags in zip(texts, predictor.tags(texts)):
        assert len(tags) == len(text)
        assert all(not tag.startswith("I-") or (i and previous[2:] == tag[2:])
                   for i, (previous, tag) in enumerate(zip(["O", *tags], tags))), "Viterbi keeps every I- after its B-/I-"


def test_digit_accuracy_counts_the_test_digits(tiny_deploy_pairs):
    mnist = tiny_deploy_pairs["mnist"]
    predictor = load_predictor(tiny_deploy_pairs["pairs"]["mnist"].teacher)
    accuracy = digit_accuracy(predictor, mnist)
    assert accuracy == pytest.approx((predictor.predict(mnist.test_images).digits == mnist.test_labels).mean())
    assert accuracy > 0.5, "a teacher trained on 2,000 real digits for one epoch is far above chance"


def test_goals_are_checked_for_ner_only_and_the_dict_round_trips_into_the_plot(tables):
    ner, mnist = tables["ner"], tables["mnist"]
    goals = ner.goals()
    assert [g.target for g in goals] == [DEPLOY_GOALS["int8_speedup_batch1"], DEPLOY_GOALS["int8_score_loss"]]
    assert goals[0].measured == pytest.approx(ner.speedup("student_int8"))
    assert goals[1].met == (ner.score_loss("student_int8") <= 0.01)
    assert mnist.goals() == []
    data = ner.to_dict()
    assert set(data["rows"]) == set(VARIANTS) and data["rows"]["student_int8"]["batch32"]["batch_size"] == 32
    for table in (ner, data):
        figure = plot_deployment(table)
        assert len(figure.axes) == 3
        assert [bar.get_height() for bar in figure.axes[1].patches] == pytest.approx(
            [ner.rows[v].size_bytes / 1e6 for v in VARIANTS])


def test_pairs_of_different_tasks_are_refused(tiny_deploy_pairs):
    pairs = tiny_deploy_pairs["pairs"]
    mixed = type(pairs["ner"])("ner", pairs["ner"].teacher, pairs["mnist"].student, False, 0.0)
    with pytest.raises(ValueError, match="both bundles must be 'ner' models"):
        measure_deployment(mixed, tiny_deploy_pairs["corpus"].test[:50], rounds=1)
