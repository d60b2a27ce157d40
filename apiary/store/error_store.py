"""What both error stores share: items in memory, the group-commit writer, grouping occurrences, and the reads.

Item state is changed by every occurrence: the occurrence row and its
item's new count, last-seen time and (re)activation are persisted by one
commit of the same group-commit writer, so an acknowledged report is never
counted without being stored. Items are few (one per distinct error) and
held in memory, changed only by the writer thread after its commit
succeeded; occurrences are read from the database. A backend
(``duckdb/errors.py``, ``clickhouse/errors.py``) supplies loading,
persisting one commit group, and running SQL; the reads are written once
here through the store's `LogDialect`.
"""

from __future__ import annotations

import json
import abc
import threading
import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any, Sequence, Union

import pyarrow as pa

from apiary.model.error import ErrorOccurrence, level_rank, occurrences_table
from apiary.query.dialects.logs import log_dialect_for
from apiary.store.base import ErrorItem, StoreUnavailable
from apiary.store.group_commit import GroupCommitter

ITEM_COLUMNS = list(ErrorItem.__dataclass_fields__)


@dataclass
class _Report:
    env: str
    occurrences: list[ErrorOccurrence]


@dataclass
class _Status:
    env: str
    item_id: int
    status: str | None
    level: str | None


@dataclass
class _Expire:
    """Retention: occurrences older than ``cutoff`` go, and items whose last occurrence is older."""

    cutoff: datetime
    removed: int = 0


class ErrorStoreBase(abc.ABC):
    """Implements `apiary.store.base.ErrorStore` given ``_load``, ``_persist`` and ``query`` of a backend."""

    dialect = "duckdb"

    def __init__(self, *, max_pending_rows: int = 100_000) -> None:
        self._sql = log_dialect_for(self.dialect)
        self._lock = threading.Lock()
        self._items: dict[tuple[str, int], ErrorItem] = {}
        self._by_key: dict[tuple[str, str], int] = {}
        self._next_occurrence = self._load(self._items)
        for (env, _), item in self._items.items():
            self._by_key[(env, item.key)] = item.id
        self._next_item = max((i for _, i in self._items), default=0) + 1
        self._writer: GroupCommitter[Union[_Report, _Status, _Expire]] = GroupCommitter(
            self._commit, max_pending_rows=max_pending_rows, name=f"apiary-{self.dialect}-error-writer")
        self._closed = False

    # -- what a backend supplies ------------------------------------------------------------------

    @abc.abstractmethod
    def _load(self, items: dict[tuple[str, int], ErrorItem]) -> int:
        """Fill ``items`` from the database; return the next occurrence id."""

    @abc.abstractmethod
    def _persist(self, occurrences: pa.Table | None, items: list[ErrorItem], expiries: list[_Expire],
                 gone: list[tuple[str, int]]) -> None:
        """Store new occurrences (``_env``, ``id``, ``item_id`` + the occurrence schema) and items' new state,
        run retention (setting ``removed``) and drop ``gone`` items; raise to refuse all of it."""

    @abc.abstractmethod
    def query(self, sql: str, params: Sequence[Any] = ()) -> pa.Table:
        """Run a read statement of this store's dialect (from `apiary.query`), values as parameters."""

    @abc.abstractmethod
    def _close_backend(self) -> None:
        """Close the backend's connection, once the writer has committed its last group."""

    # -- writing ----------------------------------------------------------------------------------

    async def report(self, env: str, occurrences: list[ErrorOccurrence]) -> None:
        """Return once the occurrences and their items' new state are committed."""
        if self._closed:
            raise StoreUnavailable("store is closed")
        await self._writer.submit(_Report(env, occurrences), len(occurrences))

    async def set_status(self, env: str, item_id: int, status: str | None, level: str | None) -> ErrorItem | None:
        if self.item(env, item_id) is None:
            return None
        await self._writer.submit(_Status(env, item_id, status, level), 1)
        return self.item(env, item_id)

    async def delete_older_than(self, cutoff: datetime) -> int:
        if self._closed:
            raise StoreUnavailable("store is closed")
        job = _Expire(cutoff if cutoff.tzinfo else cutoff.replace(tzinfo=timezone.utc))
        await self._writer.submit(job, 1)
        return job.removed

    def _commit(self, group: list[Union[_Report, _Status, _Expire]]) -> None:
        items: dict[tuple[str, int], ErrorItem] = {}
        by_key: dict[tuple[str, str], int] = {}
        next_item, next_occ = self._next_item, self._next_occurrence
        occ_rows: list[pa.Table] = []
        now = time.time()

        def current(env: str, item_id: int) -> ErrorItem | None:
            return items.get((env, item_id)) or self._items.get((env, item_id))

        expiries = [e for e in group if isinstance(e, _Expire)]
        for entry in group:
            if isinstance(entry, _Expire):
                continue
            if isinstance(entry, _Status):
                it = current(entry.env, entry.item_id)
                if it is None:
                    continue
                changes: dict[str, Any] = {}
                if entry.status and entry.status != it.status:
                    changes["status"] = entry.status
                    if entry.status == "resolved":
                        changes["last_resolved_timestamp"] = now
                    elif entry.status == "muted":
                        changes["last_muted_timestamp"] = now
                    else:
                        changes["last_activated_timestamp"] = now
                if entry.level:
                    changes["level"] = entry.level
                items[(entry.env, entry.item_id)] = replace(it, **changes)
                continue
            ids: list[int] = []
            for o in entry.occurrences:
                occ_id = next_occ
                next_occ += 1
                ts = o.timestamp_us / 1e6
                item_id = by_key.get((entry.env, o.item_key)) or self._by_key.get((entry.env, o.item_key))
                it = current(entry.env, item_id) if item_id else None
                if it is None:
                    item_id = next_item
                    next_item += 1
                    counter = 1 + sum(1 for (e, _) in list(self._items) + list(items) if e == entry.env)
                    it = ErrorItem(entry.env, item_id, counter, o.item_key, o.title, o.level, "active", o.environment,
                                   o.framework, o.platform, o.language, 0, occ_id, ts, occ_id, ts, occ_id, ts)
                    by_key[(entry.env, o.item_key)] = item_id
                changes = {"total_occurrences": it.total_occurrences + 1, "last_occurrence_id": occ_id,
                           "last_occurrence_timestamp": max(ts, it.last_occurrence_timestamp),
                           "last_trace_id": o.trace_id or it.last_trace_id}
                if level_rank(o.level) > level_rank(it.level):
                    changes["level"] = o.level
                if it.status == "resolved":  # it happened again: reopen it, as Rollbar does
                    changes.update(status="active", activating_occurrence_id=occ_id, last_activated_timestamp=ts)
                items[(entry.env, item_id)] = replace(it, **changes)
                ids.append(item_id)
            table = occurrences_table(entry.occurrences)
            n = table.num_rows
            table = table.add_column(0, "item_id", pa.array(ids, pa.int64()))
            table = table.add_column(0, "id", pa.array(range(next_occ - n, next_occ), pa.int64()))
            table = table.add_column(0, "_env", pa.array([entry.env] * n, pa.string()))
            occ_rows.append(table)
        gone: set[tuple[str, int]] = set()
        for e in expiries:
            cutoff = e.cutoff.timestamp()
            with self._lock:
                known = dict(self._items)
            known.update(items)
            gone |= {k for k, it in known.items() if it.last_occurrence_timestamp < cutoff}
        for k in gone:
            items.pop(k, None)
        self._persist(pa.concat_tables(occ_rows) if occ_rows else None, list(items.values()), expiries, sorted(gone))
        with self._lock:
            self._items.update(items)
            self._by_key.update(by_key)
            for k in gone:
                it = self._items.pop(k, None)
                if it is not None:
                    self._by_key.pop((it.env, it.key), None)
        self._next_item, self._next_occurrence = next_item, next_occ

    # -- reading ----------------------------------------------------------------------------------

    def item(self, env: str, item_id: int) -> ErrorItem | None:
        with self._lock:
            return self._items.get((env, item_id))

    def items(self, env: str, status: str | None = None, level: str | None = None,
              environment: str | None = None) -> list[ErrorItem]:
        with self._lock:
            found = [i for (e, _), i in self._items.items() if e == env]
        if status:
            found = [i for i in found if i.status == status]
        if level:
            found = [i for i in found if i.level == level]
        if environment:
            found = [i for i in found if i.environment == environment]
        return sorted(found, key=lambda i: -i.last_occurrence_timestamp)

    def _rows(self, where: str, params: list[Any], tail: str = "") -> list[dict[str, Any]]:
        sql = (f'SELECT id, item_id, {self._sql.epoch_ms(_TS)} AS ts_ms, uuid, level, trace_id, span_id, data '
               f"FROM error_occurrences WHERE _env = ? AND {where} {tail}")
        rows = self.query(*self._sql.bind(sql, params)).to_pylist()
        for r in rows:
            r["data"] = json.loads(r["data"]) if r.get("data") else {}
        return rows

    def occurrences(self, env: str, item_id: int, limit: int = 20, offset: int = 0) -> list[dict[str, Any]]:
        return self._rows("item_id = ?", [env, item_id, limit, offset], "ORDER BY id DESC LIMIT ? OFFSET ?")

    def occurrence(self, env: str, ident: str) -> dict[str, Any] | None:
        if ident.isdigit():
            rows = self._rows("id = ?", [env, int(ident)], "LIMIT 1") if len(ident) < 19 else []
        else:
            rows = self._rows("uuid = ?", [env, ident], "LIMIT 1")
        return rows[0] if rows else None

    def trace_errors(self, env: str, trace_id: str) -> list[dict[str, Any]]:
        return self._rows("trace_id = ?", [env, trace_id], "ORDER BY id")

    def occurrence_counts(self, env: str, item_ids: list[int], start: datetime, bucket_s: int) -> list[dict[str, Any]]:
        if not item_ids:
            return []
        d = self._sql
        begin_us = int(start.timestamp() * 1_000_000)
        marks = ", ".join("?" for _ in item_ids)
        sql = (f"SELECT item_id, CAST(floor(({d.epoch_us(_TS)} - ?) / ?) AS BIGINT) AS b, count(*) AS n "
               f"FROM error_occurrences WHERE _env = ? AND {_TS} >= {d.from_epoch_us('?')} AND item_id IN ({marks}) "
               "GROUP BY 1, 2")
        rows = self.query(*d.bind(sql, [begin_us, bucket_s * 1_000_000, env, begin_us, *item_ids])).to_pylist()
        return [{"item_id": int(r["item_id"]), "b": int(r["b"]), "n": int(r["n"])} for r in rows]

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._writer.close()
        self._close_backend()


_TS = '"timestamp"'
