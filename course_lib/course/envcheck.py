"""Environment check for chapter 00: one OK/FAIL line per requirement.

The packages and their versions are read from the course's own ``pyproject.toml`` (the
``dependencies`` the chapters import, and the ``dev`` extra that runs and tests the notebooks), so
the check and the install can never disagree. The course is installed editable from its
repository (``make install``), so ``pyproject.toml`` sits at :data:`course_lib.context.REPO_ROOT`.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import tomllib
import warnings
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import torch

from course_lib.context import REPO_ROOT
from course_lib.data import DataError, cache_dir, load_mnist, load_msra

PYPROJECT = REPO_ROOT / "pyproject.toml"
RUNTIME, DEV = "course", "dev"
# distributions whose import name is not the distribution name with "-" replaced by "_"
IMPORT_NAMES: dict[str, str] = {"scikit-learn": "sklearn", "pillow": "PIL", "pyyaml": "yaml", "pytest-xdist": "xdist"}
_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*(.*?)\s*$")
_SPECIFIER = re.compile(r"^\s*(==|!=|>=|<=|>|<)\s*([0-9][0-9A-Za-z.+-]*)\s*$")


@dataclass(frozen=True)
class Check:
    """The outcome of one requirement check (chapter 00)."""

    name: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{'OK  ' if self.ok else 'FAIL'}  {self.name:<26} {self.detail}"


@dataclass(frozen=True)
class Requirement:
    """One package of ``pyproject.toml``: its name, version specifiers and group (chapter 00)."""

    name: str
    specifiers: tuple[tuple[str, str], ...]
    group: str = RUNTIME

    @property
    def spec(self) -> str:
        """The specifiers as written in ``pyproject.toml``, e.g. ``>=5.0,<6``."""
        return ",".join(op + version for op, version in self.specifiers)

    @property
    def module(self) -> str:
        """The name the package is imported under (``scikit-learn`` -> ``sklearn``)."""
        return IMPORT_NAMES.get(self.name.lower(), self.name.replace("-", "_"))

    def advice(self) -> str:
        """What to run to fix it: the course's install, or this one package at the right version."""
        return f"run `make install` (or `pip install '{self.name}{self.spec}'`)"


def parse_requirement(text: str, group: str = RUNTIME) -> Requirement:
    """A :class:`Requirement` from a PEP 508 line such as ``"transformers>=5.0,<6"`` (chapter 00).

    Environment markers (after ``;``) and extras are ignored; a specifier other than ``==``, ``!=``,
    ``>=``, ``<=``, ``>``, ``<`` raises ValueError, so a new kind in ``pyproject.toml`` is noticed.
    """
    match = _REQUIREMENT.match(text.split(";")[0])
    if not match:
        raise ValueError(f"not a requirement: {text!r}")
    name, rest = match.groups()
    specifiers = []
    for piece in filter(None, (p.strip() for p in rest.split(","))):
        spec = _SPECIFIER.match(piece)
        if not spec:
            raise ValueError(f"{text!r}: the environment check does not understand the specifier {piece!r}")
        specifiers.append((spec.group(1), spec.group(2)))
    return Requirement(name, tuple(specifiers), group)


def read_requirements(pyproject: Path | None = None) -> list[Requirement]:
    """The ``dependencies`` and ``dev`` extra of ``pyproject.toml`` (default: the course's), in order (chapter 00)."""
    project = tomllib.loads(Path(pyproject or PYPROJECT).read_text(encoding="utf-8"))["project"]
    runtime = [parse_requirement(line, RUNTIME) for line in project.get("dependencies", [])]
    dev = [parse_requirement(line, DEV) for line in project.get("optional-dependencies", {}).get("dev", [])]
    return runtime + dev


def _version_tuple(version: str) -> tuple[int, ...]:
    """The leading numeric release of a version: ``"2.13.0+cpu"`` -> (2, 13, 0), ``"5.0.0rc1"`` -> (5, 0, 0)."""
    parts = []
    for piece in version.split("+")[0].split("."):
        digits = re.match(r"\d+", piece)
        if not digits:
            break
        parts.append(int(digits.group()))
        if digits.end() < len(piece):  # "0rc1": the release ends here
            break
    return tuple(parts)


def satisfies(installed: str, specifiers: tuple[tuple[str, str], ...]) -> bool:
    """Whether the version ``installed`` meets every ``(operator, version)`` specifier (chapter 00).

    Versions are compared by their numeric release, padded with zeros (``2.13`` == ``2.13.0``); a
    local label such as ``+cpu`` is ignored, as PEP 440 does for ``==``.
    """
    have = _version_tuple(installed)
    for op, version in specifiers:
        want = _version_tuple(version)
        width = max(len(have), len(want))
        a, b = have + (0,) * (width - len(have)), want + (0,) * (width - len(want))
        ok = {"==": a == b, "!=": a != b, ">=": a >= b, "<=": a <= b, ">": a > b, "<": a < b}[op]
        if not ok:
            return False
    return True


def check_requirement(requirement: Requirement, import_module: bool | None = None) -> Check:
    """Whether ``requirement`` is installed at a matching version and its module can be imported (chapter 00).

    ``import_module`` defaults to True for the course's dependencies (the chapters import them, so
    a broken binary shows up here) and False for the dev tools (only located, not imported).
    """
    name = f"package {requirement.name}"
    try:
        installed = metadata.version(requirement.name)
    except metadata.PackageNotFoundError:
        need = f" (need {requirement.spec})" if requirement.spec else ""
        return Check(name, False, f"not installed{need}: {requirement.advice()}")
    if not satisfies(installed, requirement.specifiers):
        return Check(name, False, f"{installed} does not satisfy {requirement.spec}: {requirement.advice()}")
    if import_module is None:
        import_module = requirement.group == RUNTIME
    module = requirement.module
    try:
        if import_module:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                importlib.import_module(module)
        elif importlib.util.find_spec(module) is None:
            raise ImportError(f"no module named {module!r}")
    except Exception as exc:  # a broken install can fail in many ways: report it, do not crash the check
        return Check(name, False, f"{installed} installed but `import {module}` fails "
                                  f"({type(exc).__name__}: {exc}): {requirement.advice()}")
    # the installed version is left out of an OK line, so the line is the same on every machine
    # that meets the requirement (setup_notebook prints the versions a chapter runs with)
    return Check(name, True, f"meets {requirement.spec}" if requirement.spec else "installed")


def check_packages(requirements: list[Requirement] | None = None) -> list[Check]:
    """One check per package of ``pyproject.toml`` (dependencies, then the dev extra) (chapter 00).

    A missing ``pyproject.toml`` (the course installed other than editable from its repository)
    is one FAIL line rather than an exception.
    """
    if requirements is None:
        try:
            requirements = read_requirements()
        except FileNotFoundError:
            return [Check("pyproject.toml", False, f"not found at {PYPROJECT}: install the course from its "
                                                   "repository with `make install`")]
    return [check_requirement(requirement) for requirement in requirements]


def check_device() -> Check:
    """Which accelerator the chapters will use (a CPU is fine: fast mode is built for it) (chapter 00)."""
    if torch.cuda.is_available():
        return Check("device", True, f"CUDA GPU: {torch.cuda.get_device_name(0)}")
    return Check("device", True, "CPU only (fast mode; full mode wants a GPU kernel)")


def check_data() -> list[Check]:
    """Check that MNIST and MSRA NER are in the cache (fetching them once if needed) and intact (chapter 00)."""
    checks = []
    for name, loader in (("data MNIST", load_mnist), ("data MSRA NER", load_msra)):
        try:
            checks.append(Check(name, True, repr(loader())))
        except DataError as exc:
            checks.append(Check(name, False, str(exc)))
    return checks


def folder_sizes(root: Path | None = None) -> dict[str, int]:
    """Bytes on disk under each top-level entry of ``root`` (default: the data cache), largest first (chapter 00).

    A top-level file counts under its own name; a missing ``root`` gives an empty dict.
    """
    root = Path(root) if root is not None else cache_dir()
    if not root.is_dir():
        return {}
    sizes = {}
    for entry in root.iterdir():
        files = [entry] if entry.is_file() else [p for p in entry.rglob("*") if p.is_file() and not p.is_symlink()]
        sizes[entry.name] = sum(p.stat().st_size for p in files)
    return dict(sorted(sizes.items(), key=lambda item: (-item[1], item[0])))


def format_bytes(size: int) -> str:
    """``"512 B"``, ``"3.4 kB"``, ``"12.5 MB"``, ``"1.20 GB"`` (decimal units, as ``du --si``) (chapter 00)."""
    if size < 0:
        raise ValueError(f"a size cannot be negative, got {size}")
    if size < 1000:
        return f"{size} B"
    for unit, scale in (("kB", 1e3), ("MB", 1e6)):
        if size < 1000 * scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size / 1e9:.2f} GB"


def report_lines(checks: list[Check]) -> str:
    """All checks as printable lines plus a closing verdict (chapter 00)."""
    failed = sum(not c.ok for c in checks)
    verdict = "all requirements met" if not failed else f"{failed} requirement(s) not met: see FAIL lines"
    return "\n".join([c.line() for c in checks] + [verdict])
