import json

import pytest

from course_lib.course.map import CHAPTERS, course_map_markdown, format_duration, measured_runtimes
from course_lib.course.glossary import GLOSSARY, glossary_markdown


def test_chapters_numbered_in_order_and_first_five_ready():
    assert [c.number for c in CHAPTERS] == [f"{i:02d}" for i in range(11)]
    assert all(c.available() for c in CHAPTERS[:5])


def test_course_map_table_has_a_row_per_chapter():
    table = course_map_markdown()
    assert len(table.splitlines()) == 2 + len(CHAPTERS)
    assert "| 02 | 自注意力机制 · Self-attention |" in table


def test_glossary_terms_unique_and_bilingual():
    english = [t.english.lower() for t in GLOSSARY]
    assert len(english) == len(set(english))
    assert all(t.chinese and t.meaning and t.chapter.isdigit() for t in GLOSSARY)
    assert glossary_markdown().count("\n") == len(GLOSSARY) + 1


def _write_runtimes(folder, mode, seconds, recorded_mode=None):
    folder.mkdir(exist_ok=True)
    payload = {"_runtimes_seconds": {"mode": recorded_mode or mode, "notebooks": seconds}}
    (folder / f"{mode}.json").write_text(json.dumps(payload), encoding="utf-8")


def test_course_map_shows_measured_run_times(tmp_path):
    (tmp_path / "notebooks").mkdir()
    for ch in CHAPTERS[:2]:
        (tmp_path / ch.notebook).write_text("{}", encoding="utf-8")
    _write_runtimes(tmp_path / "results", "fast", {"00_start_here": 41.6, "01_background": 130.0})
    table = course_map_markdown(root=tmp_path)
    rows = table.splitlines()[2:]
    assert rows[0].endswith("| ~15 min | 42 s | not measured | ready |")
    assert rows[1].endswith("| 2.2 min | not measured | ready |")
    assert rows[2].endswith("| – | – | coming |")


def test_measured_runtimes_reads_each_mode_and_rejects_mixed_files(tmp_path):
    assert measured_runtimes(tmp_path) == {}
    _write_runtimes(tmp_path, "full", {"04_transformer_block_and_training": 600})
    assert measured_runtimes(tmp_path) == {"full": {"04_transformer_block_and_training": 600.0}}
    _write_runtimes(tmp_path, "fast", {"00_start_here": 3}, recorded_mode="full")
    with pytest.raises(ValueError, match="holds run times of a 'full' run, not 'fast'"):
        measured_runtimes(tmp_path)
    (tmp_path / "fast.json").write_text("not json", encoding="utf-8")
    with pytest.raises(ValueError, match="not a results file written by make course"):
        measured_runtimes(tmp_path)


@pytest.mark.parametrize("seconds, text", [(None, "not measured"), (5.4, "5 s"), (89, "89 s"), (95, "1.6 min"), (7200, "2.0 h")])
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


def test_format_duration_rejects_negative_time():
    with pytest.raises(ValueError, match="cannot be negative"):
        format_duration(-1)
