"""Group commit: many requests, one transaction, each acknowledged only after it.

A transaction costs a WAL write and an fsync whatever its size, so one per
request caps ingest at a few hundred requests per second. One writer thread
takes everything that queued up while the previous commit ran and commits it
together; every waiting request is then answered. If the group fails, each
batch is retried alone so one poisoned batch fails only its own request. A
failed request is answered `StoreUnavailable` (503 with Retry-After in every
protocol): nothing of it was stored, and the client still holds it.

The queue is bounded in rows: past the bound, ``submit`` refuses at once
(the receiver answers 429/503 with Retry-After) instead of letting memory
and latency grow without limit.

Where the commit is itself the costly write (the ClickHouse store inserts
the batch before it answers), a batch may name its environment (``key``)
and its ``cost`` (`apiary.store.load_shares`): a costly batch is then
committed alone, never in a group with others' batches (whose insert would
take on its columns), environments taking turns, and at most one between
two groups of ordinary batches, so an ordinary batch waits for at most the
one costly commit already running.

A costly commit may itself be several statements (ClickHouse: the columns,
the catalogue, the trace index, the spans, the trace summary; 60-150 ms for
a flood span on chdb). Its commit function then returns an iterator that
yields before and between them, and at each yield the writer commits every
ordinary group that queued up meanwhile, so an ordinary batch waits for at
most one statement of it; then it waits for ``between_steps`` to say go
(the ClickHouse store: until reads and ordinary batches pause,
`apiary.store.costly_gate`), still committing ordinary groups as they come.
An ordinary group's iterator runs to its end at once.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from typing import Callable, Generic, Iterator, TypeVar

from apiary.store.base import StoreOverloaded, StoreUnavailable, as_unavailable
from apiary.store.load_shares import CostShares

log = logging.getLogger(__name__)

T = TypeVar("T")
#: Commits the items, or returns an iterator that commits them, yielding where others may go first.
CommitFn = Callable[[list[T]], "Iterator[None] | None"]
#: The longest a costly commit waits between two of its statements for ``between_steps`` to say go.
STEP_WAIT_S = 1.0
#: While it waits, ordinary batches that come are committed within this.
STEP_POLL_S = 0.005


class _Pending(Generic[T]):
    __slots__ = ("item", "rows", "loop", "future", "key", "cost")

    def __init__(self, item: T, rows: int, loop: asyncio.AbstractEventLoop, future: asyncio.Future[None],
                 key: str | None = None, cost: int = 0) -> None:
        self.item, self.rows, self.loop, self.future = item, rows, loop, future
        self.key, self.cost = key, cost


class GroupCommitter(Generic[T]):
    def __init__(self, commit: CommitFn[T], *, max_pending_rows: int = 400_000, max_group_rows: int = 200_000,
                 linger_s: float = 0.0, linger_rows: int = 8192, name: str = "apiary-writer",
                 between_steps: Callable[[float], bool] | None = None) -> None:
        self._commit = commit
        self._between_steps = between_steps
        self._max_pending = max_pending_rows
        self._max_group = max_group_rows
        # A transaction's cost is mostly fixed; under load, waiting a few ms for more requests
        # makes each commit carry more rows for the same CPU.
        self._linger = linger_s
        self._linger_rows = linger_rows
        self._last_group = 0
        self._queue: deque[_Pending[T]] = deque()
        self._pending_rows = 0
        self._shares = CostShares()
        self._costly_next = False  # a costly batch waits and an ordinary group just went: its turn
        self._cond = threading.Condition()
        self._closing = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()
        self.commits = 0
        self.committed_rows = 0

    @property
    def pending_rows(self) -> int:
        return self._pending_rows

    def reserve(self, key: str, cost: int, limit: int) -> bool:
        """Reserve ``cost`` for ``key`` until its batch is committed; False when ``key`` has ``limit`` reserved."""
        with self._cond:
            return self._shares.reserve(key, cost, limit)

    async def submit(self, item: T, rows: int, key: str | None = None, cost: int = 0) -> None:
        """Return once ``item`` is committed. ``key`` and ``cost`` name a reservation (`reserve`), given back
        once the commit is over, whether it succeeded or not, or at once when the batch is refused here."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        with self._cond:
            refusal: Exception | None = None
            if self._closing:
                refusal = StoreUnavailable("server is shutting down", retry_after=5)
            elif self._pending_rows and self._pending_rows + rows > self._max_pending:
                refusal = StoreOverloaded(retry_after=1)
            if refusal is not None:
                if cost:
                    self._shares.release(key, cost)
                raise refusal
            self._queue.append(_Pending(item, rows, loop, fut, key, cost))
            self._pending_rows += rows
            self._cond.notify()
        await fut

    def _take_group(self) -> list[_Pending[T]]:
        """Ordinary batches in arrival order, up to ``max_group`` rows; or one costly batch, alone, in its turn."""
        if not self._costly_next or not any(self._shares.costly(p.cost) for p in self._queue):
            group = self._take_ordinary()
            if group:
                self._costly_next = True
                return group
        self._costly_next = False
        turn = self._shares.next_turn(self._queue, lambda p: p.key, lambda p: p.cost, self.commits)
        assert turn is not None, "a queue without ordinary batches holds a costly one"
        self._remove([turn])
        return [turn]

    def _remove(self, taken: list[_Pending[T]]) -> None:
        if len(taken) == len(self._queue):
            self._queue.clear()
            return
        gone = {id(p) for p in taken}
        self._queue = deque(p for p in self._queue if id(p) not in gone)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closing:
                    self._cond.wait()
                if not self._queue and self._closing:
                    return
                # Linger only under load (the last group had company): a lone request is committed at once.
                if self._linger and self._last_group > 1 and not self._closing and self._pending_rows < self._linger_rows:
                    deadline = time.monotonic() + self._linger
                    while self._pending_rows < self._linger_rows and not self._closing:
                        left = deadline - time.monotonic()
                        if left <= 0:
                            break
                        self._cond.wait(left)
                group = self._take_group()
                self._last_group = len(group)
            self._commit_group(group, stepwise=len(group) == 1 and self._shares.costly(group[0].cost))

    def _commit_group(self, group: list[_Pending[T]], stepwise: bool = False) -> None:
        """Commit ``group`` and answer its requests; a failing group is retried batch by batch.

        ``stepwise`` (a costly batch): at each step its commit yields, the ordinary groups queued meanwhile
        are committed and answered first."""
        try:
            self._drive([p.item for p in group], stepwise)
            self.commits += 1
            self.committed_rows += sum(p.rows for p in group)
            results: list[BaseException | None] = [None] * len(group)
        except Exception as exc:  # noqa: BLE001 - isolate the failing batch
            if len(group) == 1:
                log.exception("commit failed")
                results = [exc]
            else:
                results = []
                for p in group:
                    try:
                        self._drive([p.item], False)
                        results.append(None)
                    except Exception as one_exc:  # noqa: BLE001
                        log.exception("commit of one batch failed")
                        results.append(one_exc)
        with self._cond:
            self._pending_rows -= sum(p.rows for p in group)
            for p in group:
                if p.cost:
                    self._shares.release(p.key, p.cost)
        for p, err in zip(group, results):
            p.loop.call_soon_threadsafe(_settle, p.future, None if err is None else as_unavailable(err))

    def _drive(self, items: list[T], stepwise: bool) -> None:
        steps = self._commit(items)
        if steps is None:
            return
        for _ in steps:
            if stepwise:
                self._between_steps_of_costly()

    def _between_steps_of_costly(self) -> None:
        """Commit the ordinary groups queued, then wait for ``between_steps`` to say go (it is given a slice of
        time to wait, True: go), committing what comes meanwhile, for at most `STEP_WAIT_S`."""
        deadline = time.monotonic() + STEP_WAIT_S
        while True:
            while True:
                with self._cond:
                    ordinary = self._take_ordinary()
                if not ordinary:
                    break
                self._commit_group(ordinary)
            left = deadline - time.monotonic()
            if self._between_steps is None or self._closing or left <= 0 or self._between_steps(min(left, STEP_POLL_S)):
                return

    def _take_ordinary(self) -> list[_Pending[T]]:
        """The ordinary batches queued, in arrival order, up to ``max_group`` rows (none: an empty list)."""
        costly = self._shares.costly
        group: list[_Pending[T]] = []
        rows = 0
        for p in self._queue:
            if costly(p.cost):
                continue
            if group and rows + p.rows > self._max_group:
                break
            group.append(p)
            rows += p.rows
        if group:
            self._remove(group)
        return group

    def close(self) -> None:
        """Commit everything already queued, then stop the writer thread."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join()


def _settle(fut: asyncio.Future[None], err: BaseException | None) -> None:
    if fut.done():
        return
    if err is None:
        fut.set_result(None)
    else:
        fut.set_exception(err)
