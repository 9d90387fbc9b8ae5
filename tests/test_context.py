import random

import numpy as np
import pytest
import torch

from course_lib.context import (
    CourseContext,
    context_mode_and_device,
    cpu_thread_limit,
    progress_bars,
    _resolve_device,
    _resolve_mode,
    _seed_everything,
    setup_notebook,
)


def test_mode_from_argument_beats_environment(monkeypatch):
    monkeypatch.setenv("COURSE_MODE", "full")
    assert _resolve_mode("fast") == "fast"
    assert _resolve_mode(None) == "full"


def test_mode_default_without_gpu_is_fast(monkeypatch):
    monkeypatch.delenv("COURSE_MODE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert _resolve_mode(None) == "fast"


def test_bad_mode_names_its_source(monkeypatch):
    monkeypatch.setenv("COURSE_MODE", "medium")
    with pytest.raises(ValueError, match=r"COURSE_MODE"):
        _resolve_mode(None)
    with pytest.raises(ValueError, match=r"MODE parameter"):
        _resolve_mode("quick")


def test_device_auto_is_cpu_without_gpu(monkeypatch):
    monkeypatch.delenv("COURSE_DEVICE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert _resolve_device() == torch.device("cpu")


def test_asking_for_missing_cuda_explains(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="no CUDA GPU"):
        _resolve_device("cuda")
    with pytest.raises(ValueError, match="'auto', 'cpu'"):
        _resolve_device("tpu")


def test_seed_everything_repeats_all_generators():
    _seed_everything(7)
    first = (random.random(), np.random.rand(), torch.rand(1).item())
    _seed_everything(7)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == first
    with pytest.raises(ValueError, match="non-negative int"):
        _seed_everything(-1)


def test_setup_notebook_prints_summary_and_picks(capsys, monkeypatch):
    monkeypatch.setenv("COURSE_DEVICE", "cpu")
    ctx = setup_notebook(mode="fast", seed=3)
    out = capsys.readouterr().out
    assert "mode   : fast" in out and "device : cpu" in out and "torch" in out
    assert ctx.fast and ctx.pick(1, 2) == 1 and ctx.seed == 3
    full = setup_notebook(mode="full")
    assert not full.fast and full.pick(1, 2) == 2


def test_context_mode_and_device_accepts_a_course_context_only():
    context = CourseContext(mode="fast", device=torch.device("cpu"), seed=0)
    assert context_mode_and_device(context) == ("fast", torch.device("cpu"))
    with pytest.raises(TypeError, match="context must be the CourseContext returned by setup_notebook"):
        context_mode_and_device("fast")


def test_progress_bars_are_off_only_when_course_progress_is_0(monkeypatch):
    monkeypatch.delenv("COURSE_PROGRESS", raising=False)
    assert progress_bars()
    monkeypatch.setenv("COURSE_PROGRESS", "0")
    assert not progress_bars()
    monkeypatch.setenv("COURSE_PROGRESS", "1")
    assert progress_bars()


def test_omp_num_threads_is_the_cpu_thread_limit(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert cpu_thread_limit() is None
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert cpu_thread_limit() == 3
    monkeypatch.setenv("OMP_NUM_THREADS", "2,1")
    assert cpu_thread_limit() == 2, "a count per nesting level: the first is the limit"
    for bad in ("0", "two", "-1"):
        monkeypatch.setenv("OMP_NUM_THREADS", bad)
        with pytest.raises(ValueError, match="OMP_NUM_THREADS must be a positive whole number"):
            cpu_thread_limit()
