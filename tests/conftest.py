"""Shared fixtures: private data caches and results folders for tests that write files, and a CPU course context."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pytest
import torch

from course_lib.notebook import CourseContext


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


@pytest.fixture
def model_cache(tmp_path, monkeypatch):
    """A private data cache for tests that train and cache models (fetching is still allowed)."""
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    return tmp_path


@pytest.fixture
def context() -> CourseContext:
    """A fast-mode CPU course context, as setup_notebook() would return on a CPU machine."""
    return CourseContext(mode="fast", device=torch.device("cpu"), seed=0)
