"""Tests for course_lib.course.timeline: the milestone data and the two plots of chapter 01."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pytest

from course_lib.course.timeline import KINDS, KIND_COLORS, MILESTONES, _Milestone, plot_parameter_growth, plot_timeline

REQUIRED = {
    "LSTM",
    "Attention (Bahdanau et al.)",
    "Transformer (base)",
    "BERT-base",
    "GPT-2",
    "RoBERTa-large",
    "T5-11B",
    "Model compression",
    "Knowledge distillation (Hinton et al.)",
    "FitNets (hints)",
    "Sequence-level KD (Kim & Rush)",
    "DistilBERT",
    "TinyBERT-4",
    "MiniLM",
    "Patient & consistent KD (Beyer et al.)",
}


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _scatter_points(ax) -> int:
    return sum(len(collection.get_offsets()) for collection in ax.collections)


def _labels(ax) -> list[str]:
    return [text.get_text() for text in ax.texts if text.get_text()]


def test_milestones_sorted_by_date():
    dates = [(m.year, m.month) for m in MILESTONES]
    assert dates == sorted(dates)


def test_milestone_fields_are_sane():
    assert {m.kind for m in MILESTONES} <= set(KINDS)
    assert set(KINDS) <= set(KIND_COLORS)
    names = [m.name for m in MILESTONES]
    assert len(names) == len(set(names)), "milestone names must be unique"
    assert REQUIRED <= set(names)
    for m in MILESTONES:
        assert m.reference.strip(), m.name
        assert 1 <= m.month <= 12
        if m.params_millions is not None:
            assert m.params_millions > 0, m.name


def test_distilled_students_point_at_larger_known_teachers():
    by_name = {m.name: m for m in MILESTONES}
    students = [m for m in MILESTONES if m.distilled_from is not None]
    assert {m.name for m in students} >= {"DistilBERT", "TinyBERT-4"}
    for student in students:
        teacher = by_name[student.distilled_from]
        assert student.kind == "distillation"
        assert teacher.date <= student.date
        assert teacher.params_millions > student.params_millions


def test_published_parameter_counts():
    params = {m.name: m.params_millions for m in MILESTONES}
    assert params["BERT-base"] == 110
    assert params["DistilBERT"] == 66
    assert params["TinyBERT-4"] == 14.5
    assert params["BERT-large"] == 340


def test_date_is_decimal_year():
    assert _Milestone(2019, 1, "a", "architecture", None, "ref").date == 2019.0
    assert _Milestone(2019, 7, "a", "architecture", None, "ref").date == pytest.approx(2019.5)


@pytest.mark.parametrize(
    "kwargs, error, fragment",
    [
        ({"month": 13}, ValueError, "month"),
        ({"year": "2019"}, ValueError, "year"),
        ({"kind": "model"}, ValueError, "kind"),
        ({"params_millions": 0}, ValueError, "params_millions"),
        ({"params_millions": "66M"}, TypeError, "params_millions"),
        ({"reference": " "}, ValueError, "reference"),
        ({"name": ""}, ValueError, "name"),
    ],
)
def test_milestone_rejects_bad_fields(kwargs, error, fragment):
    fields = {"year": 2019, "month": 10, "name": "x", "kind": "distillation",
              "params_millions": 66, "reference": "ref"}
    fields.update(kwargs)
    with pytest.raises(error, match=fragment):
        _Milestone(**fields)


def test_plot_timeline_one_marker_and_label_per_milestone():
    ax = plot_timeline(MILESTONES)
    assert _scatter_points(ax) == len(MILESTONES)
    labels = _labels(ax)
    assert len(labels) == len(MILESTONES)
    for m in MILESTONES:
        assert sum(label.startswith((m.name + " (", m.name + " ·")) for label in labels) == 1, m.name


def test_plot_timeline_uses_given_axes():
    fig, ax = plt.subplots()
    assert plot_timeline(MILESTONES[:3], ax=ax) is ax
    assert _scatter_points(ax) == 3


def test_plot_parameter_growth_only_milestones_with_counts():
    with_params = [m for m in MILESTONES if m.params_millions is not None]
    ax = plot_parameter_growth(MILESTONES)
    assert ax.get_yscale() == "log"
    assert _scatter_points(ax) == len(with_params)
    labels = _labels(ax)
    assert len(labels) == len(with_params)
    for m in with_params:
        assert sum(label.startswith(m.name + " (") for label in labels) == 1, m.name
    arrows = [text for text in ax.texts if not text.get_text()]
    assert len(arrows) == sum(m.distilled_from is not None for m in with_params)


def test_plot_parameter_growth_needs_a_count():
    no_params = [m for m in MILESTONES if m.params_millions is None]
    with pytest.raises(ValueError, match="params_millions"):
        plot_parameter_growth(no_params)


@pytest.mark.parametrize("plot", [plot_timeline, plot_parameter_growth])
def test_plots_reject_bad_input(plot):
    with pytest.raises(ValueError, match="empty"):
        plot([])
    with pytest.raises(TypeError, match="milestones"):
        plot("BERT")
    with pytest.raises(TypeError, match=r"milestones\[1\]"):
        plot([MILESTONES[-1], "BERT"])
    with pytest.raises(TypeError, match="ax"):
        plot(MILESTONES, ax="axes")
