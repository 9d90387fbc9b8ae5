"""Tests for course_lib.views.deployment: chapter 08's figure draws every variant with legible labels."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from course_lib.cases.deploy.table import VARIANT_TITLES, VARIANTS  # noqa: E402
from course_lib.views.deployment import _tick_label, plot_deployment  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def table_dict(task: str = "ner") -> dict:
    """A results-file table: the four variants with made-up but plausible numbers."""
    rows = {}
    for index, variant in enumerate(VARIANTS):
        p50 = 1.0 / (index + 1)
        rows[variant] = {"variant": variant, "title": VARIANT_TITLES[variant], "parameters": 1000,
                         "size_bytes": 10**6 // (index + 1), "score": 0.5 + 0.1 * index,
                         "batch1": {"p50_ms": p50, "p95_ms": 1.2 * p50}, "batch32": {"p50_ms": 8 * p50, "p95_ms": 9 * p50}}
    return {"task": task, "score_name": "F1" if task == "ner" else "accuracy", "rows": rows}


def test_tick_labels_put_the_title_on_short_lines():
    assert _tick_label("student, ONNX Runtime int8") == "student\nONNX\nRuntime\nint8"
    assert _tick_label("teacher, PyTorch") == "teacher\nPyTorch"
    for title in VARIANT_TITLES.values():
        assert title.replace(", ", " ") == " ".join(_tick_label(title).split("\n"))


@pytest.mark.parametrize("task", ["ner", "mnist"])
def test_three_panels_draw_every_variant_in_order(task):
    data = table_dict(task)
    figure = plot_deployment(data)
    assert len(figure.axes) == 3
    latency, size, score = figure.axes
    assert [bar.get_height() for bar in latency.patches] == pytest.approx(
        [data["rows"][v]["batch1"]["p50_ms"] for v in VARIANTS])
    assert [bar.get_height() for bar in size.patches] == pytest.approx(
        [data["rows"][v]["size_bytes"] / 1e6 for v in VARIANTS])
    assert [bar.get_height() for bar in score.patches] == pytest.approx(
        [100 * data["rows"][v]["score"] for v in VARIANTS])
    assert score.get_ylabel() == f"test {data['score_name']} (%)"


def test_the_x_labels_of_a_panel_do_not_overlap():
    figure = plot_deployment(table_dict())
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    for ax in figure.axes:
        boxes = [label.get_window_extent(renderer) for label in ax.get_xticklabels()]
        assert len(boxes) == len(VARIANTS)
        for left, right in zip(boxes, boxes[1:]):
            assert right.x0 - left.x1 >= 10, f"tick labels (nearly) touch in {ax.get_ylabel()!r}: {left} and {right}"
