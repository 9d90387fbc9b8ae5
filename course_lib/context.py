"""The run a chapter is part of: fast or full mode, device, seed, versions and the results folder.

This is the one place that reads ``$COURSE_MODE``, ``$COURSE_DEVICE``, ``$COURSE_RESULTS_DIR``,
``$COURSE_PROGRESS`` and the thread limit ``$OMP_NUM_THREADS``.

The first code cell of each chapter is a papermill ``parameters`` cell holding ``MODE = None``;
the next cell calls :func:`setup_notebook`. The same notebook therefore runs in fast mode under
nbval (``COURSE_MODE=fast``) and at full size with ``make course FULL=1`` or
``papermill -p MODE full``.
"""

from __future__ import annotations

import os
import platform
import random
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch

MODES = ("fast", "full")
MODE_ENV = "COURSE_MODE"
DEVICE_ENV = "COURSE_DEVICE"
RESULTS_ENV = "COURSE_RESULTS_DIR"
PROGRESS_ENV = "COURSE_PROGRESS"
THREADS_ENV = "OMP_NUM_THREADS"
REPO_ROOT = Path(__file__).resolve().parent.parent
REPORTED_PACKAGES = ("torch", "numpy", "matplotlib", "ipywidgets", "seqeval", "course_lib")

T = TypeVar("T")


@dataclass(frozen=True)
class CourseContext:
    """What a chapter needs to know about the run it is part of (chapter 00)."""

    mode: str
    device: torch.device
    seed: int
    versions: dict[str, str] = field(default_factory=dict)

    @property
    def fast(self) -> bool:
        """True in fast mode (small data, few epochs: what CI runs)."""
        return self.mode == "fast"

    def pick(self, fast_value: T, full_value: T) -> T:
        """Return ``fast_value`` in fast mode and ``full_value`` in full mode."""
        return fast_value if self.fast else full_value


def context_mode_and_device(context: object) -> tuple[str, torch.device]:
    """The ``mode`` and ``device`` of a :class:`CourseContext`; TypeError for anything else (chapter 00)."""
    mode = getattr(context, "mode", None)
    device = getattr(context, "device", None)
    if mode not in MODES or device is None:
        raise TypeError(
            "context must be the CourseContext returned by setup_notebook(), "
            f"got {type(context).__name__}"
        )
    return mode, torch.device(device)


def check_mode(mode: object) -> str:
    """``mode`` if it is "fast" or "full", else ValueError (chapter 00)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    return mode  # type: ignore[return-value]


def results_dir() -> Path:
    """The folder that holds one JSON file per chapter: ``$COURSE_RESULTS_DIR``, else ``build/results`` (chapter 00)."""
    return Path(os.environ.get(RESULTS_ENV) or REPO_ROOT / "build" / "results").resolve()


def progress_bars() -> bool:
    """Whether loops draw live progress bars: yes, unless ``$COURSE_PROGRESS`` is 0 (chapter 00).

    The course runner and ``make test`` set it to 0, so a stored notebook holds the summary lines a
    loop prints when it ends, not a progress bar frozen at the moment it was saved.
    """
    return os.environ.get(PROGRESS_ENV, "").strip() != "0"


def cpu_thread_limit() -> int | None:
    """The most CPU threads a run may use: ``$OMP_NUM_THREADS`` when set, else None (chapter 04).

    A recipe asks for the threads its model trains fastest on; this limit keeps it from taking
    more when several runs share the machine (``make test`` runs two test workers, one thread each).
    """
    value = os.environ.get(THREADS_ENV, "").strip()
    if not value:
        return None
    first = value.split(",")[0].strip()  # OpenMP also accepts one count per nesting level
    if not first.isdigit() or int(first) < 1:
        raise ValueError(f"${THREADS_ENV} must be a positive whole number of threads, got {value!r}; "
                         f"set it to e.g. 1 or unset it")
    return int(first)


def capped_threads(threads: int) -> int:
    """``threads``, but never more than :func:`cpu_thread_limit` (chapter 04)."""
    return min(threads, cpu_thread_limit() or threads)


def _seed_everything(seed: int) -> None:
    """Seed Python, NumPy and PyTorch (CPU and CUDA) so that runs repeat on one machine."""
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def _resolve_mode(mode: str | None = None) -> str:
    """Pick fast or full mode: the argument, else ``$COURSE_MODE``, else full only on a CUDA machine."""
    chosen = mode if mode is not None else os.environ.get(MODE_ENV) or None
    if chosen is None:
        return "full" if torch.cuda.is_available() else "fast"
    chosen = str(chosen).strip().lower()
    if chosen not in MODES:
        raise ValueError(
            f"mode must be one of {MODES}, got {chosen!r} "
            f"(from {'the MODE parameter' if mode is not None else '$' + MODE_ENV})"
        )
    return chosen


def _resolve_device(device: str | None = None) -> torch.device:
    """Pick the device: the argument, else ``$COURSE_DEVICE``, else CUDA when present, else CPU.

    Apple's MPS is used only when asked for by name. Asking for a device that is not there
    raises an error that says what is available.
    """
    chosen = device if device is not None else os.environ.get(DEVICE_ENV) or "auto"
    chosen = str(chosen).strip().lower()
    if chosen == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if chosen.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(
            f"device {chosen!r} was requested but no CUDA GPU is visible; "
            f"unset ${DEVICE_ENV} or set it to 'cpu'"
        )
    if chosen == "mps" and not (torch.backends.mps.is_available()):
        raise RuntimeError(
            f"device 'mps' was requested but MPS is not available here; unset ${DEVICE_ENV} or use 'cpu'"
        )
    if chosen not in ("cpu", "mps") and not chosen.startswith("cuda"):
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda[:N]' or 'mps', got {chosen!r}")
    return torch.device(chosen)


def _package_versions(names: tuple[str, ...] = REPORTED_PACKAGES) -> dict[str, str]:
    """Installed versions of the packages the course depends on (``'missing'`` when absent)."""
    versions = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "missing"
    return versions


def setup_notebook(mode: str | None = None, seed: int = 0, device: str | None = None) -> CourseContext:
    """Seed everything, choose mode and device, print a short summary and return the context (chapter 00)."""
    _seed_everything(seed)
    context = CourseContext(
        mode=_resolve_mode(mode),
        device=_resolve_device(device),
        seed=seed,
        versions=_package_versions(),
    )
    gpu = torch.cuda.get_device_name(context.device) if context.device.type == "cuda" else "none"
    print(f"mode   : {context.mode} ({'small data, few epochs' if context.fast else 'full-size runs'})")
    print(f"device : {context.device} (GPU: {gpu})")
    print(f"seed   : {context.seed}")
    print("versions: " + ", ".join(f"{k} {v}" for k, v in context.versions.items()))
    return context
