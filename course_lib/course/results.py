"""Measured results: each chapter reports its figures, ``make course`` gathers them (chapter 00).

A chapter calls :func:`report` once with what it measured. The files land in the results
directory (:func:`course_lib.context.results_dir`); :func:`gather` merges them into
``build/results.json`` and :func:`_render_table` turns that into the README's results table.
"""

from __future__ import annotations

import argparse
import json
import math
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from course_lib.context import REPO_ROOT, CourseContext, results_dir
from course_lib.files import write_bytes_atomic, write_json_atomic
from course_lib.views.tables import markdown_table

TABLE_START = "<!-- results:start -->"
TABLE_END = "<!-- results:end -->"
RUNTIMES_KEY = "_runtimes_seconds"  # notebook wall times added by make course to build/results.json

_Metric = float | int | str


def _check_metrics(metrics: dict[str, _Metric]) -> dict[str, _Metric]:
    if not isinstance(metrics, dict) or not metrics:
        raise ValueError("metrics must be a non-empty dict of name -> number or string")
    clean: dict[str, _Metric] = {}
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


def report(chapter: str, metrics: dict[str, _Metric], context: CourseContext) -> Path:
    """Record the figures a chapter measured, with the mode and device of ``context`` (chapter 00)."""
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
    """Merge every chapter's results file into one dict keyed by chapter (chapter 00)."""
    directory = Path(directory or results_dir())
    merged: dict[str, Any] = {}
    for path in sorted(directory.glob("*.json")):
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"results file {path} is not valid JSON ({exc}); re-run its chapter") from exc
        merged[entry["chapter"]] = entry
    return merged


def _format(value: _Metric) -> str:
    if isinstance(value, float):
        if value != 0 and abs(value) < 1e-3:
            return f"{value:.1e}"  # a tiny error must not read as 0.0000
        return f"{value:.4f}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


def read_results(name: str, folder: Path = REPO_ROOT / "results") -> dict[str, Any]:
    """The committed results file ``results/<name>.json`` (e.g. ``"ner_kd_full"``), with a clear error if absent (chapter 09)."""
    path = Path(folder) / f"{name}.json"
    if not path.is_file():
        raise FileNotFoundError(f"no results file {path}: run the benchmark or make course that writes it")
    return json.loads(path.read_text(encoding="utf-8"))


def _render_table(results: dict[str, Any]) -> str:
    """Markdown table of every reported metric: chapter, metric, value, mode, device (chapter 00)."""
    rows = [(chapter, name, _format(value), entry["mode"], entry["device"])
            for chapter, entry in sorted(results.items()) if not chapter.startswith("_")
            for name, value in entry["metrics"].items()]
    runtimes = results.get(RUNTIMES_KEY)
    if runtimes:
        rows += [(chapter, "notebook run time (s)", f"{float(seconds):.1f}", runtimes["mode"], "–")
                 for chapter, seconds in runtimes["notebooks"].items()]
    return markdown_table(["chapter", "metric", "value", "mode", "device"], rows)


def replace_marked_block(readme: Path, start: str, end: str, body: str) -> None:
    """Replace what lies between the ``start`` and ``end`` markers of ``readme`` with ``body``, atomically (chapter 00)."""
    text = readme.read_text(encoding="utf-8")
    if start not in text or end not in text:
        raise ValueError(f"{readme} has no '{start}' … '{end}' block to fill")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    write_bytes_atomic(readme, f"{head}{start}\n{body}\n{end}{tail}".encode("utf-8"))


def update_readme(readme: Path, results: dict[str, Any], source: str) -> None:
    """Replace the table between the results markers in the README (chapter 00)."""
    replace_marked_block(readme, TABLE_START, TABLE_END, f"_Source: `{source}`._\n\n{_render_table(results)}")


def main(argv: list[str] | None = None) -> None:
    """``python -m course_lib.course.results gather OUT.json`` or ``readme RESULTS.json README.md`` (chapter 00)."""
    parser = argparse.ArgumentParser(prog="python -m course_lib.course.results")
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
