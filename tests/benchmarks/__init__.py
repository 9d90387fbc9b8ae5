"""Tests of the scripts in benchmarks/: the README blocks they write and the options they take."""

import importlib.util
import json
from pathlib import Path
from types import ModuleType

from course_lib.context import REPO_ROOT


def load_benchmark(name: str) -> ModuleType:
    """The script ``benchmarks/<name>.py`` imported as a module."""
    spec = importlib.util.spec_from_file_location(f"{name}_benchmark", REPO_ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def readme_only(name: str, payload: dict, marker: str, folder: Path) -> str:
    """Run ``benchmarks/<name>.py --readme-only`` on ``payload`` against a README with one ``marker`` block; its text."""
    out, readme = folder / "result.json", folder / "README.md"
    out.write_text(json.dumps(payload), encoding="utf-8")
    readme.write_text(f"intro\n<!-- {marker}:start -->\nold\n<!-- {marker}:end -->\noutro\n", encoding="utf-8")
    assert load_benchmark(name).main(["--readme-only", "--out", str(out), "--readme", str(readme)]) == out
    return readme.read_text(encoding="utf-8")
