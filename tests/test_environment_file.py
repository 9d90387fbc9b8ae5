"""environment.yml (for conda users) must agree with pyproject.toml, which pip and CI use."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def load():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    environment = yaml.safe_load((ROOT / "environment.yml").read_text())
    return pyproject, environment


def test_python_versions_agree():
    pyproject, environment = load()
    conda_python = next(d for d in environment["dependencies"] if isinstance(d, str) and d.startswith("python="))
    version = conda_python.split("=", 1)[1]
    assert pyproject["project"]["requires-python"] == f">={version},<3.{int(version.split('.')[1]) + 1}"


def test_pip_section_pins_torch_first_and_installs_the_course():
    pyproject, environment = load()
    pip_section = next(d["pip"] for d in environment["dependencies"] if isinstance(d, dict) and "pip" in d)
    torch_pin = next(dep for dep in pyproject["project"]["dependencies"] if dep.startswith("torch"))
    assert pip_section[0] == torch_pin == "torch==2.13.0"
    assert "-e .[dev]" in pip_section
    assert "pip" in environment["dependencies"]


def test_makefile_pins_the_same_torch():
    pyproject, _ = load()
    torch_pin = next(dep for dep in pyproject["project"]["dependencies"] if dep.startswith("torch"))
    assert re.search(rf"TORCH_PIN := {re.escape(torch_pin)}\n", (ROOT / "Makefile").read_text())


def test_design_card_packages_are_declared():
    pyproject, _ = load()
    declared = pyproject["project"]["dependencies"] + pyproject["project"]["optional-dependencies"]["dev"]
    names = {re.split(r"[<>=!~\[ ]", dep, maxsplit=1)[0].lower() for dep in declared}
    assert {"jupyterlab", "torch", "matplotlib", "ipywidgets", "nbval", "papermill"} <= names
