"""Timing shared by the benchmarks."""

from __future__ import annotations

import statistics
import time
from typing import Any, Callable


def median_ms(fn: Callable[[], Any], runs: int) -> float:
    """Median wall time of ``runs`` calls, in ms, after one untimed call that warms caches."""
    fn()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def interleaved_medians_ms(fns: list[Callable[[], Any]], runs: int) -> list[float]:
    """Median wall time of each of ``fns``, in ms, timed in turn within every round.

    This machine's speed drifts by tens of percent within a minute; timing the engine and its SQL
    in alternation, rather than one after the other, keeps that drift out of their ratio.
    """
    for fn in fns:
        fn()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(runs):
        for fn, mine in zip(fns, times):
            t = time.perf_counter()
            fn()
            mine.append((time.perf_counter() - t) * 1000)
    return [statistics.median(t) for t in times]
