"""benchmarks/ddp.py: the settings it compares and the README block it writes from its results file."""

from __future__ import annotations

import importlib.util
import json

from course_lib.context import REPO_ROOT


def _script():
    spec = importlib.util.spec_from_file_location("ddp_benchmark", REPO_ROOT / "benchmarks" / "ddp.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_cpu_settings_use_the_same_cores_by_threads_or_by_processes(monkeypatch):
    ddp = _script()
    monkeypatch.setattr("os.cpu_count", lambda: 4)
    assert ddp.settings("cpu") == [(1, 1), (1, 4), (4, 1)]
    monkeypatch.setattr("os.cpu_count", lambda: 1)
    assert ddp.settings("cpu") == [(1, 1)]


def test_the_readme_block_reads_every_setting_from_the_results_file():
    payload = json.loads((REPO_ROOT / "results" / "ddp_fast.json").read_text())
    block = _script().readme_table(payload)
    assert len(payload["rows"]) == 3 and payload["same_student"] is True
    for row in payload["rows"]:
        assert f"| {row['world_size']} × {row['threads_per_process']} | gloo | {row['samples_per_second']:,.0f} |" in block
    assert "Every setting trained the same student" in block
