"""Error items and their occurrences, in tables ``error_items`` and ``error_occurrences`` of the span store's DuckDB file.

Item state lives here rather than in the SQLite meta store because it is
changed by every occurrence: the occurrence row and its item's new count,
last-seen time and (re)activation commit in one transaction, through the
same group-commit writer, so an acknowledged report is never counted
without being stored, or stored without being counted. Keeping the whole
error signal in the DuckDB file also lets the trace view join a trace's
errors beside its spans and logs.

Items are held in memory too (there are few: one per distinct error) and
changed only by the writer thread, after its transaction committed.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import asdict, dataclass, replace
from typing import Any, Union

import pyarrow as pa

from apiary.model.error import ErrorOccurrence, level_rank, occurrences_table
from apiary.store.base import StoreUnavailable
from apiary.store.duckdb import DuckDBStore, _arrow
from apiary.store.group_commit import GroupCommitter


@dataclass(frozen=True)
class ErrorItem:
    env: str
    id: int
    counter: int
    key: str
    title: str
    level: str
    status: str
    environment: str
    framework: str | None
    platform: str | None
    language: str | None
    total_occurrences: int
    first_occurrence_id: int
    first_occurrence_timestamp: float
    last_occurrence_id: int
    last_occurrence_timestamp: float
    activating_occurrence_id: int
    last_activated_timestamp: float
    last_resolved_timestamp: float | None = None
    last_muted_timestamp: float | None = None
    last_trace_id: str | None = None


_COLUMNS = [f for f in ErrorItem.__dataclass_fields__]
_SQL_TYPES = {"env": "VARCHAR", "id": "BIGINT", "counter": "BIGINT", "total_occurrences": "BIGINT",
              "first_occurrence_id": "BIGINT", "last_occurrence_id": "BIGINT", "activating_occurrence_id": "BIGINT",
              "first_occurrence_timestamp": "DOUBLE", "last_occurrence_timestamp": "DOUBLE",
              "last_activated_timestamp": "DOUBLE", "last_resolved_timestamp": "DOUBLE", "last_muted_timestamp": "DOUBLE"}


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


class DuckDBErrorStore:
    def __init__(self, spans: DuckDBStore, *, max_pending_rows: int = 100_000) -> None:
        self._spans = spans
        self._db = spans.cursor()
        self._lock = threading.Lock()
        cols = ", ".join(f"{c} {_SQL_TYPES.get(c, 'VARCHAR')}" for c in _COLUMNS)
        self._db.execute(f"CREATE TABLE IF NOT EXISTS error_items ({cols}, PRIMARY KEY (env, id))")
        self._db.execute("""CREATE TABLE IF NOT EXISTS error_occurrences (_env VARCHAR, id BIGINT, item_id BIGINT,
                            "timestamp" TIMESTAMP, uuid VARCHAR, item_key VARCHAR, title VARCHAR, level VARCHAR,
                            environment VARCHAR, framework VARCHAR, platform VARCHAR, language VARCHAR,
                            exception_class VARCHAR, trace_id VARCHAR, span_id VARCHAR, data VARCHAR)""")
        self._items: dict[tuple[str, int], ErrorItem] = {}
        self._by_key: dict[tuple[str, str], int] = {}
        for row in self._db.execute(f"SELECT {', '.join(_COLUMNS)} FROM error_items").fetchall():
            item = ErrorItem(*row)
            self._items[(item.env, item.id)] = item
            self._by_key[(item.env, item.key)] = item.id
        self._next_item = max((i for _, i in self._items), default=0) + 1
        self._next_occurrence = (self._db.execute("SELECT max(id) FROM error_occurrences").fetchall()[0][0] or 0) + 1
        self._writer: GroupCommitter[Union[_Report, _Status]] = GroupCommitter(
            self._commit, max_pending_rows=max_pending_rows, name="apiary-error-writer")
        self._closed = False

    # -- writing --------------------------------------------------------------------------------

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

    def _commit(self, group: list[Union[_Report, _Status]]) -> None:
        items: dict[tuple[str, int], ErrorItem] = {}
        by_key: dict[tuple[str, str], int] = {}
        next_item, next_occ = self._next_item, self._next_occurrence
        occ_rows: list[pa.Table] = []
        now = time.time()

        def current(env: str, item_id: int) -> ErrorItem | None:
            return items.get((env, item_id)) or self._items.get((env, item_id))

        for entry in group:
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
            table = table.set_column(table.schema.get_field_index("timestamp"), "timestamp",
                                     table.column("timestamp").cast(pa.timestamp("us")))
            occ_rows.append(table)

        db = self._db
        db.execute("BEGIN TRANSACTION")
        try:
            if occ_rows:
                incoming = pa.concat_tables(occ_rows)
                db.register("_incoming_errors", incoming)
                try:
                    db.execute("INSERT INTO error_occurrences BY NAME SELECT * FROM _incoming_errors")
                finally:
                    db.unregister("_incoming_errors")
            if items:
                marks = ", ".join("?" for _ in _COLUMNS)
                db.executemany(f"INSERT OR REPLACE INTO error_items ({', '.join(_COLUMNS)}) VALUES ({marks})",
                               [list(asdict(it).values()) for it in items.values()])
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        with self._lock:
            self._items.update(items)
            self._by_key.update(by_key)
        self._next_item, self._next_occurrence = next_item, next_occ

    # -- reading --------------------------------------------------------------------------------

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

    def _rows(self, sql: str, params: list[Any]) -> list[dict[str, Any]]:
        cur = self._spans.cursor()
        try:
            rows = _arrow(cur, sql, params).to_pylist()
        finally:
            cur.close()
        for r in rows:
            r["data"] = json.loads(r["data"]) if r.get("data") else {}
        return rows

    def occurrences(self, env: str, item_id: int, limit: int = 20, offset: int = 0) -> list[dict[str, Any]]:
        return self._rows("""SELECT id, item_id, epoch_ms("timestamp") AS ts_ms, uuid, level, trace_id, span_id, data
                             FROM error_occurrences WHERE _env = ? AND item_id = ? ORDER BY id DESC LIMIT ? OFFSET ?""",
                          [env, item_id, limit, offset])

    def occurrence(self, env: str, ident: str) -> dict[str, Any] | None:
        cond = "id = TRY_CAST(? AS BIGINT)" if ident.isdigit() else "uuid = ?"
        rows = self._rows(f"""SELECT id, item_id, epoch_ms("timestamp") AS ts_ms, uuid, level, trace_id, span_id, data
                              FROM error_occurrences WHERE _env = ? AND {cond} LIMIT 1""", [env, ident])
        return rows[0] if rows else None

    def trace_errors(self, env: str, trace_id: str) -> list[dict[str, Any]]:
        return self._rows("""SELECT id, item_id, epoch_ms("timestamp") AS ts_ms, uuid, level, trace_id, span_id, data
                             FROM error_occurrences WHERE _env = ? AND trace_id = ? ORDER BY id""", [env, trace_id])

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._writer.close()
        self._db.close()
