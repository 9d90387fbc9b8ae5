"""Tests for course_lib.views.tables: the one Markdown table writer and its notebook display."""

from __future__ import annotations

from course_lib.views.tables import markdown_table, show_table



def test_markdown_table_turns_every_cell_into_text():
    assert markdown_table(["a", "b"], [(1, "x"), (2.5, None)]) == "| a | b |\n|---|---|\n| 1 | x |\n| 2.5 | None |"


def test_show_table_displays_markdown(monkeypatch):
    import IPython.display

    shown = []
    monkeypatch.setattr(IPython.display, "display", shown.append)
    show_table(["model", "F1"], [("teacher", "64.3")])
    assert shown[0].data == "| model | F1 |\n|---|---|\n| teacher | 64.3 |"
