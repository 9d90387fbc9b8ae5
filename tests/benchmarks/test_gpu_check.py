"""Tests of benchmarks/gpu_check.py: one command that runs the benchmarks within a budget and sums up."""

from __future__ import annotations

import json

import pytest
import torch

from tests.benchmarks import load_benchmark


@pytest.fixture(scope="module")
def check():
    return load_benchmark("gpu_check")


def test_a_smoke_run_on_the_cpu_writes_each_benchmarks_results_and_the_summary(check, tmp_path):
    summary = json.loads(check.main(["--device", "cpu", "--mode", "fast", "--only", "compression",
                                     "--results-dir", str(tmp_path)]).read_text())
    (run,) = summary["runs"]
    assert run["status"] == "ok", run.get("traceback")
    assert summary["device"].startswith("cpu: ") and summary["mode"] == "fast"
    results = json.loads((tmp_path / run["results"]).read_text())
    assert results["benchmark"] == "compression" and results["device"].startswith("cpu: ")
    assert results["wall_seconds"] > 0 and results["rows"]


def test_benchmarks_left_when_the_budget_is_spent_are_listed_as_skipped(check, tmp_path):
    summary = json.loads(check.main(["--device", "cpu", "--only", "ner_kd", "mnist_kd", "--budget", "1e-12",
                                     "--results-dir", str(tmp_path)]).read_text())
    assert [(run["benchmark"], run["status"]) for run in summary["runs"]] == [("ner_kd", "skipped"),
                                                                             ("mnist_kd", "skipped")]
    assert [path.name for path in tmp_path.iterdir()] == ["gpu_check_cpu.json"], "a skipped benchmark writes nothing"


def test_bad_options_are_refused_with_a_message(check, capsys):
    with pytest.raises(SystemExit):
        check.main(["--budget", "0", "--device", "cpu"])
    assert "--budget must be a positive number" in capsys.readouterr().err
    if not torch.cuda.is_available():
        with pytest.raises(SystemExit):
            check.main([])
        assert "torch sees no CUDA device" in capsys.readouterr().err
