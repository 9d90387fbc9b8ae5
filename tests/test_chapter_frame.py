"""The chapter frame of docs/STYLE.md, checked on every chapter notebook as it is committed.

Objectives and time at the top; headings numbered by the chapter, bilingual, with the outline
section they cover; exercises with check functions and collapsed solutions; a summary; a static
copy under every widget; no progress bar frozen into a stored output.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("[0-9][0-9]*.ipynb"))
FRAME_HEADINGS = {
    "## 练习 · Exercises",
    "### 参考答案 · Solutions",
    "## 小结 · Summary",
    "## 参考文献 · References",
    "## 本章结果 · Recording this chapter's measurements",
}
NUMBERED = re.compile(r"^(#{2,3}) (\d+(?:\.\d+)+) (.+)$")
OUTLINE_TAG = re.compile(r"〔提纲 [\d.–, ]+〕$")
CJK = re.compile(r"[\u4e00-\u9fff]")
WIDGET = "application/vnd.jupyter.widget-view+json"


def _chapter(path: Path) -> int:
    return int(path.name[:2])


def _headings(notebook) -> list[str]:
    lines = []
    for cell in notebook.cells:
        if cell.cell_type != "markdown":
            continue
        fenced = False
        for line in cell.source.splitlines():
            if line.startswith("```"):
                fenced = not fenced
            elif not fenced and re.match(r"#{1,3} ", line):
                lines.append(line.rstrip())
    return lines


@pytest.fixture(scope="module", params=NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def chapter(request):
    return request.param, nbformat.read(request.param, as_version=4)


def test_the_notebooks_are_found():
    assert len(NOTEBOOKS) >= 10


def test_the_chapter_opens_with_its_title_objectives_and_time(chapter):
    path, notebook = chapter
    first = notebook.cells[0]
    assert first.cell_type == "markdown"
    title = first.source.splitlines()[0]
    assert re.match(rf"# {path.name[:2]}\w? \S.* · [A-Z]", title), f"{path.name}: title {title!r}"
    assert CJK.search(title), f"{path.name}: the title needs its Chinese name"
    assert "Learning objectives" in first.source, f"{path.name}: learning objectives at the top"
    assert "Time needed" in first.source, f"{path.name}: the time needed at the top"


def test_headings_are_numbered_by_the_chapter_and_bilingual(chapter):
    path, notebook = chapter
    number = _chapter(path)
    seen: set[str] = set()
    section = None
    for heading in _headings(notebook)[1:]:
        if heading in FRAME_HEADINGS:
            continue
        match = NUMBERED.match(heading)
        assert match, f"{path.name}: heading {heading!r} is neither numbered (e.g. '## {number}.1 …') nor a frame heading"
        level, label, text = match.groups()
        parts = label.split(".")
        assert int(parts[0]) == number, f"{path.name}: {heading!r} must start with the chapter number {number}"
        assert len(parts) == len(level), f"{path.name}: {heading!r}: '##' takes two numbers, '###' three"
        if len(level) == 3:
            assert section is not None and label.startswith(section + "."), f"{path.name}: {heading!r} is not under {section}"
        else:
            section = label
        assert label not in seen, f"{path.name}: section number {label} repeats"
        seen.add(label)
        text = OUTLINE_TAG.sub("", text).strip()
        chinese, _, english = text.partition(" · ")
        assert CJK.search(chinese) and re.search(r"[A-Za-z]", english), f"{path.name}: {heading!r} is not '中文 · English'"


def test_the_chapter_ends_with_exercises_and_a_summary(chapter):
    path, notebook = chapter
    headings = _headings(notebook)
    assert "## 练习 · Exercises" in headings, f"{path.name}: no exercises"
    assert "## 小结 · Summary" in headings, f"{path.name}: no summary"
    assert headings.index("## 小结 · Summary") > headings.index("## 练习 · Exercises")


def test_solutions_are_collapsed_and_each_one_runs_a_check(chapter):
    path, notebook = chapter
    cells = notebook.cells
    starts = [i for i, cell in enumerate(cells) if cell.cell_type == "markdown" and "### 参考答案 · Solutions" in cell.source]
    assert len(starts) == 1, f"{path.name}: one '### 参考答案 · Solutions' heading before the collapsed solutions"
    answers = [cell for cell in cells[:starts[0]] if cell.cell_type == "code" and cell.source.startswith("# Your answers")]
    assert answers, f"{path.name}: a '# Your answers' cell for the student before the solutions"
    solutions = []
    for cell in cells[starts[0] + 1:]:
        if cell.cell_type == "markdown" and re.match(r"##? ", cell.source):
            break
        solutions.append(cell)
    assert solutions, f"{path.name}: no solution cells"
    for cell in solutions:
        shown = cell.source.splitlines()[0] if cell.source else ""
        assert cell.metadata.get("jupyter", {}).get("source_hidden") is True, f"{path.name}: solution {shown!r} is visible"
        assert "solution" in cell.metadata.get("tags", []), f"{path.name}: solution {shown!r} lacks the 'solution' tag"
    code = [cell for cell in solutions if cell.cell_type == "code"]
    assert code and all(re.search(r"\bcheck_\w*\(", cell.source) for cell in code), \
        f"{path.name}: every solution cell runs the exercise's check function"
    for cell in cells:
        if "solution" in cell.metadata.get("tags", []):
            assert cell in solutions, f"{path.name}: a solution cell outside the solutions section"


def test_every_widget_has_a_static_copy_under_it(chapter):
    path, notebook = chapter
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        outputs = cell.get("outputs", [])
        for index, output in enumerate(outputs):
            data = output.get("data", {})
            if WIDGET not in data:
                continue
            shown = data.get("text/plain", "")
            assert "%|" not in shown, f"{path.name}: a progress bar is stored in the output of {cell.source[:60]!r}"
            later = outputs[index + 1:]
            assert any("image/png" in o.get("data", {}) or "text/html" in o.get("data", {}) for o in later), \
                f"{path.name}: the widget of {cell.source[:60]!r} has no static copy under it (use show_widget)"
