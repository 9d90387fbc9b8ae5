"""The library grows in chapter order: every public function and class names the chapter that introduces it,
and no chapter imports something a later chapter introduces."""

from __future__ import annotations

import ast
import json
import re

from course_lib.context import REPO_ROOT

TAG = re.compile(r"\(chapter (\d\d)\)\.$")
IMPORT = re.compile(r"^from (course_lib[\w.]*) import (\([^)]*\)|[^\n]*)", re.M)


def introduced_in() -> dict[tuple[str, str], str]:
    """``{(module, name): chapter}`` for every public top-level function and class, read from its docstring."""
    chapters = {}
    for path in sorted((REPO_ROOT / "course_lib").rglob("*.py")):
        module = ".".join(path.relative_to(REPO_ROOT).with_suffix("").parts)
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not node.name.startswith("_"):
                first_line = (ast.get_docstring(node) or "").split("\n")[0]
                match = TAG.search(first_line)
                chapters[module, node.name] = match.group(1) if match else ""
    return chapters


def test_every_public_function_and_class_names_its_chapter():
    untagged = [f"{module}.{name}" for (module, name), chapter in introduced_in().items() if not chapter]
    assert not untagged, "docstrings whose first line does not end with '(chapter NN).':\n" + "\n".join(untagged)


def test_no_chapter_imports_what_a_later_chapter_introduces():
    chapters = introduced_in()
    early = []
    for path in sorted((REPO_ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        notebook = json.loads(path.read_text(encoding="utf-8"))
        code = "\n".join("".join(cell["source"]) for cell in notebook["cells"] if cell["cell_type"] == "code")
        for module, names in IMPORT.findall(code):
            for name in (n.strip().split(" as ")[0] for n in names.strip("()").split(",")):
                chapter = chapters.get((module, name))
                if chapter and chapter > path.name[:2]:
                    early.append(f"{path.name} imports {module}.{name}, introduced in chapter {chapter}")
    assert not early, "\n".join(early)
