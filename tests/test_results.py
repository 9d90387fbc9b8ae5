import json
from pathlib import Path

import pytest

from course_lib.notebook import CourseContext
from course_lib.results import gather, main, render_table, report, update_readme, write_json_atomic

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
    table = render_table(merged)
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
    table = render_table({"05_x": entry})
    assert "| error | 2.8e-19 |" in table and "| zero | 0.0000 |" in table
    assert "| f1 | 0.3355 |" in table and "| ms | 129.0 |" in table


def test_benchmark_parser_shares_the_common_options_and_names_the_results_file():
    from course_lib.results import REPO_ROOT, benchmark_output, benchmark_parser

    parser = benchmark_parser("demo", "a demo benchmark")
    args = parser.parse_args(["--mode", "fast"])
    assert (args.mode, args.device, args.readme, args.readme_only) == ("fast", None, None, False)
    assert benchmark_output(args, "demo") == REPO_ROOT / "results" / "demo_fast.json"
    chosen = parser.parse_args(["--out", "elsewhere.json"])
    assert chosen.mode == "full" and benchmark_output(chosen, "demo") == Path("elsewhere.json")
    assert not hasattr(chosen, "epochs")


def test_benchmark_parser_without_a_readme_block_refuses_the_readme_options(capsys):
    from course_lib.results import benchmark_parser

    parser = benchmark_parser("demo", "a demo benchmark", readme=False)
    assert not hasattr(parser.parse_args([]), "readme_only")
    with pytest.raises(SystemExit):
        parser.parse_args(["--readme-only"])
    assert "unrecognized arguments: --readme-only" in capsys.readouterr().err


@pytest.mark.parametrize("option", ["--epochs", "--student-epochs"])
def test_benchmark_parser_with_epoch_caps_refuses_caps_below_one(option, capsys):
    from course_lib.results import benchmark_parser

    parser = benchmark_parser("demo", "a demo benchmark", epoch_caps=True)
    assert (parser.parse_args([]).epochs, parser.parse_args(["--epochs", "3", "--student-epochs", "1"]).student_epochs) == (None, 1)
    with pytest.raises(SystemExit):
        parser.parse_args([option, "0"])
    assert f"{option} must be at least 1, got 0" in capsys.readouterr().err


def test_device_description_names_the_cpu_and_the_threads_used():
    from course_lib.results import device_description

    text = device_description("cpu", 2)
    assert text.startswith("cpu: ") and text.endswith("2 used)")


def test_markdown_table_and_read_results(tmp_path):
    from course_lib.results import markdown_table, read_results

    assert markdown_table(["a", "b"], [(1, "x"), (2.5, None)]) == "| a | b |\n|---|---|\n| 1 | x |\n| 2.5 | None |"
    (tmp_path / "demo_full.json").write_text('{"rows": 3}', encoding="utf-8")
    assert read_results("demo_full", tmp_path) == {"rows": 3}
    with pytest.raises(FileNotFoundError, match="run the benchmark or make course"):
        read_results("missing_full", tmp_path)


def test_benchmark_helpers_write_the_header_the_json_and_the_readme_block(tmp_path):
    from course_lib.results import benchmark_header, benchmark_parser, rewrite_readme_only, save_benchmark

    parser = benchmark_parser("demo", "a demo benchmark", epoch_caps=True)
    args = parser.parse_args(["--mode", "fast", "--student-epochs", "2", "--readme", str(tmp_path / "README.md")])
    header = benchmark_header("demo", args, "cpu", 1)
    assert (header["benchmark"], header["mode"], header["epochs_cap"], header["student_epochs_cap"]) == ("demo", "fast", None, 2)
    assert header["device"].endswith("1 used)") and header["torch"] and header["recorded_at"]
    written = []
    save_benchmark(tmp_path / "demo.json", {**header, "rows": 1}, args, lambda readme, payload: written.append(payload))
    assert json.loads((tmp_path / "demo.json").read_text())["rows"] == 1 and written[0]["rows"] == 1
    assert not rewrite_readme_only(args, tmp_path / "demo.json", lambda readme, payload: written.append(payload))
    only = parser.parse_args(["--readme-only"])
    assert rewrite_readme_only(only, tmp_path / "demo.json", lambda readme, payload: written.append((readme, payload)))
    assert written[-1][1]["rows"] == 1 and written[-1][0].name == "README.md"
