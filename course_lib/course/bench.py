"""The one harness behind every script in ``benchmarks/``: options, header, timing, JSON, README block (chapter 10).

A benchmark script describes itself with a :class:`Benchmark` that names the function that
measures, and calls :meth:`Benchmark.run`; the harness parses the shared options (``--mode``, ``--device``, ``--out``,
``--readme``, ``--readme-only`` and, where asked for, epoch caps and latency rounds), sets up the
run, times it, writes ``results/<name>_<mode>.json`` atomically with a header naming the device,
the CPU and its instruction-set extensions, and rewrites the script's marked README block.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from course_lib.context import REPO_ROOT, CourseContext, capped_threads, setup_notebook
from course_lib.course.results import replace_marked_block
from course_lib.files import write_json_atomic

# Instruction-set extensions that change how fast, and for int8 how exactly, a CPU computes.
CPU_FLAGS_OF_INTEREST = ("avx", "avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "amx_int8")


def cpu_model() -> str:
    """The CPU's model name from ``/proc/cpuinfo`` (the platform's processor name elsewhere) (chapter 06)."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def cpu_flags() -> list[str]:
    """Which of :data:`CPU_FLAGS_OF_INTEREST` this CPU reports (empty where ``/proc/cpuinfo`` is absent) (chapter 08)."""
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.is_file():
        return []
    for line in cpuinfo.read_text().splitlines():
        if line.startswith("flags"):
            present = set(line.split(":", 1)[1].split())
            return [flag for flag in CPU_FLAGS_OF_INTEREST if flag in present]
    return []


def device_description(device: Any, threads_used: int) -> str:
    """A readable name of the device a benchmark ran on: the GPU model, or the CPU model and threads (chapter 06)."""
    device = torch.device(device)
    if device.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(device)}"
    return f"cpu: {cpu_model()} ({os.cpu_count()} threads available, {threads_used} used)"


def epoch_caps_text(payload: dict[str, Any]) -> str:
    """``", teacher epochs capped at 3, student epochs capped at 1"`` (empty without caps) for a README line (chapter 06)."""
    teacher_cap, student_cap = payload.get("epochs_cap"), payload.get("student_epochs_cap") or payload.get("epochs_cap")
    parts = [f"teacher epochs capped at {teacher_cap}" if teacher_cap else "",
             f"student epochs capped at {student_cap}" if student_cap else ""]
    return "".join(f", {part}" for part in parts if part)


class _Parser(argparse.ArgumentParser):
    """An argument parser that refuses epoch caps below one (when it has them)."""

    def parse_args(self, args=None, namespace=None):  # type: ignore[override]
        parsed = super().parse_args(args, namespace)
        for option in ("epochs", "student_epochs"):
            value = getattr(parsed, option, None)
            if value is not None and value < 1:
                self.error(f"--{option.replace('_', '-')} must be at least 1, got {value}")
        return parsed


Measure = Callable[[argparse.Namespace, CourseContext], dict[str, Any]]


@dataclass(frozen=True)
class Benchmark:
    """What a benchmark script is: its name, what it measures, README block, options and CPU threads (chapter 06).

    ``description`` is the script's docstring (its first paragraph heads ``--help``);
    ``measure(args, context)`` returns what goes into the results file. ``readme_marker`` names the README block ``<!-- marker:start -->`` … ``<!-- marker:end -->`` that
    ``readme_table(payload)`` fills (None: the benchmark has no block). ``epoch_caps`` adds
    ``--epochs`` and ``--student-epochs``; ``latency_rounds`` adds ``--latency-rounds`` with that
    default; ``options`` adds the script's own options to the parser.
    """

    name: str
    description: str
    measure: Measure
    readme_marker: str | None = None
    readme_table: Callable[[dict[str, Any]], str] | None = None
    epoch_caps: bool = False
    latency_rounds: int | None = None
    threads: int = 1
    options: Callable[[argparse.ArgumentParser], None] | None = None

    def parser(self) -> argparse.ArgumentParser:
        """The command line: the shared options and the script's own."""
        parser = _Parser(description=self.description.strip().split("\n\n")[0])
        if self.epoch_caps:
            parser.add_argument("--epochs", type=int, default=None, help="cap every model's epochs (e.g. for a CPU)")
            parser.add_argument("--student-epochs", type=int, default=None,
                                help="cap the students' epochs (default: --epochs)")
        if self.latency_rounds is not None:
            parser.add_argument("--latency-rounds", type=int, default=self.latency_rounds)
        parser.add_argument("--mode", choices=("fast", "full"), default="full")
        parser.add_argument("--device", default=None, help="cpu, cuda, … (default: CUDA when present)")
        parser.add_argument("--out", type=Path, default=None, help=f"default: results/{self.name}_<mode>.json")
        if self.readme_marker is not None:
            parser.add_argument("--readme", type=Path, default=None, help="also write the result table into this README")
            parser.add_argument("--readme-only", action="store_true", help="only rewrite the README table from --out")
        if self.options is not None:
            self.options(parser)
        return parser

    def output(self, args: argparse.Namespace) -> Path:
        """The results file: ``--out``, else ``results/<name>_<mode>.json``."""
        return args.out or REPO_ROOT / "results" / f"{self.name}_{args.mode}.json"

    def update_readme(self, readme: Path, payload: dict[str, Any]) -> None:
        """Replace the benchmark's marked block of ``readme`` with ``readme_table(payload)``."""
        if self.readme_marker is None or self.readme_table is None:
            raise ValueError(f"benchmark {self.name!r} has no README block")
        replace_marked_block(readme, f"<!-- {self.readme_marker}:start -->", f"<!-- {self.readme_marker}:end -->",
                             self.readme_table(payload))

    def header(self, args: argparse.Namespace, device: Any) -> dict[str, Any]:
        """The fields every results file starts with: what ran, where, with which caps and versions."""
        return {
            "benchmark": self.name,
            "mode": args.mode,
            "epochs_cap": getattr(args, "epochs", None),
            "student_epochs_cap": getattr(args, "student_epochs", None),
            "device": device_description(device, capped_threads(self.threads)),
            "cpu_flags": cpu_flags(),
            "torch": torch.__version__,
            "recorded_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }

    def run(self, argv: list[str] | None = None) -> Path:
        """Parse ``argv``, run ``measure(args, context)`` (or only rewrite the README), write the JSON; return its path."""
        args = self.parser().parse_args(argv)
        out = self.output(args)
        if getattr(args, "readme_only", False):
            self.update_readme(args.readme or REPO_ROOT / "README.md", json.loads(out.read_text(encoding="utf-8")))
            return out
        context = setup_notebook(args.mode, device=args.device)
        start = time.perf_counter()
        measured = self.measure(args, context)
        payload = {**self.header(args, context.device), **measured,
                   "wall_seconds": round(time.perf_counter() - start, 1)}
        write_json_atomic(out, payload)
        if getattr(args, "readme", None) is not None:
            self.update_readme(args.readme, payload)
        print(f"wall {payload['wall_seconds']:.1f} s; wrote {out}")
        return out
