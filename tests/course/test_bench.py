"""Tests for course_lib.course.bench: the one harness of the benchmark scripts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from course_lib.context import REPO_ROOT
from course_lib.course.bench import Benchmark, cpu_flags, device_description, epoch_caps_text

SEEN = []


def measure(args, context):
    SEEN.append((args.student_epochs, context.mode))
    return {"rows": 3}


DEMO = Benchmark("demo", "a demo benchmark\n\nmore text", measure, readme_marker="demo",
                 readme_table=lambda payload: f"rows: {payload['rows']}", epoch_caps=True, latency_rounds=5)
PLAIN = Benchmark("plain", "no README block, no caps", measure)


def test_the_parser_shares_the_common_options_and_names_the_results_file():
    args = DEMO.parser().parse_args(["--mode", "fast"])
    assert DEMO.parser().description == "a demo benchmark"
    assert (args.mode, args.device, args.readme, args.readme_only, args.latency_rounds) == ("fast", None, None, False, 5)
    assert DEMO.output(args) == REPO_ROOT / "results" / "demo_fast.json"
    chosen = DEMO.parser().parse_args(["--out", "elsewhere.json"])
    assert chosen.mode == "full" and DEMO.output(chosen) == Path("elsewhere.json")
    plain = PLAIN.parser().parse_args([])
    assert not hasattr(plain, "epochs") and not hasattr(plain, "readme_only") and not hasattr(plain, "latency_rounds")


def test_a_benchmark_without_a_readme_block_refuses_the_readme_options(capsys):
    with pytest.raises(SystemExit):
        PLAIN.parser().parse_args(["--readme-only"])
    assert "unrecognized arguments: --readme-only" in capsys.readouterr().err
    with pytest.raises(ValueError, match="has no README block"):
        PLAIN.update_readme(Path("README.md"), {})


@pytest.mark.parametrize("option", ["--epochs", "--student-epochs"])
def test_epoch_caps_below_one_are_refused(option, capsys):
    parser = DEMO.parser()
    assert (parser.parse_args([]).epochs, parser.parse_args(["--epochs", "3", "--student-epochs", "1"]).student_epochs) == (None, 1)
    with pytest.raises(SystemExit):
        parser.parse_args([option, "0"])
    assert f"{option} must be at least 1, got 0" in capsys.readouterr().err


def test_run_writes_the_header_the_measurement_and_the_readme_block(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_DEVICE", "cpu")
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- demo:start -->\nold\n<!-- demo:end -->\noutro\n", encoding="utf-8")
    out = DEMO.run(["--mode", "fast", "--student-epochs", "2", "--out", str(tmp_path / "demo.json"),
                             "--readme", str(readme)])
    payload = json.loads(out.read_text(encoding="utf-8"))
    assert SEEN[-1] == (2, "fast")
    assert (payload["benchmark"], payload["mode"], payload["epochs_cap"], payload["student_epochs_cap"]) == ("demo", "fast", None, 2)
    assert payload["rows"] == 3 and payload["device"].startswith("cpu: ") and payload["wall_seconds"] >= 0
    assert payload["torch"] and payload["recorded_at"] and isinstance(payload["cpu_flags"], list)
    assert readme.read_text(encoding="utf-8") == "intro\n<!-- demo:start -->\nrows: 3\n<!-- demo:end -->\noutro\n"

    readme.write_text("<!-- demo:start -->\n<!-- demo:end -->\n", encoding="utf-8")
    runs = len(SEEN)
    assert DEMO.run(["--readme-only", "--out", str(out), "--readme", str(readme)]) == out
    assert len(SEEN) == runs, "--readme-only must not measure"
    assert "rows: 3" in readme.read_text(encoding="utf-8")


def test_the_header_names_the_threads_the_limit_lets_a_benchmark_use(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    two_threads = Benchmark("two", "asks for two threads", measure, threads=2)
    args = two_threads.parser().parse_args(["--mode", "fast"])
    assert two_threads.header(args, "cpu")["device"].endswith("1 used)")
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert two_threads.header(args, "cpu")["device"].endswith("2 used)")


def test_the_device_and_cpu_are_named():
    text = device_description("cpu", 2)
    assert text.startswith("cpu: ") and text.endswith("2 used)")
    assert set(cpu_flags()) <= {"avx", "avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "amx_int8"}


def test_epoch_caps_text():
    assert epoch_caps_text({"epochs_cap": 3}) == ", teacher epochs capped at 3, student epochs capped at 3"
    assert epoch_caps_text({"student_epochs_cap": 1}) == ", student epochs capped at 1"
    assert epoch_caps_text({}) == ""
