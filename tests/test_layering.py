"""The package's house rules: imports point down the layers only, and no module imports itself round a cycle.

The layers, bottom to top: ``files``, ``checks``, ``context`` < ``data`` < ``nn`` < ``train`` < ``kd`` <
``serve`` < ``cases`` < ``views`` < ``course``. A module may import from its own layer and from any
layer below it; an import that climbs, or a ring of imports, fails here with the modules named.
"""

from __future__ import annotations

import ast
from pathlib import Path

from course_lib.context import REPO_ROOT

LAYERS = ("files checks context", "data", "nn", "train", "kd", "serve", "cases", "views", "course")
LEVEL = {name: level for level, names in enumerate(LAYERS) for name in names.split()}
PACKAGE = REPO_ROOT / "course_lib"


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def level(module: str) -> int:
    """The layer of ``course_lib.<room>...``; the package itself (its version) sits at the bottom."""
    parts = module.split(".")
    return LEVEL[parts[1]] if len(parts) > 1 else 0


def imports_of(path: Path) -> set[str]:
    """Every ``course_lib`` module ``path`` imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("course_lib"):
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names
                         if (PACKAGE / Path(*node.module.split(".")[1:]) / f"{alias.name}.py").exists()
                         or (PACKAGE / Path(*node.module.split(".")[1:]) / alias.name).is_dir())
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("course_lib"))
    return found


def graph() -> dict[str, set[str]]:
    return {module_name(path): imports_of(path) for path in sorted(PACKAGE.rglob("*.py"))}


def test_every_room_of_the_package_has_a_layer():
    rooms = {path.name if path.is_dir() else path.stem for path in PACKAGE.iterdir()
             if (path.is_dir() and (path / "__init__.py").exists()) or (path.suffix == ".py" and path.stem != "__init__")}
    assert rooms == set(LEVEL), f"rooms without a layer: {rooms - set(LEVEL)}; layers without a room: {set(LEVEL) - rooms}"


def test_imports_point_down_only():
    upward = [f"{source} (layer {level(source)}) imports {target} (layer {level(target)})"
              for source, targets in graph().items() for target in sorted(targets) if level(target) > level(source)]
    assert not upward, "imports that climb the layers:\n" + "\n".join(upward)


def test_there_is_no_import_cycle():
    imports = graph()
    edges = {module: {target for target in targets if target in imports} for module, targets in imports.items()}
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(edges[module]):
            if target == module or target.startswith(module + "."):
                continue  # a package importing its own modules in __init__ is not a ring
            if state.get(target) == 1:
                cycles.append(path[path.index(target):] + [target])
            elif target not in state:
                visit(target, path + [target])
        state[module] = 2

    for module in sorted(edges):
        if module not in state:
            visit(module, [module])
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(cycle) for cycle in cycles)


def test_the_checks_catch_an_upward_import(tmp_path):
    module = tmp_path / "probe.py"
    module.write_text("from course_lib.views.tables import markdown_table\n", encoding="utf-8")
    assert imports_of(module) == {"course_lib.views.tables"}
    assert level("course_lib.views.tables") > level("course_lib.data.cache")
