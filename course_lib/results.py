"""Measured results: each chapter reports its figures, ``make course`` gathers them.

A chapter calls :func:`report` once with what it measured. The files land in the results
directory (``$COURSE_RESULTS_DIR``, default ``build/results``); :func:`gather` merges them into
``build/results.json`` and :func:`render_table` turns that into the README's results table.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import platform
import re
from datetime import datetime, timezone
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from course_lib.files import write_bytes_atomic

if TYPE_CHECKING:
    from course_lib.notebook import CourseContext

RESULTS_ENV = "COURSE_RESULTS_DIR"
REPO_ROOT = Path(__file__).resolve().parent.parent
TABLE_START = "<!-- results:start -->"
TABLE_END = "<!-- results:end -->"
RUNTIMES_KEY = "_runtimes_seconds"  # notebook wall times added by make course to build/results.json

Metric = float | int | str


def results_dir() -> Path:
    """Directory that holds one JSON file per chapter (absolute, whatever the working directory)."""
    return Path(os.environ.get(RESULTS_ENV) or REPO_ROOT / "build" / "results").resolve()


def write_json_atomic(path: Path, payload: Any) -> Path:
    """Write ``payload`` as JSON to ``path`` atomically (temporary file, then rename)."""
    text = json.dumps(payload, indent=2, ensure_ascii=False, sort_keys=True) + "\n"
    return write_bytes_atomic(Path(path), text.encode("utf-8"))


def _check_metrics(metrics: dict[str, Metric]) -> dict[str, Metric]:
    if not isinstance(metrics, dict) or not metrics:
        raise ValueError("metrics must be a non-empty dict of name -> number or string")
    clean: dict[str, Metric] = {}
    for name, value in metrics.items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"metric names must be non-empty strings, got {name!r}")
        if hasattr(value, "item"):
            value = value.item()
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise TypeError(f"metric {name!r} must be a number or a string, got {type(value).__name__}")
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"metric {name!r} is {value}: a chapter must not report a non-finite result")
        clean[name] = value
    return clean


def report(chapter: str, metrics: dict[str, Metric], context: "CourseContext") -> Path:
    """Record the figures a chapter measured, with the mode and device of ``context``."""
    if not re.fullmatch(r"\d\d_[a-z0-9_]+", chapter or ""):
        raise ValueError(f"chapter must look like '04_transformer_block_and_training', got {chapter!r}")
    payload = {
        "chapter": chapter,
        "mode": context.mode,
        "device": str(context.device),
        "recorded_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "metrics": _check_metrics(metrics),
    }
    return write_json_atomic(results_dir() / f"{chapter}.json", payload)


def gather(directory: Path | None = None) -> dict[str, Any]:
    """Merge every chapter's results file into one dict keyed by chapter."""
    directory = Path(directory or results_dir())
    merged: dict[str, Any] = {}
    for path in sorted(directory.glob("*.json")):
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"results file {path} is not valid JSON ({exc}); re-run its chapter") from exc
        merged[entry["chapter"]] = entry
    return merged


def _format(value: Metric) -> str:
    if isinstance(value, float):
        if value != 0 and abs(value) < 1e-3:
            return f"{value:.1e}"  # a tiny error must not read as 0.0000
        return f"{value:.4f}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


def markdown_table(header: list[str], rows: list[tuple]) -> str:
    """A Markdown table: ``header`` cells, then one line per row (cells turned into text)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def read_results(name: str, folder: Path = REPO_ROOT / "results") -> dict[str, Any]:
    """The committed results file ``results/<name>.json`` (e.g. ``"ner_kd_full"``), with a clear error if absent."""
    path = Path(folder) / f"{name}.json"
    if not path.is_file():
        raise FileNotFoundError(f"no results file {path}: run the benchmark or make course that writes it")
    return json.loads(path.read_text(encoding="utf-8"))


def render_table(results: dict[str, Any]) -> str:
    """Markdown table of every reported metric: chapter, metric, value, mode, device."""
    rows = [(chapter, name, _format(value), entry["mode"], entry["device"])
            for chapter, entry in sorted(results.items()) if not chapter.startswith("_")
            for name, value in entry["metrics"].items()]
    runtimes = results.get(RUNTIMES_KEY)
    if runtimes:
        rows += [(chapter, "notebook run time (s)", f"{float(seconds):.1f}", runtimes["mode"], "–")
                 for chapter, seconds in runtimes["notebooks"].items()]
    return markdown_table(["chapter", "metric", "value", "mode", "device"], rows)


def replace_marked_block(readme: Path, start: str, end: str, body: str) -> None:
    """Replace what lies between the ``start`` and ``end`` markers of ``readme`` with ``body`` (atomically)."""
    text = readme.read_text(encoding="utf-8")
    if start not in text or end not in text:
        raise ValueError(f"{readme} has no '{start}' … '{end}' block to fill")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    write_bytes_atomic(readme, f"{head}{start}\n{body}\n{end}{tail}".encode("utf-8"))


def update_readme(readme: Path, results: dict[str, Any], source: str) -> None:
    """Replace the table between the results markers in the README."""
    replace_marked_block(readme, TABLE_START, TABLE_END, f"_Source: `{source}`._\n\n{render_table(results)}")


class _BenchmarkParser(argparse.ArgumentParser):
    """An argument parser that refuses epoch caps below one (when it has them)."""

    def parse_args(self, args=None, namespace=None):  # type: ignore[override]
        parsed = super().parse_args(args, namespace)
        for option in ("epochs", "student_epochs"):
            value = getattr(parsed, option, None)
            if value is not None and value < 1:
                self.error(f"--{option.replace('_', '-')} must be at least 1, got {value}")
        return parsed


def benchmark_parser(
    name: str, description: str, *, epoch_caps: bool = False, readme: bool = True
) -> argparse.ArgumentParser:
    """The options every benchmark script shares: ``--mode``, ``--device``, ``--out``, ``--readme``, ``--readme-only``.

    ``name`` names the results file: ``results/<name>_<mode>.json`` unless ``--out`` says otherwise.
    ``readme=False`` leaves out ``--readme`` and ``--readme-only`` (a benchmark with no README block).
    ``epoch_caps`` adds ``--epochs`` (a cap on every model's epochs, e.g. for a CPU run) and
    ``--student-epochs`` (a cap on the students' alone); a cap below one is refused.
    """
    parser = _BenchmarkParser(description=description)
    if epoch_caps:
        parser.add_argument("--epochs", type=int, default=None, help="cap every model's epochs (e.g. for a CPU)")
        parser.add_argument("--student-epochs", type=int, default=None,
                            help="cap the students' epochs (default: --epochs)")
    parser.add_argument("--mode", choices=("fast", "full"), default="full")
    parser.add_argument("--device", default=None, help="cpu, cuda, … (default: CUDA when present)")
    parser.add_argument("--out", type=Path, default=None, help=f"default: results/{name}_<mode>.json")
    if readme:
        parser.add_argument("--readme", type=Path, default=None, help="also write the result table into this README")
        parser.add_argument("--readme-only", action="store_true", help="only rewrite the README table from --out")
    return parser


def cap_epochs(recipes: dict[str, Any], epochs_cap: int | None, student_epochs_cap: int | None = None,
                   teacher: str = "teacher") -> dict[str, Any]:
    """``recipes`` (frozen dataclasses with an ``epochs`` field) with their epochs capped (None: no cap).

    ``epochs_cap`` applies to every model, ``student_epochs_cap`` (default: ``epochs_cap``) to every
    role but ``teacher``; all students keep the same budget.
    """
    if student_epochs_cap is None:
        student_epochs_cap = epochs_cap
    capped = {}
    for role, recipe in recipes.items():
        cap = epochs_cap if role == teacher else student_epochs_cap
        capped[role] = recipe if cap is None else dataclasses.replace(recipe, epochs=min(recipe.epochs, cap))
    return capped


def epoch_caps_text(payload: dict[str, Any]) -> str:
    """``", teacher epochs capped at 3, student epochs capped at 1"`` (empty without caps) for a README line."""
    teacher_cap, student_cap = payload.get("epochs_cap"), payload.get("student_epochs_cap") or payload.get("epochs_cap")
    parts = [f"teacher epochs capped at {teacher_cap}" if teacher_cap else "",
             f"student epochs capped at {student_cap}" if student_cap else ""]
    return "".join(f", {part}" for part in parts if part)


def benchmark_output(args: argparse.Namespace, name: str) -> Path:
    """The results file of a benchmark run: ``--out``, else ``results/<name>_<mode>.json``."""
    return args.out or REPO_ROOT / "results" / f"{name}_{args.mode}.json"


def rewrite_readme_only(args: argparse.Namespace, out: Path, update_readme: Callable[[Path, dict], None]) -> bool:
    """With ``--readme-only``: rewrite the README block from the JSON at ``out`` and return True (nothing to run)."""
    if not args.readme_only:
        return False
    update_readme(args.readme or REPO_ROOT / "README.md", json.loads(Path(out).read_text(encoding="utf-8")))
    return True


def benchmark_header(name: str, args: argparse.Namespace, device: Any, threads_used: int) -> dict[str, Any]:
    """The fields every benchmark's JSON starts with: name, mode, epoch caps, device, torch version, time."""
    return {
        "benchmark": name,
        "mode": args.mode,
        "epochs_cap": getattr(args, "epochs", None),
        "student_epochs_cap": getattr(args, "student_epochs", None),
        "device": device_description(device, threads_used),
        "torch": torch.__version__,
        "recorded_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def save_benchmark(out: Path, payload: dict[str, Any], args: argparse.Namespace,
                   update_readme: Callable[[Path, dict], None]) -> None:
    """Write ``payload`` to ``out`` atomically and, with ``--readme``, its README block."""
    write_json_atomic(out, payload)
    if getattr(args, "readme", None) is not None:
        update_readme(args.readme, payload)


def device_description(device: Any, threads_used: int) -> str:
    """A readable name of the device a benchmark ran on: the GPU model, or the CPU model and threads."""
    device = torch.device(device)
    if device.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(device)}"
    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"cpu: {model} ({os.cpu_count()} threads available, {threads_used} used)"


def main(argv: list[str] | None = None) -> None:
    """``python -m course_lib.results gather OUT.json`` or ``readme RESULTS.json README.md``."""
    parser = argparse.ArgumentParser(prog="python -m course_lib.results")
    sub = parser.add_subparsers(dest="command", required=True)
    gather_cmd = sub.add_parser("gather", help="merge build/results/*.json into one file")
    gather_cmd.add_argument("output", type=Path)
    readme_cmd = sub.add_parser("readme", help="write a gathered results file into the README table")
    readme_cmd.add_argument("results", type=Path)
    readme_cmd.add_argument("readme", type=Path)
    args = parser.parse_args(argv)
    if args.command == "gather":
        merged = gather()
        if not merged:
            raise SystemExit(f"no results in {results_dir()}: run the notebooks first (make course)")
        write_json_atomic(args.output, merged)
        print(f"wrote {args.output} ({len(merged)} chapters)")
    else:
        results = json.loads(args.results.read_text(encoding="utf-8"))
        update_readme(args.readme, results, source=str(args.results))
        print(f"updated the results table in {args.readme}")


if __name__ == "__main__":
    main()
