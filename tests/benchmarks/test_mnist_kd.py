"""Tests for benchmarks/mnist_kd.py: the README table it writes from its JSON."""

from __future__ import annotations


import pytest

from tests.benchmarks import load_benchmark


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("mnist_kd")


PAYLOAD = {
    "mode": "full",
    "device": "cpu: test",
    "temperature": 20.0,
    "alpha": 0.5,
    "wall_seconds": 1800.0,
    "rows": {
        "teacher": {"errors": 90, "seconds": 1.0},
        "student_scratch": {"errors": 150, "seconds": 1.0},
        "student_distilled": {"errors": 100, "seconds": 1.0},
        "student_scratch_jitter": {"errors": 95, "seconds": 1.0},
        "student_distilled_jitter": {"errors": 92, "seconds": 1.0},
    },
    "gap_closed": 50 / 60,
    "goal_gap_closed": 0.8,
    "goal_met": True,
    "paper": {"errors": {"teacher": 67, "student_scratch": 146, "student_distilled": 74}, "gap_closed": 0.9114},
}


def test_the_readme_table_sets_each_row_beside_the_papers(bench):
    table = bench.readme_table(PAYLOAD)
    assert "| teacher 1200-1200, dropout, jitter | 90 | 67 |" in table
    assert "| student 800-800, labels only, jitter (control) | 95 | – |" in table
    assert "| gap closed by distillation | 83% | 91% |" in table
    assert "full mode, cpu: test" in table and "30 min wall time" in table and "— met." in table


def test_update_readme_replaces_only_the_marked_block(bench, tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("before\n<!-- mnist-kd:start -->\nold\n<!-- mnist-kd:end -->\nafter\n", encoding="utf-8")
    bench.BENCHMARK.update_readme(readme, PAYLOAD)
    text = readme.read_text(encoding="utf-8")
    assert text.startswith("before\n") and text.endswith("\nafter\n") and "old" not in text
    assert text.count("| gap closed by distillation |") == 1
    readme.write_text("no markers\n", encoding="utf-8")
    with pytest.raises(ValueError, match="mnist-kd:start"):
        bench.BENCHMARK.update_readme(readme, PAYLOAD)
