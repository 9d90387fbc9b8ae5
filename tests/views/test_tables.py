"""Tests for course_lib.views.tables: the one Markdown table writer and its notebook display."""

from __future__ import annotations

from course_lib.views.tables import markdown_table, mean_sd, seeds_cell, show_table



def test_markdown_table_turns_every_cell_into_text():
    assert markdown_table(["a", "b"], [(1, "x"), (2.5, None)]) == "| a | b |\n|---|---|\n| 1 | x |\n| 2.5 | None |"


def test_show_table_displays_markdown(monkeypatch):
    import IPython.display

    shown = []
    monkeypatch.setattr(IPython.display, "display", shown.append)
    show_table(["model", "F1"], [("teacher", "64.3")])
    assert shown[0].data == "| model | F1 |\n|---|---|\n| teacher | 64.3 |"


def test_mean_sd_shows_the_spread_only_over_several_seeds():
    assert mean_sd({"per_seed": [9.0, 9.1, 9.2], "mean": 9.1, "sd": 0.1}) == "9.1 ± 0.1"
    assert mean_sd({"per_seed": [11.0], "mean": 11.0, "sd": 0.0}) == "11.0"
    assert mean_sd({"per_seed": [0.72, 0.73], "mean": 0.725, "sd": 0.004}, scale=100) == "72.5 ± 0.4"


def test_seeds_cell_shows_mean_sd_and_the_count_only_over_several_seeds():
    assert seeds_cell({"per_seed": [0.66, 0.67, 0.68], "mean": 0.67, "sd": 0.01}, scale=100) == "67.0 ± 1.0 (3 seeds)"
    assert seeds_cell({"per_seed": [0.8], "mean": 0.8, "sd": 0.0}, scale=100) == "–"
    assert seeds_cell(None) == "–"
