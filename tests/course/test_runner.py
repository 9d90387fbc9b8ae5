import json

import pytest

from course_lib.course.runner import _chapter_notebooks, _run_course


def test_chapters_are_found_in_order():
    names = [p.stem for p in _chapter_notebooks()]
    assert names == sorted(names) and names[0] == "00_start_here"


def test_empty_folder_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no chapter notebooks"):
        _chapter_notebooks(tmp_path)


def test_bad_mode_and_unknown_chapter(tmp_path):
    with pytest.raises(ValueError, match="mode must be one of"):
        _run_course("medium", tmp_path)
    with pytest.raises(ValueError, match="no notebook matches"):
        _run_course("fast", tmp_path, only=["99"])


def test_runs_one_chapter_and_writes_results_json(tmp_path, monkeypatch, capfd):
    monkeypatch.setenv("COURSE_DEVICE", "cpu")
    # _run_course sets these for its kernels; monkeypatch restores them for the tests that follow
    monkeypatch.setenv("COURSE_MODE", "fast")
    monkeypatch.setenv("COURSE_RESULTS_DIR", str(tmp_path / "unused"))
    merged = _run_course("fast", tmp_path, only=["00"])
    assert "without encryption" not in capfd.readouterr().err, "kernels should start with CurveZMQ keys"
    assert (tmp_path / "notebooks" / "00_start_here.ipynb").exists()
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved == merged
    assert saved["_runtimes_seconds"]["notebooks"]["00_start_here"] > 0
    assert saved["00_start_here"]["mode"] == "fast"
