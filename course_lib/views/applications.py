"""Figures of chapter 09's cases: per-class F1, a run beside a results file, students' share of the teacher beside a paper's.

The first two take the measured rows as plain dicts keyed by role — what a case's
``to_dict()["rows"]`` returns and what ``results/*_kd_full.json`` holds — draw on the ``ax`` they
are given (or a new figure), and return it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from numbers import Real
from typing import Any

import numpy as np
from matplotlib.axes import Axes

from course_lib.views.plots import axes_or_new

Rows = Mapping[str, Mapping[str, Any]]
COLOURS = ("#6baed6", "#bdbdbd", "#74c476", "#31a354", "#fd8d3c", "#9e9ac8")


def _number(rows: Rows, role: str, key: str, name: str) -> float:
    """``rows[role][key]`` as a finite float, or an error naming what is missing or wrong."""
    if role not in rows:
        raise ValueError(f"{name} has no row {role!r}; it has {sorted(rows)}")
    value = rows[role].get(key) if isinstance(rows[role], Mapping) else None
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
        raise ValueError(f"{name}[{role!r}][{key!r}] must be a finite number, got {value!r}")
    return float(value)


def _roles(rows: Rows, name: str) -> list[str]:
    if not isinstance(rows, Mapping) or not rows:
        raise ValueError(f"{name} must be a non-empty mapping of role -> measured row")
    return list(rows)


def plot_per_class_f1(rows: Rows, labels: Sequence[str], ax: Axes | None = None) -> Axes:
    """Grouped bars: each model's test F1 on every class and its macro-F1, in percent (chapter 09).

    ``rows[role]`` needs ``per_class_f1`` (one entry per name in ``labels``), ``macro_f1`` and,
    optionally, ``title`` for the legend. A class no model finds shows as bars of height 0.
    """
    roles = _roles(rows, "rows")
    if isinstance(labels, str) or not labels:
        raise ValueError("labels must be a non-empty sequence of class names")
    ax = axes_or_new(ax, (8, 3.5))
    groups = [*labels, "macro-F1"]
    width = 0.8 / len(roles)
    for index, role in enumerate(roles):
        per_class = rows[role].get("per_class_f1")
        if not isinstance(per_class, Mapping):
            raise TypeError(f"rows[{role!r}] has no per_class_f1 mapping")
        heights = [100 * _number({role: per_class}, role, label, "per_class_f1") for label in labels]
        heights.append(100 * _number(rows, role, "macro_f1", "rows"))
        ax.bar(np.arange(len(groups)) + (index - (len(roles) - 1) / 2) * width, heights, width,
               label=str(rows[role].get("title", role)), color=COLOURS[index % len(COLOURS)])
    ax.set_xticks(np.arange(len(groups)), groups)
    ax.set_ylabel("test F1 (%)")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=8, loc="upper left")
    return ax


def plot_fast_and_full(fast: Rows, full: Rows, metric: str, *, xlabel: str, scale: float = 1.0,
                       ax: Axes | None = None) -> Axes:
    """Paired horizontal bars of ``metric`` for every role: this run beside the results file (chapter 09).

    ``fast`` and ``full`` map the same roles to their measured rows; the value drawn is
    ``scale * row[metric]`` (``scale=100`` for a share in percent). Roles are drawn in the order of
    ``fast``, top to bottom; the title of the row names each.
    """
    roles = _roles(fast, "fast")
    _roles(full, "full")
    ax = axes_or_new(ax, (6, 3))
    positions = np.arange(len(roles))
    for offset, (rows, name, colour) in enumerate(((fast, "this run", "#9ecae1"), (full, "results file", "#3182bd"))):
        values = [scale * _number(rows, role, metric, name) for role in roles]
        ax.barh(positions + (offset - 0.5) * 0.38, values, 0.38, label=name, color=colour)
    ax.set_yticks(positions, [str(fast[role].get("title", role)) for role in roles])
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    ax.legend(fontsize=8)
    return ax


def plot_teacher_share(per_seed: Mapping[str, Sequence[float]], teacher: float, published: Mapping[str, float],
                       published_teacher: float, *, xlabel: str, paper: str = "published",
                       ax: Axes | None = None) -> Axes:
    """Each student's score as a percentage of its teacher's, beside a paper's students and teacher (chapter 09).

    ``per_seed`` maps a student's name to its scores over seeds: the bar is their mean over
    ``teacher``, the error bar one standard deviation. ``published`` maps some of the same names
    to the paper's scores, drawn as a share of ``published_teacher`` beside ours and labelled ``paper``
    (e.g. "Kim & Rush 2016"). A line marks 100 %.
    """
    names = _roles(per_seed, "per_seed")
    unknown = sorted(set(published) - set(names))
    if unknown:
        raise ValueError(f"published has names that per_seed lacks: {unknown}")
    for name, value in (("teacher", teacher), ("published_teacher", published_teacher)):
        if isinstance(value, bool) or not isinstance(value, Real) or not value > 0:
            raise ValueError(f"{name} must be a positive score, got {value!r}")
    ax = axes_or_new(ax, (6, 3))
    positions = np.arange(len(names))
    for name in names:
        scores = per_seed[name]
        if not scores or any(isinstance(v, bool) or not isinstance(v, Real) or not math.isfinite(v) for v in scores):
            raise ValueError(f"per_seed[{name!r}] must be a non-empty sequence of finite scores, got {scores!r}")
    ours = [100 * float(np.mean(per_seed[name])) / teacher for name in names]
    spread = [100 * float(np.std(per_seed[name], ddof=1)) / teacher if len(per_seed[name]) > 1 else 0.0
              for name in names]
    ax.barh(positions - 0.19, ours, 0.38, xerr=spread, label="this course", color="#3182bd", capsize=3)
    theirs = [(index, 100 * published[name] / published_teacher)
              for index, name in enumerate(names) if name in published]
    ax.barh([index + 0.19 for index, _ in theirs], [share for _, share in theirs], 0.38, label=paper,
            color="#bdbdbd")
    ax.axvline(100, color="black", linewidth=1, linestyle="--")
    ax.set_yticks(positions, names)
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    ax.legend(fontsize=8, loc="lower right")
    return ax
