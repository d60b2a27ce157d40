"""Decoding off the event loop, on every core.

Flattening OTLP into columns costs ~13 us per span in Python, several times
the protobuf parse itself; in the server process it would hold the GIL and
cap ingest at one core. Large bodies therefore go to a pool of worker
processes (bytes in, Arrow table out); small ones, like a real SDK's
periodic export of a few spans, are decoded inline, where the process hop
would cost more than the work.

The number of bodies in flight is bounded: past it the receiver answers
429 with Retry-After rather than queueing without limit.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Callable, TypeVar

from apiary.store.base import StoreOverloaded

T = TypeVar("T")
INLINE_BELOW_BYTES = 16 * 1024


class DecodePool:
    def __init__(self, workers: int, max_in_flight: int | None = None) -> None:
        self.workers = workers
        self._executor = (ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                              initializer=_exit_with_parent, initargs=(os.getpid(),))
                          if workers > 0 else None)
        self._limit = max_in_flight or max(4, workers * 8)
        self._in_flight = 0

    def warm_up(self) -> None:
        """Start the worker processes now, not on the first request."""
        if self._executor is not None:
            for f in [self._executor.submit(_noop) for _ in range(self.workers)]:
                f.result()

    async def run(self, size: int, fn: Callable[..., T], *args: Any) -> T:
        if self._executor is None or size < INLINE_BELOW_BYTES:
            return fn(*args)
        if self._in_flight >= self._limit:
            raise StoreOverloaded(retry_after=1)
        self._in_flight += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)
        finally:
            self._in_flight -= 1

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)


def _exit_with_parent(parent: int) -> None:
    """Worker start-up: leave as soon as the server is gone.

    A server killed outright (SIGKILL, the OOM killer) cannot shut its pool down, and its workers
    were seen to stay behind idle, ~65 MB each, for good.
    """
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="apiary-parent-watch", daemon=True).start()


def _noop() -> None:
    import apiary.receivers.otlp.traces  # noqa: F401  - pay the import cost at start-up
