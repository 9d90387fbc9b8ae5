import json

import pytest

from course_lib import files
from course_lib.files import sha256_json, sha256_text, write_bytes_atomic


def test_write_creates_folders_and_readable_file(tmp_path):
    target = write_bytes_atomic(tmp_path / "a" / "b.bin", b"data")
    assert target.read_bytes() == b"data" and oct(target.stat().st_mode & 0o777) == "0o644"


def test_interrupted_write_keeps_old_file_and_leaves_no_temp(tmp_path, monkeypatch):
    target = tmp_path / "data.bin"
    target.write_bytes(b"old")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(files.os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        write_bytes_atomic(target, b"new")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["data.bin"]


def test_sha256_json_hashes_the_unescaped_json_of_a_value():
    value = {"text": ["新华社", "Génesis"], "n": 3}
    assert sha256_json(value) == sha256_text(json.dumps(value, ensure_ascii=False))
    assert sha256_json(value) != sha256_text(json.dumps(value)), "characters are hashed as they are, not \\u-escaped"
    assert sha256_json(["a", "b"]) != sha256_json(["b", "a"])
