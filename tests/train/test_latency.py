"""Tests for course_lib.train.latency: warm-up, repeats, percentiles and thread count of timed calls."""

from __future__ import annotations

import time

import pytest
import torch

from course_lib.train.latency import LatencyStats, interleaved_latency, _measure_latency


def test_every_call_is_made_and_only_the_repeats_are_timed():
    calls = []
    stats = _measure_latency(lambda: calls.append(torch.is_grad_enabled()), batch_size=4, repeats=7, warmup=2)
    assert len(calls) == 9 and not any(calls), "warm-up + repeats, all under no_grad"
    assert stats.repeats == 7 and stats.batch_size == 4
    assert 0 <= stats.p50_ms <= stats.p95_ms


def test_a_slow_call_measures_slow_and_the_threads_are_restored():
    before = torch.get_num_threads()
    seen = []

    def sleepy():
        seen.append(torch.get_num_threads())
        time.sleep(0.01)

    stats = _measure_latency(sleepy, batch_size=2, repeats=5, warmup=1, threads=1)
    assert set(seen) == {1} and torch.get_num_threads() == before
    assert stats.p50_ms >= 9.0 and stats.mean_ms >= 9.0
    assert stats.throughput == pytest.approx(2 / (stats.p50_ms / 1000))


def test_percentiles_and_the_results_dict():
    stats = LatencyStats(p50_ms=2.0, p95_ms=5.0, mean_ms=2.5, repeats=10, batch_size=32)
    assert stats.to_dict() == {"p50_ms": 2.0, "p95_ms": 5.0, "mean_ms": 2.5, "throughput_per_s": 16000.0,
                               "repeats": 10, "batch_size": 32}


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"batch_size": 0}, "batch_size must be a positive int"),
    ({"batch_size": 1, "repeats": 1}, "repeats must be an int >= 2"),
    ({"batch_size": 1, "warmup": -1}, "warmup must be an int >= 0"),
    ({"batch_size": 1, "threads": 0}, "threads must be a positive int"),
])
def test_bad_arguments_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        _measure_latency(lambda: None, **kwargs)
    with pytest.raises(TypeError, match="call must be a function"):
        _measure_latency("model", batch_size=1)


def test_interleaved_latency_times_every_call_in_turn_and_keeps_the_quietest_round(monkeypatch):
    import course_lib.train.latency as latency

    medians = {"a": iter([1.0, 5.0, 0.8, 0.9]), "b": iter([2.0, 3.0, 4.0, 1.5])}  # probe, then 3 rounds
    timed = []

    def fake_measure(call, *, batch_size, repeats, warmup, threads):
        name = call()
        timed.append(name)
        p50 = next(medians[name])
        return LatencyStats(p50_ms=p50, p95_ms=2 * p50, mean_ms=p50, repeats=repeats, batch_size=batch_size)

    monkeypatch.setattr(latency, "_measure_latency", fake_measure)
    stats = interleaved_latency({"a": (lambda: "a", 1), "b": (lambda: "b", 32)}, rounds=3)
    assert timed == ["a", "b", "a", "b", "a", "b", "a", "b"], "a probe each, then the calls alternate round by round"
    assert stats["a"].p50_ms == 0.8 and stats["a"].p95_ms == 1.6, "the quietest round, its p95 with it"
    assert stats["b"].p50_ms == 1.5 and stats["b"].batch_size == 32


def test_interleaved_latency_measures_real_calls():
    stats = interleaved_latency({"sleep": (lambda: time.sleep(0.002), 4)}, rounds=2, seconds_per_round=0.01)
    assert stats["sleep"].p50_ms >= 1.9 and stats["sleep"].repeats >= 5 and stats["sleep"].batch_size == 4


def test_interleaved_latency_rejects_nothing_to_time_and_bad_rounds():
    with pytest.raises(ValueError, match="at least one"):
        interleaved_latency({})
    with pytest.raises(ValueError, match="rounds must be a positive int"):
        interleaved_latency({"a": (lambda: None, 1)}, rounds=0)
