"""Environment check for chapter 00: one OK/FAIL line per requirement."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata

import torch

from course_lib.data import DataError, load_mnist, load_msra

REQUIRED_PACKAGES: dict[str, str] = {
    "torch": "2.13.0",
    "numpy": "1.26",
    "matplotlib": "3.8",
    "ipywidgets": "8.1",
    "tqdm": "4.66",
    "seqeval": "1.2.2",
    "safetensors": "0.4",
    "jupyterlab": "4.1",
    "nbval": "0.11",
    "papermill": "2.6",
}


@dataclass(frozen=True)
class Check:
    """The outcome of one requirement check (chapter 00)."""

    name: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{'OK  ' if self.ok else 'FAIL'}  {self.name:<22} {self.detail}"


def _version_tuple(version: str) -> tuple[int, ...]:
    parts = []
    for piece in version.split("+")[0].split("."):
        digits = "".join(ch for ch in piece if ch.isdigit())
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


def _check_package(name: str, minimum: str) -> Check:
    """Is ``name`` installed at ``minimum`` or newer?"""
    try:
        installed = metadata.version(name)
    except metadata.PackageNotFoundError:
        return Check(f"package {name}", False, f"not installed (need >= {minimum}): run `make install`")
    ok = _version_tuple(installed) >= _version_tuple(minimum)
    return Check(f"package {name}", ok, f">= {minimum}" if ok else f"{installed} is older than {minimum}")


def check_packages(required: dict[str, str] = REQUIRED_PACKAGES) -> list[Check]:
    """One check per required package (chapter 00)."""
    return [_check_package(name, minimum) for name, minimum in required.items()]


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


def report_lines(checks: list[Check]) -> str:
    """All checks as printable lines plus a closing verdict (chapter 00)."""
    failed = sum(not c.ok for c in checks)
    verdict = "all requirements met" if not failed else f"{failed} requirement(s) not met: see FAIL lines"
    return "\n".join([c.line() for c in checks] + [verdict])
