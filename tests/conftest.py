"""Shared fixtures: a private data cache and results folder for tests that write files."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pytest


@pytest.fixture
def empty_cache(tmp_path, monkeypatch):
    """An empty data cache with fetching forbidden (as on a machine without network)."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("COURSE_DATA_DIR", str(cache))
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    return cache


@pytest.fixture
def results_folder(tmp_path, monkeypatch):
    """A private results directory."""
    folder = tmp_path / "results"
    monkeypatch.setenv("COURSE_RESULTS_DIR", str(folder))
    return folder
