"""Bulk loading of committed batches into the database, off the request path.

Batches arrive here once the intake log holds them (the request is answered
then). One loader thread waits until ``rows`` have queued (the DuckDB store
asks for a few whole row groups), or the oldest batch has waited
``delay_s``, or a reader asks for its environment's batches (``flush``:
reads see every acknowledged span), and loads them in one transaction.

Loads are not in log order. Each environment (``key``) is loaded on its
own account, so that a read waits only for its own environment's batches:

* a reader's environment goes first: its batches are loaded in the next
  transaction, with whatever ordinary batches are due, ahead of anything
  costly another environment queued before them;
* a costly batch (``cost`` > 0, a width the store estimates) is loaded
  alone, one per turn, environments taking turns, so a reader arriving while
  one loads waits for that one only, never for another environment's
  backlog of them;
* each environment has a bound on the costly work it may have queued
  (``reserve``); past it it is answered 429, rather than growing the queue;
* with ``workers`` > 1, loads run at once, each worker in a transaction of
  its own, and an environment is loaded by one worker at a time (its loads
  stay in order). The first worker loads costly batches only, the others
  ordinary batches only: a reader never waits for another environment's
  costly load, not even the one already running. The costly worker runs a
  step behind in the scheduler's order (``costly_niceness``), as the decode
  workers do, so that its loads leave the cores to everyone else's first, and
  rests ``costly_rest`` times its last load's length before the next, so a
  flood keeps it busy a bounded share of the time (``_resting``).

Out of order, one watermark cannot say what is loaded. Each transaction
therefore records a `Loaded`: the watermark below which every entry is
loaded, and the entries past it that this load holds. After a crash,
start-up loads exactly the entries that are past the highest watermark
committed and not in any recorded load: nothing twice, nothing skipped. A
watermark is worked out when its group is taken, with the groups other
workers are loading still queued, so it never passes an entry not committed.

A batch the database refuses alone, while the database itself still takes
transactions, is handed to ``set_aside`` (kept on disk, reported) so that one
poisoned batch cannot stop every later one; if the database refuses
everything (disk full, say), the loader waits and tries again, and the
request path meanwhile answers 503 once the backlog reaches its bound. A
batch refused for want of disk space is never set aside: it is not at fault,
and setting it aside would hide acknowledged spans from every read. While
loads fail, ``flush`` returns at once (False) so that reads answer with what
is loaded, marked as behind, instead of hanging for the timeout.
"""

from __future__ import annotations

import collections
import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import Callable, Generic, TypeVar

from apiary.store.base import is_disk_full
from apiary.store.load_shares import CostShares

log = logging.getLogger(__name__)

T = TypeVar("T")
_RETRY_S = 1.0


@dataclass(frozen=True)
class Loaded:
    """What one load's transaction records beside its rows, so a crash replays exactly what was not loaded."""

    #: Every entry up to this seq is in the database.
    watermark: int
    #: Entries past the watermark that this load holds.
    ahead: tuple[int, ...] = ()


#: ``load(items, loaded)``: one transaction holding the items and the record ``loaded``.
LoadFn = Callable[[list[T], Loaded], None]


@dataclass(eq=False)
class _Queued(Generic[T]):
    seq: int
    item: T
    rows: int
    at: float  #: when it was queued (monotonic)
    key: str | None
    cost: int


class BulkLoader(Generic[T]):
    def __init__(self, load: LoadFn[T], *, loaded_seq: int, rows: int, delay_s: float, max_group_rows: int,
                 healthy: Callable[[], bool], set_aside: Callable[[int, T, BaseException], None],
                 name: str = "apiary-loader", cost_trigger: int | None = None, workers: int = 1,
                 costly_niceness: int = 0, costly_rest: float = 0.0) -> None:
        self._load = load
        self._rows = rows
        self._delay = delay_s
        self._max_group = max_group_rows
        self._healthy = healthy
        self._set_aside = set_aside
        self._queue: dict[int, _Queued[T]] = {}  # by seq, in seq order
        self._by_key: dict[str | None, dict[int, None]] = {}  # each key's queued seqs, in order
        #: Reserved load cost per key until loaded, and whose costly batch goes next.
        self._shares = CostShares(cost_trigger)
        #: Readers waiting, per key (None: a reader of every key).
        self._readers: collections.Counter[str | None] = collections.Counter()
        self._pending_rows = 0
        self._costly_queued = 0
        #: Keys a worker is loading now: each key is loaded by one worker at a time.
        self._busy: collections.Counter[str | None] = collections.Counter()
        self._lanes = workers > 1
        self._costly_niceness = costly_niceness
        #: After a costly load of d seconds the costly worker rests ``d * costly_rest`` (``_resting``).
        self._costly_rest = costly_rest
        self._rest_until = 0.0
        self._added_seq = loaded_seq
        self._watermark = loaded_seq
        self._cond = threading.Condition()
        self._closing = False
        #: The last load failed and waits to be tried again: reads answer at once with what is loaded.
        self.failing = False
        self.loads = 0
        self.loaded_rows = 0
        self._threads = [threading.Thread(target=self._run, args=(n,), name=f"{name}-{n}" if workers > 1 else name,
                                          daemon=True) for n in range(workers)]
        for thread in self._threads:
            thread.start()

    @property
    def pending_rows(self) -> int:
        return self._pending_rows

    def pending_rows_of(self, key: str | None) -> int:
        """Rows not loaded yet: of ``key``, or of every key for None."""
        with self._cond:
            if key is None:
                return self._pending_rows
            return sum(self._queue[seq].rows for seq in self._by_key.get(key, ()))

    def reserve(self, key: str, cost: int, limit: int) -> bool:
        """Reserve ``cost`` of load work for ``key``; False when ``key`` already has ``limit`` queued.

        A batch costlier than ``limit`` alone is still taken when its key has nothing queued.
        """
        with self._cond:
            return self._shares.reserve(key, cost, limit)

    def unreserve(self, key: str, cost: int) -> None:
        """Give back a reservation whose batch never reached ``add`` (its commit failed)."""
        with self._cond:
            self._shares.release(key, cost)

    def add(self, seq: int, item: T, rows: int, key: str | None = None, cost: int = 0) -> None:
        """Queue a committed item; ``key`` and ``cost`` name the reservation it holds (released once loaded)."""
        with self._cond:
            self._queue[seq] = _Queued(seq, item, rows, time.monotonic(), key, cost)
            mine = self._by_key.setdefault(key, {})
            first_of_key = not mine  # a key no worker waits on yet: an idle worker may have nothing else to load
            mine[seq] = None
            self._pending_rows += rows
            self._costly_queued += self._costly(cost)
            self._added_seq = seq
            if self._pending_rows >= self._rows or first_of_key or self._costly(cost) or key in self._readers:
                self._cond.notify_all()

    def _costly(self, cost: int) -> bool:
        return self._shares.costly(cost)

    def flush(self, timeout_s: float = 30.0, key: str | None = None) -> bool:
        """Wait until everything of ``key`` (every key for None) added before this call is loaded; False
        if that took past the timeout.

        The timeout only matters when the database refuses every load, or a load takes that long: the
        caller then says its answer would be incomplete rather than hang.
        """
        deadline = time.monotonic() + timeout_s
        with self._cond:
            target = self._added_seq
            if self._loaded(key, target):
                return True
            self._readers[key] += 1
            self._cond.notify_all()
            try:
                while not self._loaded(key, target) and self._alive():
                    if self.failing:  # the database refuses loads (disk full): waiting would only delay the answer
                        log.warning("read goes ahead with acknowledged rows not loaded yet: loads fail")
                        return False
                    left = deadline - time.monotonic()
                    if left <= 0:
                        log.warning("a read waited %.1f s for acknowledged rows to be loaded", timeout_s)
                        return False
                    self._cond.wait(min(left, 0.5))
                return self._loaded(key, target)
            finally:
                self._readers[key] -= 1
                if not self._readers[key]:
                    del self._readers[key]

    def _loaded(self, key: str | None, target: int) -> bool:
        """Is every entry of ``key`` (of every key for None) up to ``target`` loaded?"""
        queued = self._queue if key is None else self._by_key.get(key, {})
        return not queued or next(iter(queued)) > target

    def _alive(self) -> bool:
        return any(thread.is_alive() for thread in self._threads)

    def close(self) -> None:
        """Load everything queued, then stop."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        for thread in self._threads:
            thread.join()

    # -- the loader thread ------------------------------------------------------------------------

    def _free(self, worker: int) -> list[_Queued[T]]:
        """Queued entries this worker may load (of its kind, with no other worker on their key), in log order."""
        if not self._lanes:
            return list(self._queue.values())
        costly = worker == 0
        return [e for e in self._queue.values() if e.key not in self._busy and self._costly(e.cost) == costly]

    def _read_wanted(self, free: list[_Queued[T]]) -> bool:
        if None in self._readers:
            return True
        return any(e.key in self._readers for e in free)

    def _ordinary_due(self, free: list[_Queued[T]]) -> bool:
        return self._pending_rows >= self._rows or free[0].at + self._delay <= time.monotonic()

    def _due(self, free: list[_Queued[T]]) -> float | None:
        """Seconds until the next load is due (0: now), or None when there is nothing this worker may load."""
        if not free:
            return None
        if self._closing or self._read_wanted(free):
            return 0.0
        if self._costly_queued and any(self._costly(e.cost) for e in free):
            return 0.0
        return max(0.0, free[0].at + self._delay - time.monotonic())

    def _take(self, free: list[_Queued[T]]) -> list[_Queued[T]]:
        """The next load: what readers wait for first, then what is due, in log order; else one costly batch."""
        everything = self._closing or None in self._readers
        ordinary = everything or self._ordinary_due(free)
        group: list[_Queued[T]] = []
        rows = 0
        for read in (True, False):
            for entry in free:
                if (entry.key in self._readers) != read:
                    continue
                if not read and not everything and (self._costly(entry.cost) or not ordinary):
                    continue  # a costly batch of an environment nobody reads waits for its turn
                if group and rows + entry.rows > self._max_group:
                    break
                group.append(entry)
                rows += entry.rows
        if group:
            group.sort(key=lambda e: e.seq)
            return group
        # Nothing else is due: one costly batch, of the environment whose last one is the longest ago.
        turn = self._shares.next_turn(free, lambda e: e.key, lambda e: e.cost, self.loads)
        if turn is None:
            return [free[0]]
        return [turn]

    def _record(self, group: list[_Queued[T]]) -> Loaded:
        """The watermark once ``group`` is loaded, and the group's entries past it."""
        held = {e.seq for e in group}
        rest = next((seq for seq in self._queue if seq not in held), None)
        watermark = self._added_seq if rest is None else rest - 1
        return Loaded(watermark, tuple(sorted(seq for seq in held if seq > watermark)))

    def _resting(self, worker: int, free: list[_Queued[T]]) -> float:
        """Seconds the costly worker still rests (0: it may load now).

        Running beside the other worker, a costly load takes a core (and the GIL, for its Python part)
        from every other environment's requests for as long as it runs: a flooding environment that
        always has a costly batch queued would keep it busy without a pause. Resting ``costly_rest``
        times as long as its last load bounds that to ``1 / (1 + costly_rest)`` of the time, what the
        flood got when costly loads took turns with everyone else's on one worker. It does not rest when
        a reader waits for one of its batches (that environment's own read) or when the loader closes.
        """
        if not self._lanes or worker != 0 or self._closing or not free or self._read_wanted(free):
            return 0.0
        return max(0.0, self._rest_until - time.monotonic())

    def _lower_priority(self) -> None:
        """The costly worker's thread a step behind (Linux: a thread's own niceness); else as it is."""
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), self._costly_niceness)
        except (OSError, AttributeError):
            pass

    def _run(self, worker: int) -> None:
        if self._lanes and worker == 0 and self._costly_niceness:
            self._lower_priority()
        while True:
            with self._cond:
                while True:
                    free = self._free(worker)
                    resting = self._resting(worker, free)
                    if resting:
                        self._cond.wait(resting)
                        continue
                    due = self._due(free)
                    group = self._take(free) if due == 0.0 else []
                    if group:
                        break
                    if self._closing and not self._queue:
                        return
                    # Nothing this worker may load yet: wait for its delay, or for another worker or a reader.
                    self._cond.wait(due or None)
                loaded = self._record(group)
                for key in {e.key for e in group}:
                    self._busy[key] += 1
            done: list[_Queued[T]] = []
            started = time.monotonic()
            try:
                done = self._load_group(group, loaded)
            finally:
                if self._lanes and worker == 0:
                    ended = time.monotonic()
                    self._rest_until = ended + (ended - started) * self._costly_rest
                self._finish(group, done, loaded)
            if len(done) < len(group):
                time.sleep(_RETRY_S)

    def _finish(self, group: list[_Queued[T]], done: list[_Queued[T]], loaded: Loaded) -> None:
        """After a load: its entries leave the queue and their keys are free again, in one step (so that no
        other worker takes an entry just loaded)."""
        with self._cond:
            for key in {e.key for e in group}:
                self._busy[key] -= 1
                if not self._busy[key]:
                    del self._busy[key]
            for entry in done:
                del self._queue[entry.seq]
                mine = self._by_key[entry.key]
                del mine[entry.seq]
                if not mine:
                    del self._by_key[entry.key]
                self._pending_rows -= entry.rows
                self._costly_queued -= self._costly(entry.cost)
                self._shares.release(entry.key, entry.cost)
            self.failing = len(done) < len(group)
            if not self.failing:
                self._watermark = max(self._watermark, loaded.watermark)
            if done:
                self.loads += 1
                self.loaded_rows += sum(e.rows for e in done)
            self._cond.notify_all()

    def _load_group(self, group: list[_Queued[T]], loaded: Loaded) -> list[_Queued[T]]:
        """Load the group; returns its entries now loaded or set aside (a failure stops at the first refused)."""
        try:
            self._load([e.item for e in group], loaded)
            return group
        except Exception:  # noqa: BLE001 - find the entry at fault
            log.warning("bulk load of %d batches failed; loading them one by one", len(group), exc_info=True)
        done: list[_Queued[T]] = []
        for entry in group:
            alone = Loaded(self._watermark, (entry.seq,))  # the watermark stays: other entries may be behind it
            try:
                self._load([entry.item], alone)
            except Exception as exc:  # noqa: BLE001
                if is_disk_full(exc) or not self._healthy():
                    log.exception("the database takes no transaction; loading again in %.0f s", _RETRY_S)
                    return done
                log.exception("batch %d refused by the database; set aside", entry.seq)
                try:
                    self._set_aside(entry.seq, entry.item, exc)
                    self._load([], alone)
                except Exception:  # noqa: BLE001 - it stays queued and is tried again
                    log.exception("could not set batch %d aside", entry.seq)
                    return done
            done.append(entry)
        return done
