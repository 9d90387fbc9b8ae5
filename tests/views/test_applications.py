"""Tests for course_lib.views.applications: what the two case figures draw and how bad input is refused."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pytest

from course_lib.views.applications import plot_fast_and_full, plot_per_class_f1, plot_teacher_share

LABELS = ("positive", "neutral", "negative")
ROWS = {
    "teacher": {"title": "teacher", "macro_f1": 0.6, "per_class_f1": {"positive": 0.3, "neutral": 0.8, "negative": 0.7}},
    "scratch": {"title": "(a) student", "macro_f1": 0.5, "per_class_f1": {"positive": 0.0, "neutral": 0.8, "negative": 0.7}},
}


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_per_class_f1_draws_one_bar_per_model_and_class_plus_macro():
    ax = plot_per_class_f1(ROWS, LABELS)
    heights = [patch.get_height() for patch in ax.patches]
    assert len(heights) == 2 * 4
    assert heights[:4] == pytest.approx([30, 80, 70, 60]) and heights[4] == 0.0
    assert [t.get_text() for t in ax.get_xticklabels()] == [*LABELS, "macro-F1"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["teacher", "(a) student"]


def test_fast_and_full_pairs_the_two_runs_for_every_role_in_the_fast_order():
    full = {"scratch": {"macro_f1": 0.55}, "teacher": {"macro_f1": 0.65}}
    _, ax = plt.subplots()
    assert plot_fast_and_full(ROWS, full, "macro_f1", xlabel="macro-F1 (%)", scale=100, ax=ax) is ax
    widths = [patch.get_width() for patch in ax.patches]
    assert widths == pytest.approx([60, 50, 65, 55])
    assert [t.get_text() for t in ax.get_yticklabels()] == ["teacher", "(a) student"]


def test_teacher_share_draws_our_mean_and_spread_beside_the_published_share():
    _, ax = plt.subplots()
    per_seed = {"(a) alone": [9.0, 10.0, 11.0], "(b) word KD": [12.0], "(d) both": [15.0]}
    published = {"(a) alone": 14.7, "(b) word KD": 15.4}
    assert plot_teacher_share(per_seed, 20.0, published, 17.7, xlabel="% of the teacher's BLEU", ax=ax) is ax
    widths = [patch.get_width() for patch in ax.patches]
    assert widths == pytest.approx([50, 60, 75, 100 * 14.7 / 17.7, 100 * 15.4 / 17.7])
    assert [t.get_text() for t in ax.get_yticklabels()] == list(per_seed)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["this course", "published"]
    _, ax = plt.subplots()
    plot_teacher_share(per_seed, 20.0, published, 17.7, xlabel="%", paper="Kim & Rush 2016", ax=ax)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["this course", "Kim & Rush 2016"]


@pytest.mark.parametrize("call, match", [
    (lambda: plot_per_class_f1({}, LABELS), "non-empty mapping"),
    (lambda: plot_per_class_f1(ROWS, "positive"), "labels must be"),
    (lambda: plot_per_class_f1({"t": {"macro_f1": 0.5, "per_class_f1": {"positive": 1}}}, LABELS), "'neutral'"),
    (lambda: plot_fast_and_full(ROWS, {"teacher": {"macro_f1": 0.6}}, "macro_f1", xlabel="x"), "no row 'scratch'"),
    (lambda: plot_fast_and_full(ROWS, ROWS, "accuracy", xlabel="x"), "must be a finite number"),
    (lambda: plot_teacher_share({"a": [1.0]}, 0.0, {}, 10.0, xlabel="x"), "teacher must be a positive score"),
    (lambda: plot_teacher_share({"a": [1.0]}, 2.0, {"b": 1.0}, 10.0, xlabel="x"), r"lacks: \['b'\]"),
    (lambda: plot_teacher_share({"a": []}, 2.0, {}, 10.0, xlabel="x"), "non-empty sequence of finite scores"),
])
def test_bad_rows_say_what_is_wrong(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_an_axes_or_a_row_of_the_wrong_kind_is_refused():
    with pytest.raises(TypeError, match="matplotlib Axes"):
        plot_per_class_f1(ROWS, LABELS, ax="left")
    with pytest.raises(TypeError, match="no per_class_f1"):
        plot_per_class_f1({"t": {"macro_f1": 0.5}}, LABELS)
