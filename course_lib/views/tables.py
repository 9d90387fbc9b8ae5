"""Tables in the notebooks, the deck and the README: one Markdown writer for all of them (chapter 00)."""

from __future__ import annotations


def markdown_table(header: list[str], rows: list[tuple]) -> str:
    """A Markdown table: ``header`` cells, then one line per row, cells turned into text (chapter 09)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def show_table(header: list[str], rows: list[tuple]) -> None:
    """Display ``rows`` under ``header`` as a Markdown table in the notebook (or slide) being run (chapter 09)."""
    from IPython.display import Markdown, display

    display(Markdown(markdown_table(header, rows)))
