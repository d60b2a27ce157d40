"""Reads in progress, so that a costly write lets them pass between its statements.

On ClickHouse through chdb every statement of the process takes one session in turn, and a flooding
environment's commit is several statements of 10-90 ms each (its wide insert, its trace summary, its
catalogue rows). A calm environment's read is several statements too, with a few milliseconds of Python
between them, so a flood's statements fell between a read's, one after another: the slowest reads waited for
a whole flood commit (``bench/fairness.py``). The group commit therefore calls `ReadGate.wait_quiet` between
the steps of a costly commit: it goes on once no read has run for ``quiet_s``, so a read waits for at most the
one statement that was running when it came. ``max_wait_s`` bounds the wait, so reads that never pause still
let the costly environment's commit finish; its requests were acknowledged only once it has.

The same gate serves a ClickHouse server over HTTP, where statements do run at once: there a costly
statement still takes the server's cores from the reads.
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from typing import Iterator

#: No read for this long: the reads of one request are over (their statements are a few ms apart).
QUIET_S = 0.02
#: The longest a costly commit waits between two of its statements for reads to pause.
MAX_WAIT_S = 1.0


class ReadGate:
    def __init__(self, quiet_s: float = QUIET_S, max_wait_s: float = MAX_WAIT_S) -> None:
        self.quiet_s, self.max_wait_s = quiet_s, max_wait_s
        self._cond = threading.Condition()
        self._active = 0
        self._last_end = 0.0

    @contextmanager
    def reading(self) -> Iterator[None]:
        """Around a read's statement."""
        with self._cond:
            self._active += 1
        try:
            yield
        finally:
            with self._cond:
                self._active -= 1
                self._last_end = time.monotonic()
                self._cond.notify_all()

    def wait_quiet(self) -> None:
        """Return once no read runs or has run for ``quiet_s``, or after ``max_wait_s``."""
        deadline = time.monotonic() + self.max_wait_s
        with self._cond:
            while True:
                now = time.monotonic()
                if now >= deadline:
                    return
                if self._active:
                    self._cond.wait(deadline - now)
                    continue
                quiet_at = self._last_end + self.quiet_s
                if now >= quiet_at:
                    return
                self._cond.wait(min(quiet_at, deadline) - now)
