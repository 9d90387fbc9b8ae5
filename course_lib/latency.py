"""Measuring how long a model takes to answer: medians and tails of many timed calls.

A single timing of a forward pass is noise: the first calls allocate memory and warm caches, and
other programs steal the CPU now and then. :func:`measure_latency` runs a few untimed warm-up
calls, then times ``repeats`` calls one by one (synchronising CUDA around each when the device
is a GPU) and reports the median (p50), the 95th percentile (p95) and throughput. The models of
chapters 07 and 08 are timed with it at batch 1 and batch 32, on a fixed number of CPU threads so
that two rows of a table are measured the same way.
"""

from __future__ import annotations

import math
import numbers
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from course_lib.training import cpu_threads

__all__ = ["LatencyStats", "measure_latency"]


@dataclass(frozen=True)
class LatencyStats:
    """Timings of one measured call: milliseconds per call and items answered per second."""

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


def measure_latency(
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
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
            raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
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
