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
