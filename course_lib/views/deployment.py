"""Chapter 08's figure: what each way of serving a model costs and keeps, in three panels."""

from __future__ import annotations

import textwrap
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from course_lib.cases.deploy.table import VARIANTS, DeployTable


_LABEL_WIDTH = 8
"""Characters per line of an x tick label: four labels side by side in a panel a third of the figure wide."""


def _tick_label(title: str) -> str:
    """A variant's title as a short multi-line tick label: "student, ONNX Runtime int8" -> "student\nONNX\nRuntime\nint8"."""
    head, _, rest = title.partition(", ")
    return "\n".join([head, *textwrap.wrap(rest, _LABEL_WIDTH)])


def plot_deployment(table: DeployTable | dict[str, Any]) -> Figure:
    """Three panels per variant: p50 latency at batch 1 (p95 as a whisker), size on disk, test score (chapter 08).

    ``table`` is a :class:`DeployTable` or its ``to_dict()`` (e.g. read back from a results file).
    """
    data = table.to_dict() if isinstance(table, DeployTable) else table
    rows = [data["rows"][variant] for variant in VARIANTS]
    titles = [_tick_label(row["title"]) for row in rows]
    colours = ["#888888", "#1f77b4", "#2ca02c", "#d62728"]
    figure, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    p50 = [row["batch1"]["p50_ms"] for row in rows]
    p95 = [row["batch1"]["p95_ms"] for row in rows]
    axes[0].bar(titles, p50, color=colours, yerr=[np.zeros(4), np.subtract(p95, p50)], capsize=4)
    axes[0].set_ylabel("ms per call, batch 1 (p50, p95 whisker)")
    axes[1].bar(titles, [row["size_bytes"] / 1e6 for row in rows], color=colours)
    axes[1].set_ylabel("size on disk (MB)")
    axes[2].bar(titles, [100 * row["score"] for row in rows], color=colours)
    axes[2].set_ylabel(f"test {data['score_name']} (%)")
    for ax in axes:
        ax.tick_params(axis="x", labelsize=8)
        ax.grid(axis="y", alpha=0.3)
    figure.suptitle(f"{data['task'].upper()}: serving the teacher and the student on one CPU thread")
    figure.tight_layout()
    return figure
