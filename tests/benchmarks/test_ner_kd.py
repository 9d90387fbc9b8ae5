"""Tests for benchmarks/ner_kd.py: the recipes it runs and the README table it writes from its JSON."""

from __future__ import annotations


import pytest

from course_lib.cases.ner.compare import _NerComparison, _NerRow
from course_lib.cases.ner.models import NER_ROLES, capped_recipes
from tests.benchmarks import load_benchmark


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("ner_kd")


def payload(bench, epochs_cap=3) -> dict:
    f1 = {"teacher": 0.8, "scratch": 0.6, "logit_kd": 0.65, "layer_kd": 0.66, "teacher_init": 0.79, "cascade": 0.78}
    params = {"teacher": 1000, "scratch": 90, "logit_kd": 90, "layer_kd": 90, "teacher_init": 650, "cascade": 1100}
    rows = {
        role: _NerRow(role=role, title=NER_ROLES[role].title, parameters=params[role], precision=f1[role],
                     recall=f1[role], f1=f1[role], per_type_f1={"PER": 0.9, "LOC": 0.8, "ORG": 0.5},
                     latency_batch1_ms=4.0 if role in ("teacher", "cascade") else 1.0, latency_batch32_ms=0.2,
                     dev_curve=[f1[role]], train_seconds=10.0)
        for role in NER_ROLES
    }
    recipes = capped_recipes("full", epochs_cap)
    return {
        "mode": "full", "epochs_cap": epochs_cap, "device": "cpu: test", "wall_seconds": 60.0,
        "train_seconds_total": 2400.0,
        "latency_rounds": 10, "recipes": {role: r.to_dict() for role, r in recipes.items()},
        **_NerComparison(mode="full", rows=rows).to_dict(),
    }


def test_the_readme_table_has_every_row_and_the_goals(bench):
    table = bench.readme_table(payload(bench))
    assert "teacher epochs capped at 3, student epochs capped at 3" in table and "cpu: test" in table and "40 min of training" in table
    positions = [table.index(f"| {NER_ROLES[role].title} |") for role in NER_ROLES]
    assert positions == sorted(positions), "rows follow the chapter's order"
    assert "| (b) student, logit KD | 48×2 (4 heads, FF 128) | 90 (9%) | 65.0 | 90.0 | 80.0 | 50.0 | 1.00 |" in table
    assert "| teacher test F1 | 92.0 % | 80.0 % | no |" in table
    assert "| layer_kd: CPU speed-up at batch 1 | 5.0× | 4.0× | no |" in table
    assert "TENER" in table
    assert "epochs capped" not in bench.readme_table(payload(bench, epochs_cap=None))


def test_update_readme_replaces_only_the_marked_block(bench, tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- ner-kd:start -->\nold\n<!-- ner-kd:end -->\noutro\n", encoding="utf-8")
    bench.BENCHMARK.update_readme(readme, payload(bench))
    text = readme.read_text(encoding="utf-8")
    assert text.startswith("intro\n") and text.endswith("outro\n") and "old" not in text
    readme.write_text("no markers\n", encoding="utf-8")
    with pytest.raises(ValueError, match="no '<!-- ner-kd:start -->'"):
        bench.BENCHMARK.update_readme(readme, payload(bench))
