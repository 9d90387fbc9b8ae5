"""Tests for course_lib.views.applications: what the two case figures draw and how bad input is refused."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pytest

from course_lib.views.applications import plot_fast_and_full, plot_per_class_f1

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


@pytest.mark.parametrize("call, match", [
    (lambda: plot_per_class_f1({}, LABELS), "non-empty mapping"),
    (lambda: plot_per_class_f1(ROWS, "positive"), "labels must be"),
    (lambda: plot_per_class_f1({"t": {"macro_f1": 0.5, "per_class_f1": {"positive": 1}}}, LABELS), "'neutral'"),
    (lambda: plot_fast_and_full(ROWS, {"teacher": {"macro_f1": 0.6}}, "macro_f1", xlabel="x"), "no row 'scratch'"),
    (lambda: plot_fast_and_full(ROWS, ROWS, "accuracy", xlabel="x"), "must be a finite number"),
])
def test_bad_rows_say_what_is_wrong(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_an_axes_or_a_row_of_the_wrong_kind_is_refused():
    with pytest.raises(TypeError, match="matplotlib Axes"):
        plot_per_class_f1(ROWS, LABELS, ax="left")
    with pytest.raises(TypeError, match="no per_class_f1"):
        plot_per_class_f1({"t": {"macro_f1": 0.5}}, LABELS)
