"""Bulk loading of committed batches into the database, off the request path.

Batches arrive here once the intake log holds them (the request is answered
then). One loader thread waits until ``rows`` have queued (the DuckDB store
asks for a few whole row groups), or the oldest batch has waited
``delay_s``, or a reader asks for everything
(``flush``: reads see every acknowledged span), and loads the lot in one
transaction. Loads are in log order, and each records the last seq it holds,
so a crash at any point repeats nothing and skips nothing.

A batch the database refuses alone, while the database itself still takes
transactions, is handed to ``set_aside`` (kept on disk, reported) so that one
poisoned batch cannot stop every later one; if the database refuses
everything (disk full, say), the loader waits and tries again, and the
request path meanwhile answers 503 once the backlog reaches its bound. A
batch refused for want of disk space is never set aside: it is not at fault,
and setting it aside would hide acknowledged spans from every read. While
loads fail, ``flush`` returns at once (False) so that reads answer with what
is loaded, marked as behind, instead of hanging for the timeout.

Fairness: loads are in log order, so a read waits for whatever other
environments queued before it. Each environment (``key``) therefore has its
own bound on the load work it may have queued (``reserve``: a cost the store
estimates per batch), and any environment past ``cost_trigger`` starts a load
at once; an environment flooding with costly batches is answered 429 past its
own bound rather than growing the queue every read must wait for.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Callable, Generic, TypeVar

from apiary.store.base import is_disk_full

log = logging.getLogger(__name__)

T = TypeVar("T")
#: ``load(items, upto_seq)``: one transaction holding the items and the watermark ``upto_seq``.
LoadFn = Callable[[list[T], int], None]
_RETRY_S = 1.0


class BulkLoader(Generic[T]):
    def __init__(self, load: LoadFn[T], *, loaded_seq: int, rows: int, delay_s: float, max_group_rows: int,
                 healthy: Callable[[], bool], set_aside: Callable[[int, T, BaseException], None],
                 name: str = "apiary-loader", cost_trigger: int | None = None) -> None:
        self._load = load
        self._rows = rows
        self._delay = delay_s
        self._max_group = max_group_rows
        self._healthy = healthy
        self._set_aside = set_aside
        self._queue: deque[tuple[int, T, int, float, str | None, int]] = deque()  # seq, item, rows, enqueued at, key, cost
        self._cost: dict[str | None, int] = {}  # reserved load cost per key, until loaded
        self._cost_trigger = cost_trigger
        self._pending_rows = 0
        self._added_seq = loaded_seq
        self._loaded_seq = loaded_seq
        self._flush_to = loaded_seq
        self._cond = threading.Condition()
        self._closing = False
        #: The last load failed and waits to be tried again: reads answer at once with what is loaded.
        self.failing = False
        self.loads = 0
        self.loaded_rows = 0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    @property
    def pending_rows(self) -> int:
        return self._pending_rows

    def reserve(self, key: str, cost: int, limit: int) -> bool:
        """Reserve ``cost`` of load work for ``key``; False when ``key`` already has ``limit`` queued.

        A batch costlier than ``limit`` alone is still taken when its key has nothing queued.
        """
        with self._cond:
            have = self._cost.get(key, 0)
            if have and have + cost > limit:
                return False
            self._cost[key] = have + cost
            if self._cost_trigger is not None and have + cost >= self._cost_trigger:
                self._cond.notify_all()
            return True

    def unreserve(self, key: str, cost: int) -> None:
        """Give back a reservation whose batch never reached ``add`` (its commit failed)."""
        with self._cond:
            self._release(key, cost)

    def _release(self, key: str | None, cost: int) -> None:
        left = self._cost.get(key, 0) - cost
        if left > 0:
            self._cost[key] = left
        else:
            self._cost.pop(key, None)

    def add(self, seq: int, item: T, rows: int, key: str | None = None, cost: int = 0) -> None:
        """Queue a committed item; ``key`` and ``cost`` name the reservation it holds (released once loaded)."""
        with self._cond:
            self._queue.append((seq, item, rows, time.monotonic(), key, cost))
            self._pending_rows += rows
            self._added_seq = seq
            if self._pending_rows >= self._rows or len(self._queue) == 1 or self._over_trigger():
                self._cond.notify_all()

    def _over_trigger(self) -> bool:
        return self._cost_trigger is not None and any(c >= self._cost_trigger for c in self._cost.values())

    def flush(self, timeout_s: float = 30.0) -> bool:
        """Wait until everything added before this call is loaded; False if that took past the timeout.

        The timeout only matters when the database refuses every load, or a load takes that long: the
        caller then says its answer would be incomplete rather than hang.
        """
        deadline = time.monotonic() + timeout_s
        with self._cond:
            target = self._added_seq
            if self._loaded_seq >= target:
                return True
            self._flush_to = max(self._flush_to, target)
            self._cond.notify_all()
            while self._loaded_seq < target and self._thread.is_alive():
                if self.failing:  # the database refuses loads (disk full): waiting would only delay the answer
                    log.warning("read goes ahead with %d acknowledged rows not loaded yet: loads fail", self._pending_rows)
                    return False
                left = deadline - time.monotonic()
                if left <= 0:
                    log.warning("a read waited %.1f s for %d acknowledged rows to be loaded", timeout_s, self._pending_rows)
                    return False
                self._cond.wait(min(left, 0.5))
            return self._loaded_seq >= target

    def close(self) -> None:
        """Load everything queued, then stop."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join()

    def _due(self) -> float | None:
        """Seconds until the next load is due (0: now), or None when there is nothing to load."""
        if not self._queue:
            return None
        if self._closing or self._pending_rows >= self._rows or self._flush_to > self._loaded_seq or self._over_trigger():
            return 0.0
        return max(0.0, self._queue[0][3] + self._delay - time.monotonic())

    def _run(self) -> None:
        while True:
            with self._cond:
                while True:
                    due = self._due()
                    if due == 0.0:
                        break
                    if due is None and self._closing:
                        return
                    self._cond.wait(due)
                group: list[tuple[int, T, int, float, str | None, int]] = []
                rows = 0
                for entry in self._queue:
                    if group and rows + entry[2] > self._max_group:
                        break
                    group.append(entry)
                    rows += entry[2]
            done = self._load_group(group)
            with self._cond:
                for _ in range(done):
                    _seq, _item, n, _t, key, cost = self._queue.popleft()
                    self._pending_rows -= n
                    self._release(key, cost)
                self.failing = done < len(group)
                if done:
                    self._loaded_seq = group[done - 1][0]
                    self.loads += 1
                    self.loaded_rows += sum(e[2] for e in group[:done])
                self._cond.notify_all()
            if done < len(group):
                time.sleep(_RETRY_S)

    def _load_group(self, group: list[tuple[int, T, int, float, str | None, int]]) -> int:
        """Load the group; returns how many of its entries (from the front) are now loaded or set aside."""
        try:
            self._load([e[1] for e in group], group[-1][0])
            return len(group)
        except Exception:  # noqa: BLE001 - find the entry at fault
            log.warning("bulk load of %d batches failed; loading them one by one", len(group), exc_info=True)
        for i, (seq, item, *_rest) in enumerate(group):
            try:
                self._load([item], seq)
            except Exception as exc:  # noqa: BLE001
                if is_disk_full(exc) or not self._healthy():
                    log.exception("the database takes no transaction; loading again in %.0f s", _RETRY_S)
                    return i
                log.exception("batch %d refused by the database; set aside", seq)
                try:
                    self._set_aside(seq, item, exc)
                except Exception:  # noqa: BLE001 - it stays queued and is tried again
                    log.exception("could not set batch %d aside", seq)
                    return i
        return len(group)
