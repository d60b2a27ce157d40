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


def interleaved_medians_ms(fns: list[Callable[[], Any]], runs: int, alternate: bool = False) -> list[float]:
    """Median wall time of each of ``fns``, in ms, timed in turn within every round.

    This machine's speed drifts by tens of percent within a minute; timing the engine and its SQL
    in alternation, rather than one after the other, keeps that drift out of their ratio. With
    ``alternate`` the first two swap places every other round: an engine and the statements it
    sent read the same data, and the one always run second would always find it the warmer.
    """
    return interleaved_wall_and_cpu_ms(fns, runs, alternate)[0]


def interleaved_wall_and_cpu_ms(fns: list[Callable[[], Any]], runs: int,
                                alternate: bool = False) -> tuple[list[float], list[float]]:
    """`interleaved_medians_ms`, and beside it the median CPU time of this process over each call, in ms.

    For a database embedded in the process (DuckDB, chdb) the CPU time is the work a statement did: at a load
    average of 20 on 2 cores the wall time of the same statement moved by half between rounds, its CPU time
    by a few percent."""
    for fn in fns:
        fn()
    wall: list[list[float]] = [[] for _ in fns]
    cpu: list[list[float]] = [[] for _ in fns]
    for r in range(runs):
        order = list(range(len(fns)))
        if alternate and r % 2 and len(fns) > 1:
            order[0], order[1] = 1, 0
        for i in order:
            t, c = time.perf_counter(), time.process_time()
            fns[i]()
            wall[i].append((time.perf_counter() - t) * 1000)
            cpu[i].append((time.process_time() - c) * 1000)
    return [statistics.median(t) for t in wall], [statistics.median(t) for t in cpu]
