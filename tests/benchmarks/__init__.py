"""Tests of the scripts in benchmarks/: the README blocks they write and the options they take."""

import importlib.util
from types import ModuleType

from course_lib.context import REPO_ROOT


def load_benchmark(name: str) -> ModuleType:
    """The script ``benchmarks/<name>.py`` imported as a module."""
    spec = importlib.util.spec_from_file_location(f"{name}_benchmark", REPO_ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
