"""Training figures used from chapter 04 on: learning curves, loss-curve comparisons, lr schedules.

Every function draws on the ``ax`` it is given (or on a new figure when ``ax`` is None) and
returns that Axes, so a chapter can place several plots side by side and a test can inspect
the lines that were drawn.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from numbers import Real
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes

from course_lib import checks


def _as_float_list(values: Any, name: str) -> list[float]:
    """``values`` as a non-empty list of floats, or a clear error naming ``name``."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise TypeError(f"{name} must be a sequence of numbers, got {type(values).__name__}")
    if len(values) == 0:
        raise ValueError(f"{name} is empty: there is nothing to plot")
    floats = []
    for index, value in enumerate(values):
        if isinstance(value, bool) or not isinstance(value, Real):
            raise TypeError(f"{name}[{index}] must be a number, got {type(value).__name__} {value!r}")
        floats.append(float(value))
    return floats


def axes_or_new(ax: Axes | None, figsize: tuple[float, float] = (7, 4)) -> Axes:
    """``ax``, or the axes of a new ``figsize`` figure when it is None; TypeError for anything else (chapter 02)."""
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    elif not isinstance(ax, Axes):
        raise TypeError(f"ax must be a matplotlib Axes or None, got {type(ax).__name__}")
    return ax


def _moving_average(values: Sequence[float], window: int) -> np.ndarray:
    """Trailing mean over the last ``window`` values (fewer at the start); same length as ``values``.

    Non-finite values (a diverged loss) become NaN, and so does every average from there on.
    """
    checks.positive_int("window", window)
    array = np.asarray(_as_float_list(values, "values"), dtype=np.float64)
    array[~np.isfinite(array)] = np.nan
    cumulative = np.concatenate([[0.0], np.cumsum(array)])
    ends = np.arange(1, len(array) + 1)
    starts = np.maximum(0, ends - window)
    return (cumulative[ends] - cumulative[starts]) / (ends - starts)


def plot_learning_curve(history: Any, ax: Axes | None = None, window: int | None = None) -> Axes:
    """Training loss per step (raw and smoothed) and the dev metric per epoch on a twin y-axis (chapter 04).

    ``history`` is a :class:`course_lib.train.loop.TrainingHistory` (or anything with
    ``step_losses``, ``epochs`` whose items have a ``dev`` dict, and ``monitor``). The dev
    metric of epoch ``e`` is drawn at the last step of that epoch; when the history holds no
    dev metrics only the loss is drawn. ``window`` is the smoothing window (default: about
    a twentieth of the steps). Returns the loss Axes; the twin Axes is ``ax.figure.axes[-1]``.
    """
    for attribute in ("step_losses", "epochs", "monitor"):
        if not hasattr(history, attribute):
            raise TypeError(
                f"history must be a TrainingHistory (with step_losses, epochs and monitor), "
                f"got {type(history).__name__} without {attribute!r}"
            )
    losses = _as_float_list(history.step_losses, "history.step_losses")
    if window is None:
        window = max(1, len(losses) // 20)
    ax = axes_or_new(ax)
    steps = np.arange(1, len(losses) + 1)
    ax.plot(steps, losses, color="tab:blue", alpha=0.25, linewidth=0.8, label="train loss (per step)")
    ax.plot(steps, _moving_average(losses, window), color="tab:blue", linewidth=2,
            label=f"train loss (mean of {window})")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("training loss")
    ax.grid(alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()

    monitor = history.monitor
    records = [record for record in history.epochs if monitor in getattr(record, "dev", {})]
    if records:
        steps_per_epoch = len(losses) / len(history.epochs)
        epoch_ends = [round(record.epoch * steps_per_epoch) for record in records]
        scores = [record.dev[monitor] for record in records]
        twin = ax.twinx()
        twin.plot(epoch_ends, scores, color="tab:orange", marker="o", linewidth=2,
                  label=f"dev {monitor} (per epoch)")
        twin.set_ylabel(f"dev {monitor}")
        twin_handles, twin_labels = twin.get_legend_handles_labels()
        handles, labels = handles + twin_handles, labels + twin_labels
    ax.legend(handles, labels, loc="center right")
    ax.set_title("Learning curve")
    return ax


def plot_loss_curves(
    curves: Mapping[str, Sequence[float]],
    ax: Axes | None = None,
    title: str = "Training loss",
    window: int = 1,
) -> Axes:
    """One line per named loss curve (per-step losses), smoothed over ``window`` steps (chapter 04).

    A curve that holds a non-finite value (a diverged run) is drawn up to its last finite
    point, which gets an ``x`` marker. Returns the Axes.
    """
    if not isinstance(curves, Mapping):
        raise TypeError(f"curves must be a dict of name -> list of losses, got {type(curves).__name__}")
    if not curves:
        raise ValueError("curves is empty: pass at least one name -> list of losses")
    checked = {str(name): _as_float_list(values, f"curves[{name!r}]") for name, values in curves.items()}
    ax = axes_or_new(ax)
    for name, values in checked.items():
        smoothed = _moving_average(values, window)
        steps = np.arange(1, len(smoothed) + 1)
        (line,) = ax.plot(steps, smoothed, linewidth=1.8, label=name)
        finite = np.flatnonzero(np.isfinite(smoothed))
        if not all(math.isfinite(v) for v in values) and finite.size:
            last = finite[-1]
            ax.plot([steps[last]], [smoothed[last]], marker="x", markersize=10, color=line.get_color())
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("training loss" + (f" (mean of {window} steps)" if window > 1 else ""))
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    return ax


def plot_lr_schedule(scheduler_values: Sequence[float], ax: Axes | None = None) -> Axes:
    """The learning rate used at each optimizer step (e.g. a warm-up + decay schedule). Returns the Axes (chapter 04)."""
    values = _as_float_list(scheduler_values, "scheduler_values")
    ax = axes_or_new(ax)
    ax.plot(np.arange(1, len(values) + 1), values, color="tab:green", linewidth=2)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("learning rate")
    ax.set_title("Learning-rate schedule")
    ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
    ax.grid(alpha=0.3)
    return ax
