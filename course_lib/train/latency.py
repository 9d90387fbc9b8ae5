"""Measuring how long a model takes to answer: medians and tails of many timed calls.

A single timing of a forward pass is noise: the first calls allocate memory and warm caches, and
other programs steal the CPU now and then. :func:`_measure_latency` runs a few untimed warm-up
calls, then times ``repeats`` calls one by one (synchronising CUDA around each when the device
is a GPU) and reports the median (p50), the 95th percentile (p95) and throughput. The models of
chapters 07 and 08 are timed with it at batch 1 and batch 32, on a fixed number of CPU threads so
that two rows of a table are measured the same way.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass

import torch

from course_lib import checks
from course_lib.train.fit import cpu_threads


@dataclass(frozen=True)
class LatencyStats:
    """Timings of one measured call: milliseconds per call and items answered per second (chapter 07)."""

    p50_ms: float
    p95_ms: float
    mean_ms: float
    repeats: int
    batch_size: int

    @property
    def throughput(self) -> float:
        """Items per second at the median latency (``batch_size`` items per call)."""
        return self.batch_size / (self.p50_ms / 1000.0)

    def to_dict(self) -> dict[str, float]:
        """The figures as a plain dict for a results file, throughput included."""
        return {
            "p50_ms": round(self.p50_ms, 4),
            "p95_ms": round(self.p95_ms, 4),
            "mean_ms": round(self.mean_ms, 4),
            "throughput_per_s": round(self.throughput, 2),
            "repeats": self.repeats,
            "batch_size": self.batch_size,
        }


def _percentile(sorted_values: list[float], fraction: float) -> float:
    """Linear-interpolated percentile of already sorted values."""
    position = fraction * (len(sorted_values) - 1)
    low, high = math.floor(position), math.ceil(position)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


def _measure_latency(
    call: Callable[[], object],
    *,
    batch_size: int,
    repeats: int = 30,
    warmup: int = 3,
    device: torch.device | str = "cpu",
    threads: int = 1,
) -> LatencyStats:
    """Time ``call()`` ``repeats`` times after ``warmup`` untimed calls, under ``torch.no_grad``.

    ``batch_size`` is how many items one call answers (for the throughput). On a CPU the calls
    run on ``threads`` threads; on a GPU each call is bracketed by ``torch.cuda.synchronize``.
    """
    for name, value, minimum in (("batch_size", batch_size, 1), ("repeats", repeats, 2), ("warmup", warmup, 0),
                                 ("threads", threads, 1)):
        checks.int_at_least(name, value, minimum)
    if not callable(call):
        raise TypeError(f"call must be a function of no arguments, got {type(call).__name__}")
    device = torch.device(device)
    synchronize = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    seconds: list[float] = []
    with cpu_threads(device, threads), torch.no_grad():
        for _ in range(warmup):
            call()
        synchronize()
        for _ in range(repeats):
            start = time.perf_counter()
            call()
            synchronize()
            seconds.append(time.perf_counter() - start)
    ms = sorted(1000.0 * s for s in seconds)
    return LatencyStats(
        p50_ms=statistics.median(ms),
        p95_ms=_percentile(ms, 0.95),
        mean_ms=statistics.fmean(ms),
        repeats=int(repeats),
        batch_size=int(batch_size),
    )


def interleaved_latency(
    calls: Mapping[Hashable, tuple[Callable[[], object], int]],
    *,
    rounds: int = 30,
    seconds_per_round: float = 0.05,
    min_repeats: int = 5,
    threads: int = 1,
) -> dict[Hashable, LatencyStats]:
    """Time several CPU calls in turn, ``rounds`` times over; keep each call's quietest round (chapter 07).

    ``calls`` maps a name to ``(call, batch_size)``. Each round times every call for about
    ``seconds_per_round`` (at least ``min_repeats`` calls) with :func:`_measure_latency`. A call's
    result is the round with the lowest median, its p50 and p95 included: on a shared machine
    other work only ever adds time, and interleaving spreads every call's rounds over the whole
    measurement, so a slow spell of the machine cannot pick on one model.
    """
    if not calls:
        raise ValueError("calls must name at least one (call, batch_size) pair")
    checks.positive_int("rounds", rounds)
    repeats = {}
    for name, (call, batch_size) in calls.items():
        probe = _measure_latency(call, batch_size=batch_size, repeats=3, warmup=5, threads=threads)
        repeats[name] = max(min_repeats, min(2000, int(1000 * seconds_per_round / max(probe.p50_ms, 1e-3))))
    best: dict[Hashable, LatencyStats] = {}
    for _ in range(rounds):
        for name, (call, batch_size) in calls.items():
            stats = _measure_latency(call, batch_size=batch_size, repeats=repeats[name], warmup=2, threads=threads)
            if name not in best or stats.p50_ms < best[name].p50_ms:
                best[name] = stats
    return best
