"""Ordinary work in progress, so that a costly commit goes between it, not through it.

On ClickHouse a flooding environment's commit is several statements of 10-90 ms each (its wide insert,
its trace summary, its catalogue rows). A calm environment's read and its export are several statements
too, a few milliseconds of Python apart. When chdb ran one statement of the process at a time, the
flood's statements fell between the calm request's own, one after another: the slowest reads and exports
waited for a whole flood commit (``bench/fairness.py``, docs/benchmarks.md "Fairness after wave 9").
Statements now run side by side (`apiary.store.clickhouse.client`), as on a server, but on the same
cores: without this gate the flooded read p99 was 1.65-2.04 x solo against 1.32-1.34 x with it
(docs/benchmarks.md "Fairness after wave 10").

Reads and ordinary batches (from submitted until committed) are therefore ordinary work, and the group commit
asks `CostlyGate.wait_quiet` before each statement of a costly commit: it goes on once no ordinary work has run
for ``quiet_s``. A read or an export then shares the cores with at most the one costly statement that was
running when it came. The group commit waits in short slices, committing the ordinary batches that come
meanwhile, and at most `apiary.store.group_commit.STEP_WAIT_S` a statement, so a server never quiet still
finishes a costly commit: costly work goes when the others pause, or slowly.
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from typing import Iterator

#: No ordinary work for this long: a request's statements are over (they are a few ms apart).
QUIET_S = 0.02


class CostlyGate:
    def __init__(self, quiet_s: float = QUIET_S) -> None:
        self.quiet_s = quiet_s
        self._cond = threading.Condition()
        self._active = 0
        self._last_end = 0.0

    @contextmanager
    def ordinary(self) -> Iterator[None]:
        """Around a read's statement, or an ordinary batch from its submission to its commit."""
        with self._cond:
            self._active += 1
        try:
            yield
        finally:
            with self._cond:
                self._active -= 1
                self._last_end = time.monotonic()
                self._cond.notify_all()

    def wait_quiet(self, timeout: float) -> bool:
        """True once no ordinary work runs or has run for ``quiet_s``; False when ``timeout`` passes first."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                now = time.monotonic()
                quiet_at = now if self._active else self._last_end + self.quiet_s
                if not self._active and now >= quiet_at:
                    return True
                if now >= deadline:
                    return False
                self._cond.wait((deadline if self._active else min(quiet_at, deadline)) - now)
