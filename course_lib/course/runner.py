"""Run every chapter notebook with papermill and gather what the chapters measured.

``python -m course_lib.course.runner --mode fast --out build`` executes ``notebooks/*.ipynb``
in order into ``build/notebooks/``, each chapter writing its figures into
``build/results/``, then merges them into ``build/results.json`` with each notebook's wall time.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from course_lib.context import MODE_ENV, MODES, PROGRESS_ENV, REPO_ROOT, RESULTS_ENV
from course_lib.course.results import RUNTIMES_KEY, gather
from course_lib.files import write_json_atomic

NOTEBOOKS_DIR = REPO_ROOT / "notebooks"


def _chapter_notebooks(directory: Path = NOTEBOOKS_DIR) -> list[Path]:
    """The chapter notebooks (``NN_name.ipynb``) in chapter order."""
    notebooks = sorted(p for p in Path(directory).glob("[0-9][0-9]_*.ipynb"))
    if not notebooks:
        raise FileNotFoundError(f"no chapter notebooks (NN_name.ipynb) found in {directory}")
    return notebooks


def _run_course(mode: str, out: Path, only: list[str] | None = None) -> dict:
    """Execute the notebooks in ``mode`` into ``out/notebooks`` and write ``out/results.json``."""
    import papermill
    from traitlets.config import Config

    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    out = Path(out).resolve()
    results = out / "results"
    os.environ[MODE_ENV] = mode
    os.environ[RESULTS_ENV] = str(results)
    os.environ[PROGRESS_ENV] = "0"
    notebooks = _chapter_notebooks()
    if only:
        notebooks = [nb for nb in notebooks if any(nb.stem.startswith(prefix) for prefix in only)]
        if not notebooks:
            raise ValueError(f"no notebook matches {only}; chapters are named like '04_transformer_block_and_training'")
    # Kernels launched with CurveZMQ keys: the kernel and papermill talk encrypted, and the kernel
    # does not warn on every start that its TCP traffic is readable by other local processes.
    kernel_config = Config()
    kernel_config.KernelManager.transport_encryption = "auto"
    runtimes: dict[str, float] = {}
    for notebook in notebooks:
        target = out / "notebooks" / notebook.name
        target.parent.mkdir(parents=True, exist_ok=True)
        print(f"[{mode}] {notebook.name} -> {target.relative_to(out.parent) if out.parent in target.parents else target}")
        started = time.perf_counter()
        papermill.execute_notebook(
            str(notebook), str(target), parameters={"MODE": mode}, kernel_name="python3",
            cwd=str(notebook.parent), progress_bar=False, config=kernel_config,
        )
        runtimes[notebook.stem] = round(time.perf_counter() - started, 1)
        print(f"    done in {runtimes[notebook.stem]} s")
    merged = gather(results)
    merged[RUNTIMES_KEY] = {"mode": mode, "notebooks": runtimes}
    write_json_atomic(out / "results.json", merged)
    print(f"wrote {out / 'results.json'}")
    return merged


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point used by ``make course`` (chapter 00)."""
    parser = argparse.ArgumentParser(prog="python -m course_lib.course.runner", description=__doc__)
    parser.add_argument("--mode", choices=MODES, default="fast")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "build")
    parser.add_argument("--only", nargs="*", help="chapter prefixes to run, e.g. 02 04")
    args = parser.parse_args(argv)
    _run_course(args.mode, args.out, args.only)


if __name__ == "__main__":
    main()
