"""Tests for course_lib.views.plots: what each figure draws and how bad input is refused."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from course_lib.views.plots import (  # noqa: E402
    _moving_average,
    plot_learning_curve,
    plot_loss_curves,
    plot_lr_schedule,
)
from course_lib.train.loop import _EpochRecord, TrainingHistory  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def make_history(epochs: int = 3, steps_per_epoch: int = 10, with_dev: bool = True) -> TrainingHistory:
    history = TrainingHistory(monitor="f1", mode="max")
    history.step_losses = [2.0 / (1 + step) for step in range(epochs * steps_per_epoch)]
    for epoch in range(1, epochs + 1):
        dev = {"f1": 0.2 * epoch, "precision": 0.5} if with_dev else {}
        history.epochs.append(_EpochRecord(epoch=epoch, train_loss=1.0 / epoch, dev=dev, lr=1e-3))
    return history


def test_moving_average_is_trailing_mean_of_same_length():
    result = _moving_average([1, 2, 3, 4, 5], window=2)
    np.testing.assert_allclose(result, [1.0, 1.5, 2.5, 3.5, 4.5])
    np.testing.assert_allclose(_moving_average([3.0, 1.0], window=1), [3.0, 1.0])


def test_moving_average_turns_divergence_into_nan():
    result = _moving_average([1.0, float("inf"), 2.0], window=1)
    assert result[0] == 1.0
    assert math.isnan(result[1]) and math.isnan(result[2])  # a diverged run stays diverged


@pytest.mark.parametrize("window", [0, -1, 1.5, True])
def test_moving_average_rejects_bad_window(window):
    with pytest.raises(ValueError, match="window"):
        _moving_average([1.0, 2.0], window=window)


def test_learning_curve_draws_loss_and_dev_metric_on_twin_axis():
    history = make_history(epochs=3, steps_per_epoch=10)
    ax = plot_learning_curve(history)
    assert len(ax.get_lines()) == 2  # raw and smoothed loss
    assert ax.get_xlabel() == "optimizer step"
    assert ax.get_ylabel() == "training loss"
    twin = ax.figure.axes[-1]
    assert twin is not ax
    assert twin.get_ylabel() == "dev f1"
    (dev_line,) = twin.get_lines()
    np.testing.assert_allclose(dev_line.get_xdata(), [10, 20, 30])  # end of each epoch
    np.testing.assert_allclose(dev_line.get_ydata(), [0.2, 0.4, 0.6])
    legend_texts = [text.get_text() for text in ax.get_legend().get_texts()]
    assert "dev f1 (per epoch)" in legend_texts


def test_learning_curve_without_dev_metrics_has_no_twin_axis():
    ax = plot_learning_curve(make_history(with_dev=False))
    assert len(ax.figure.axes) == 1
    assert len(ax.get_lines()) == 2


def test_learning_curve_uses_given_axes():
    fig, (left, right) = plt.subplots(1, 2)
    returned = plot_learning_curve(make_history(), ax=right)
    assert returned is right
    assert len(left.get_lines()) == 0


def test_learning_curve_rejects_empty_and_wrong_input():
    empty = TrainingHistory(monitor="f1", mode="max")
    with pytest.raises(ValueError, match="step_losses is empty"):
        plot_learning_curve(empty)
    with pytest.raises(TypeError, match="TrainingHistory"):
        plot_learning_curve({"step_losses": [1.0]})
    with pytest.raises(TypeError, match="Axes"):
        plot_learning_curve(make_history(), ax="left")


def test_loss_curves_one_labelled_line_per_curve():
    curves = {"pre-norm": [2.0, 1.0, 0.5], "post-norm": [2.0, 1.5, 1.2, 1.1]}
    ax = plot_loss_curves(curves, title="Pre vs post")
    lines = ax.get_lines()
    assert [line.get_label() for line in lines] == ["pre-norm", "post-norm"]
    assert len(lines[1].get_xdata()) == 4
    assert ax.get_title() == "Pre vs post"
    assert [text.get_text() for text in ax.get_legend().get_texts()] == ["pre-norm", "post-norm"]


def test_loss_curves_mark_a_diverged_run():
    curves = {"stable": [1.0, 0.8, 0.6], "diverged": [1.0, 3.0, float("nan")]}
    ax = plot_loss_curves(curves, window=1)
    lines = ax.get_lines()
    assert len(lines) == 3  # two curves and one divergence marker
    marker = lines[-1]
    assert marker.get_marker() == "x"
    np.testing.assert_allclose(marker.get_xdata(), [2])
    np.testing.assert_allclose(marker.get_ydata(), [3.0])


def test_loss_curves_smoothing_changes_the_ylabel():
    ax = plot_loss_curves({"a": [1.0, 2.0, 3.0]}, window=2)
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), [1.0, 1.5, 2.5])
    assert "mean of 2" in ax.get_ylabel()


def test_loss_curves_reject_empty_input():
    with pytest.raises(ValueError, match="curves is empty"):
        plot_loss_curves({})
    with pytest.raises(ValueError, match=r"curves\['post-norm'\] is empty"):
        plot_loss_curves({"pre-norm": [1.0], "post-norm": []})
    with pytest.raises(TypeError, match="dict"):
        plot_loss_curves([[1.0, 2.0]])
    with pytest.raises(TypeError, match="must be a number"):
        plot_loss_curves({"a": [1.0, "2"]})


def test_lr_schedule_draws_one_line():
    values = [0.0, 0.5e-3, 1e-3, 0.5e-3, 0.0]
    ax = plot_lr_schedule(values)
    (line,) = ax.get_lines()
    np.testing.assert_allclose(line.get_ydata(), values)
    np.testing.assert_allclose(line.get_xdata(), [1, 2, 3, 4, 5])
    assert ax.get_xlabel() == "optimizer step"
    assert ax.get_ylabel() == "learning rate"


def test_lr_schedule_rejects_empty_input():
    with pytest.raises(ValueError, match="scheduler_values is empty"):
        plot_lr_schedule([])
    with pytest.raises(TypeError, match="sequence of numbers"):
        plot_lr_schedule(0.001)
