"""Tests for benchmarks/deploy.py: the README block it writes from its JSON, and its options."""

from __future__ import annotations

import json

import pytest

from course_lib.cases.deploy.table import VARIANTS
from course_lib.context import REPO_ROOT
from tests.benchmarks import load_benchmark, readme_only


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("deploy")


@pytest.fixture(scope="module")
def payload(tiny_deploy_pairs):
    """A results payload built from a real (tiny) measurement, as the benchmark writes it."""
    from course_lib.cases.deploy.table import measure_deployment

    pairs = tiny_deploy_pairs["pairs"]
    tables = {
        "ner": measure_deployment(pairs["ner"], tiny_deploy_pairs["corpus"].test[:100], rounds=1,
                                  seconds_per_round=0.002),
        "mnist": measure_deployment(pairs["mnist"], tiny_deploy_pairs["mnist"], rounds=1, seconds_per_round=0.002),
    }
    return {"mode": "full", "epochs_cap": 3, "student_epochs_cap": 1, "measured_on": "cpu: test (1 used)",
            "onnxruntime": "1.0", "latency_rounds": 1, "tasks": {task: t.to_dict() for task, t in tables.items()}}


def test_the_readme_block_has_both_tasks_every_variant_and_the_goals(bench, payload):
    block = bench.readme_table(payload)
    assert "NER teacher epochs capped at 3, student at 1" in block and "cpu: test (1 used)" in block
    for title in ("**MSRA NER**", "**MNIST**", "| goal (NER) |"):
        assert title in block
    ner_rows = payload["tasks"]["ner"]["rows"]
    for variant in VARIANTS:
        assert f"| {ner_rows[variant]['title']} | {ner_rows[variant]['parameters']:,} |" in block
    student = ner_rows["student_int8"]
    assert f"| {100 * student['score']:.2f} | {student['batch1']['p50_ms']:.3f} / {student['batch1']['p95_ms']:.3f} |" in block
    assert block.count("| yes |") + block.count("| no |") == 2


def test_update_readme_replaces_only_the_marked_block(bench, payload, tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- deploy:start -->\nold\n<!-- deploy:end -->\noutro\n", encoding="utf-8")
    bench.BENCHMARK.update_readme(readme, payload)
    text = readme.read_text(encoding="utf-8")
    assert text.startswith("intro\n") and text.endswith("outro\n") and "old" not in text and "**MNIST**" in text


def test_readme_only_rewrites_the_block_from_the_json(payload, tmp_path):
    assert "**MSRA NER**" in readme_only("deploy", payload, "deploy", tmp_path)


def test_the_committed_results_file_fills_the_committed_readme(bench):
    results = json.loads((REPO_ROOT / "results" / "deploy_full.json").read_text(encoding="utf-8"))
    assert set(results["tasks"]) == {"ner", "mnist"}
    assert bench.readme_table(results) in (REPO_ROOT / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("option", ["--epochs", "--student-epochs"])
def test_epoch_caps_below_one_are_refused(bench, option, capsys):
    with pytest.raises(SystemExit):
        bench.main([option, "0"])
    assert "must be at least 1" in capsys.readouterr().err
