"""Tables in the notebooks, the deck and the README: one Markdown writer for all of them (chapter 00)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def markdown_table(header: list[str], rows: list[tuple]) -> str:
    """A Markdown table: ``header`` cells, then one line per row, cells turned into text (chapter 09)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def show_table(header: list[str], rows: list[tuple]) -> None:
    """Display ``rows`` under ``header`` as a Markdown table in the notebook (or slide) being run (chapter 09)."""
    from IPython.display import Markdown, display

    display(Markdown(markdown_table(header, rows)))


def mean_sd(summary: Mapping[str, Any], scale: float = 1.0) -> str:
    """A score over seeds (``{"per_seed", "mean", "sd"}``) as ``"12.3 ± 0.4"``, or ``"12.3"`` from one (chapter 06).

    ``scale`` turns the score into the unit shown (100 for F1 in points).
    """
    text = f"{scale * summary['mean']:.1f}"
    return text if len(summary["per_seed"]) == 1 else f"{text} ± {scale * summary['sd']:.1f}"


def seeds_cell(summary: Mapping[str, Any] | None, scale: float = 1.0) -> str:
    """A score over several seeds as ``"61.0 ± 0.4 (3 seeds)"``, or "–" for one seed or none (chapter 09)."""
    if not summary or len(summary["per_seed"]) < 2:
        return "–"
    return f"{mean_sd(summary, scale)} ({len(summary['per_seed'])} seeds)"
