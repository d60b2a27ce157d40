"""Each environment's share of the costly write work, and whose costly batch goes next, for every store.

A wide batch costs the writer far more than its rows suggest: its layout, folding its keys past the caps
into the overflow column and a catalogue row per key all grow with its columns. ``bench/fairness.py``'s
flood span (1,023 columns after the attribute cap, one row) took ~0.12 s to load into DuckDB, against
~2.5 ms for a 512-span request of ~30 columns. So a batch's cost is its columns past ``WIDE_COLUMNS``
(`apiary.store.base.wide_cost`); ordinary batches cost nothing and are bounded by rows as before.

Two writers use one `CostShares` each, under their own lock: the DuckDB store's bulk loader (loads after
the intake log has acknowledged the batch: `apiary.store.bulk_loader`) and the ClickHouse store's group
commit (the insert is the acknowledgement: `apiary.store.group_commit`). In both, an environment may have
``ENV_PENDING_COST`` reserved (about one flood span) before its next costly batch is refused with
`EnvironmentOverloaded` (429, and the intake then refuses that environment's requests before reading
them for the Retry-After); a costly batch is written alone, environments taking turns, so another
environment's batch waits for at most the one costly write already running, never for a backlog of them.
"""

from __future__ import annotations

from typing import Callable, Hashable, Iterable, TypeVar

#: Columns a batch may have before it costs anything.
WIDE_COLUMNS = 256
#: Cost one environment may have queued before its next costly batch is refused.
ENV_PENDING_COST = 1024
#: Cost from which a batch is written alone, in turns.
COST_TRIGGER = 1
#: The Retry-After of that refusal, in seconds, for which the intake refuses the environment's requests unread.
#: Each wide span admitted costs the others' exports more than its own load: its body's decode on a worker,
#: its commit and its load all share the two cores with them. ``bench/fairness.py`` (two senders of
#: 100,000-attribute spans): at 1 s, 58-60 such spans a minute were admitted and the calm environment's export
#: p99 was 1.95-2.2 x its own alone; at 2 s, half as many.
COSTLY_RETRY_AFTER_S = 2

E = TypeVar("E")


class CostShares:
    """Reserved cost per environment, and the turns of costly batches; guarded by its owner's lock."""

    def __init__(self, trigger: int | None = COST_TRIGGER) -> None:
        self.trigger = trigger
        self._cost: dict[Hashable, int] = {}
        #: Key -> the owner's write count when its last costly batch was taken.
        self._served: dict[Hashable, int] = {}

    def costly(self, cost: int) -> bool:
        return self.trigger is not None and cost >= self.trigger

    def reserve(self, key: Hashable, cost: int, limit: int) -> bool:
        """Reserve ``cost`` for ``key``; False when ``key`` already has ``limit`` reserved.

        A batch costlier than ``limit`` alone is still taken when its key has nothing reserved.
        """
        have = self._cost.get(key, 0)
        if have and have + cost > limit:
            return False
        self._cost[key] = have + cost
        return True

    def release(self, key: Hashable, cost: int) -> None:
        left = self._cost.get(key, 0) - cost
        if left > 0:
            self._cost[key] = left
        else:
            self._cost.pop(key, None)

    def next_turn(self, entries: Iterable[E], key: Callable[[E], Hashable], cost: Callable[[E], int],
                  now: int) -> E | None:
        """The costly entry of the key whose last costly write is the oldest (first in order among its own);
        that key is then marked served at ``now``. None when no entry is costly."""
        turn = min((e for e in entries if self.costly(cost(e))), key=lambda e: self._served.get(key(e), -1),
                   default=None)
        if turn is not None:
            self._served[key(turn)] = now
        return turn
