import json

import pytest

from course_lib.context import CourseContext
from course_lib.course.results import gather, main, _render_table, report, update_readme
from course_lib.files import write_json_atomic

CTX = CourseContext(mode="fast", device="cpu", seed=0)


def test_report_then_gather(results_folder):
    path = report("04_transformer_block_and_training", {"dev_f1": 0.5, "params": 10}, CTX)
    assert path.parent == results_folder
    merged = gather()
    entry = merged["04_transformer_block_and_training"]
    assert entry["metrics"] == {"dev_f1": 0.5, "params": 10}
    assert entry["mode"] == "fast" and entry["device"] == "cpu"


@pytest.mark.parametrize(
    "chapter, metrics, error",
    [
        ("chapter four", {"f1": 1.0}, "chapter must look like"),
        ("04_x", {}, "non-empty dict"),
        ("04_x", {"f1": float("nan")}, "non-finite"),
        ("04_x", {"f1": [1, 2]}, "number or a string"),
    ],
)
def test_report_rejects_bad_input(results_folder, chapter, metrics, error):
    with pytest.raises((ValueError, TypeError), match=error):
        report(chapter, metrics, CTX)
    assert not list(results_folder.glob("*.json"))


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.json"
    with pytest.raises(TypeError):
        write_json_atomic(target, {"bad": object()})
    assert list(tmp_path.iterdir()) == []


def test_table_and_readme_update(results_folder, tmp_path):
    report("02_self_attention", {"max_weight": 0.91234}, CTX)
    merged = gather()
    merged["_runtimes_seconds"] = {"mode": "fast", "notebooks": {"02_self_attention": 12.0}}
    table = _render_table(merged)
    assert "| 02_self_attention | max_weight | 0.9123 | fast | cpu |" in table
    assert "notebook run time (s)" in table
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- results:start -->\nold\n<!-- results:end -->\nend\n")
    results_file = tmp_path / "results.json"
    results_file.write_text(json.dumps(merged))
    main(["readme", str(results_file), str(readme)])
    text = readme.read_text()
    assert "old" not in text and "0.9123" in text and text.endswith("end\n")
    readme.write_text("no markers")
    with pytest.raises(ValueError, match="results:start"):
        update_readme(readme, merged, "x")


def test_table_formats_tiny_and_large_numbers_readably():
    entry = {"mode": "fast", "device": "cpu", "metrics": {"error": 2.8e-19, "zero": 0.0, "f1": 0.33549, "ms": 128.96}}
    table = _render_table({"05_x": entry})
    assert "| error | 2.8e-19 |" in table and "| zero | 0.0000 |" in table
    assert "| f1 | 0.3355 |" in table and "| ms | 129.0 |" in table


def test_markdown_table_and_read_results(tmp_path):
    from course_lib.course.results import read_results

    (tmp_path / "demo_full.json").write_text('{"rows": 3}', encoding="utf-8")
    assert read_results("demo_full", tmp_path) == {"rows": 3}
    with pytest.raises(FileNotFoundError, match="run the benchmark or make course"):
        read_results("missing_full", tmp_path)
