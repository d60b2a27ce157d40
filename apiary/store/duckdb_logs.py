"""The embedded log store: tables ``logs``, ``log_groups``, ``log_streams`` in the span store's DuckDB file.

One file keeps a trace and its log lines in one database, so the trace view
joins them without a second store to open. The log store has its own
connection (a cursor of the span store's database) and its own group-commit
writer thread: a ``PutLogEvents`` is acknowledged only once its transaction
committed, and a burst of small requests shares one commit.

Every write -- appended events, but also creating or deleting a group or a
stream -- goes through that one writer, so DuckDB never sees two writers
touching the same catalogue rows. The catalogue (groups and streams with
their stats) is also kept in memory, loaded at start-up and changed only
after a commit succeeded, so ``Describe*`` and the existence checks of every
``PutLogEvents`` do not touch the database.

Each event gets a ``seq``: a store-wide counter assigned at commit. The pair
(``timestamp``, ``seq``) orders events totally; paging tokens are positions
in that order, so a page boundary never splits or repeats events that share
a millisecond.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any, Callable, Sequence, Union

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from apiary.model.log import LOG_FIELDS, LogBatch
from apiary.store.base import StoreUnavailable
from apiary.store.duckdb import DuckDBStore, _arrow
from apiary.store.group_commit import GroupCommitter

log = logging.getLogger(__name__)

_SQL = {pa.string(): "VARCHAR", pa.int32(): "INTEGER"}


def _sql_type(f: pa.Field) -> str:
    return "TIMESTAMP" if pa.types.is_timestamp(f.type) else _SQL[f.type]


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class LogGroup:
    name: str
    created_ms: int
    retention_days: int | None = None
    stored_bytes: int = 0


@dataclass(frozen=True)
class LogStream:
    log_group: str
    name: str
    created_ms: int
    first_event_ms: int | None = None
    last_event_ms: int | None = None
    last_ingestion_ms: int | None = None
    stored_bytes: int = 0


@dataclass
class _Append:
    env: str
    batch: LogBatch


@dataclass
class _Op:
    """A catalogue change: SQL run inside the group's transaction, then applied to memory."""

    run: Callable[[duckdb.DuckDBPyConnection], None]
    apply: Callable[[], None]


_Item = Union[_Append, _Op]


class DuckDBLogStore:
    dialect = "duckdb"

    def __init__(self, spans: DuckDBStore, *, max_pending_rows: int = 400_000) -> None:
        self._spans = spans
        self._db = spans.cursor()
        self._lock = threading.Lock()
        self._groups: dict[tuple[str, str], LogGroup] = {}
        self._streams: dict[tuple[str, str, str], LogStream] = {}
        self._create_schema()
        self._load()
        self._writer: GroupCommitter[_Item] = GroupCommitter(self._commit, max_pending_rows=max_pending_rows,
                                                             name="apiary-log-writer")
        self._closed = False

    # -- schema ---------------------------------------------------------------------------------

    def _create_schema(self) -> None:
        cols = ["_env VARCHAR", "seq BIGINT"] + [f'"{f.name}" {_sql_type(f)}' for f in LOG_FIELDS]
        db = self._db
        db.execute(f"CREATE TABLE IF NOT EXISTS logs ({', '.join(cols)})")
        db.execute("""CREATE TABLE IF NOT EXISTS log_groups (_env VARCHAR, name VARCHAR, created_ms BIGINT,
                      retention_days INTEGER, PRIMARY KEY (_env, name))""")
        db.execute("""CREATE TABLE IF NOT EXISTS log_streams (_env VARCHAR, log_group VARCHAR, name VARCHAR,
                      created_ms BIGINT, first_event_ms BIGINT, last_event_ms BIGINT, last_ingestion_ms BIGINT,
                      stored_bytes BIGINT, PRIMARY KEY (_env, log_group, name))""")

    def _load(self) -> None:
        db = self._db
        for env, name, created, retention in db.execute(
                "SELECT _env, name, created_ms, retention_days FROM log_groups").fetchall():
            self._groups[(env, name)] = LogGroup(name, created, retention)
        for env, grp, name, created, first, last, ingest, size in db.execute(
                "SELECT * FROM log_streams").fetchall():
            self._streams[(env, grp, name)] = LogStream(grp, name, created, first, last, ingest, size or 0)
        self._next_seq = (db.execute("SELECT max(seq) FROM logs").fetchall()[0][0] or 0) + 1

    # -- catalogue (memory) ---------------------------------------------------------------------

    def group(self, env: str, name: str) -> LogGroup | None:
        with self._lock:
            g = self._groups.get((env, name))
            if g is None:
                return None
            size = sum(s.stored_bytes for (e, gn, _), s in self._streams.items() if e == env and gn == name)
        return replace(g, stored_bytes=size)

    def groups(self, env: str, prefix: str = "") -> list[LogGroup]:
        with self._lock:
            names = sorted(n for (e, n) in self._groups if e == env and n.startswith(prefix))
        return [g for g in (self.group(env, n) for n in names) if g is not None]

    def stream(self, env: str, group: str, name: str) -> LogStream | None:
        with self._lock:
            return self._streams.get((env, group, name))

    def streams(self, env: str, group: str, prefix: str = "") -> list[LogStream]:
        with self._lock:
            found = [s for (e, g, n), s in self._streams.items() if e == env and g == group and n.startswith(prefix)]
        return sorted(found, key=lambda s: s.name)

    # -- catalogue (writes) ---------------------------------------------------------------------

    async def _op(self, run: Callable[[duckdb.DuckDBPyConnection], None], apply: Callable[[], None]) -> None:
        if self._closed:
            raise StoreUnavailable("store is closed")
        await self._writer.submit(_Op(run, apply), 1)

    async def create_group(self, env: str, name: str) -> bool:
        """False when it already exists."""
        if self.group(env, name) is not None:
            return False
        created = now_ms()

        def run(db: duckdb.DuckDBPyConnection) -> None:
            db.execute("INSERT OR IGNORE INTO log_groups VALUES (?, ?, ?, NULL)", [env, name, created])

        def apply() -> None:
            self._groups.setdefault((env, name), LogGroup(name, created))

        await self._op(run, apply)
        return True

    async def create_stream(self, env: str, group: str, name: str) -> bool:
        if self.stream(env, group, name) is not None:
            return False
        created = now_ms()

        def run(db: duckdb.DuckDBPyConnection) -> None:
            db.execute("INSERT OR IGNORE INTO log_streams VALUES (?, ?, ?, ?, NULL, NULL, NULL, 0)",
                       [env, group, name, created])

        def apply() -> None:
            self._streams.setdefault((env, group, name), LogStream(group, name, created))

        await self._op(run, apply)
        return True

    async def ensure_stream(self, env: str, group: str, name: str) -> None:
        """Create the group and stream when missing (for receivers with no create call, like OTLP)."""
        if self.group(env, group) is None:
            await self.create_group(env, group)
        if self.stream(env, group, name) is None:
            await self.create_stream(env, group, name)

    async def delete_group(self, env: str, name: str) -> None:
        def run(db: duckdb.DuckDBPyConnection) -> None:
            db.execute("DELETE FROM logs WHERE _env = ? AND log_group = ?", [env, name])
            db.execute("DELETE FROM log_streams WHERE _env = ? AND log_group = ?", [env, name])
            db.execute("DELETE FROM log_groups WHERE _env = ? AND name = ?", [env, name])

        def apply() -> None:
            self._groups.pop((env, name), None)
            for k in [k for k in self._streams if k[0] == env and k[1] == name]:
                del self._streams[k]

        await self._op(run, apply)

    async def delete_stream(self, env: str, group: str, name: str) -> None:
        def run(db: duckdb.DuckDBPyConnection) -> None:
            db.execute("DELETE FROM logs WHERE _env = ? AND log_group = ? AND log_stream = ?", [env, group, name])
            db.execute("DELETE FROM log_streams WHERE _env = ? AND log_group = ? AND name = ?", [env, group, name])

        def apply() -> None:
            self._streams.pop((env, group, name), None)

        await self._op(run, apply)

    async def put_retention(self, env: str, group: str, days: int | None) -> None:
        def run(db: duckdb.DuckDBPyConnection) -> None:
            db.execute("UPDATE log_groups SET retention_days = ? WHERE _env = ? AND name = ?", [days, env, group])

        def apply() -> None:
            g = self._groups.get((env, group))
            if g is not None:
                self._groups[(env, group)] = replace(g, retention_days=days)

        await self._op(run, apply)

    # -- events ---------------------------------------------------------------------------------

    async def append(self, env: str, batch: LogBatch) -> None:
        """Return once every row is committed; the rows' groups and streams must exist."""
        if self._closed:
            raise StoreUnavailable("store is closed")
        if batch.num_rows == 0:
            return
        await self._writer.submit(_Append(env, batch), batch.num_rows)

    @property
    def pending_rows(self) -> int:
        return self._writer.pending_rows

    def _commit(self, group: list[_Item]) -> None:
        db = self._db
        appends = [i for i in group if isinstance(i, _Append)]
        ops = [i for i in group if isinstance(i, _Op)]
        seq = self._next_seq
        incoming = None
        if appends:
            tables = []
            for a in appends:
                t = a.batch.table
                n = t.num_rows
                t = t.add_column(0, "seq", pa.array(range(seq, seq + n), pa.int64()))
                t = t.add_column(0, "_env", pa.array([a.env] * n, pa.string()))
                tables.append(t)
                seq += n
            incoming = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
            for name in ("timestamp", "ingestion_time"):
                i = incoming.schema.get_field_index(name)
                incoming = incoming.set_column(i, name, incoming.column(name).cast(pa.timestamp("us")))
        stats = _stream_stats(incoming) if incoming is not None else {}
        db.execute("BEGIN TRANSACTION")
        try:
            for op in ops:
                op.run(db)
            if incoming is not None:
                db.register("_incoming_logs", incoming)
                try:
                    db.execute("INSERT INTO logs BY NAME SELECT * FROM _incoming_logs")
                finally:
                    db.unregister("_incoming_logs")
                with self._lock:
                    updated = {k: self._merged(k, v) for k, v in stats.items()}
                db.executemany("""UPDATE log_streams SET first_event_ms = ?, last_event_ms = ?, last_ingestion_ms = ?,
                                  stored_bytes = ? WHERE _env = ? AND log_group = ? AND name = ?""",
                               [[s.first_event_ms, s.last_event_ms, s.last_ingestion_ms, s.stored_bytes, *k]
                                for k, s in updated.items()])
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self._next_seq = seq
        with self._lock:
            for op in ops:
                op.apply()
            if incoming is not None:
                for k, s in updated.items():
                    if k in self._streams:
                        self._streams[k] = s

    def _merged(self, key: tuple[str, str, str], st: tuple[int, int, int, int]) -> LogStream:
        first, last, ingest, size = st
        s = self._streams.get(key) or LogStream(key[1], key[2], now_ms())
        return replace(s, first_event_ms=first if s.first_event_ms is None else min(first, s.first_event_ms),
                       last_event_ms=last if s.last_event_ms is None else max(last, s.last_event_ms),
                       last_ingestion_ms=max(ingest, s.last_ingestion_ms or 0), stored_bytes=s.stored_bytes + size)

    # -- reading --------------------------------------------------------------------------------

    def query(self, sql: str, params: Sequence[Any] = ()) -> pa.Table:
        cur = self._spans.cursor()
        try:
            return _arrow(cur, sql, params)
        finally:
            cur.close()

    def events(self, env: str, group: str, streams: Sequence[str] | None = None, *, start_ms: int | None = None,
               end_ms: int | None = None, after: tuple[int, int] | None = None, before: tuple[int, int] | None = None,
               descending: bool = False, limit: int = 10_000, where: str = "", where_params: Sequence[Any] = (),
               columns: str = "") -> pa.Table:
        """Events of a group in (timestamp, seq) order, with ``timestamp_us``; ``after``/``before`` are exclusive positions.

        ``where`` is an extra SQL condition compiled elsewhere from a filter pattern, its values in ``where_params``.
        """
        sql = ["SELECT seq, epoch_us(\"timestamp\") AS timestamp_us, epoch_ms(ingestion_time) AS ingestion_ms, "
               f"log_stream, message{columns} FROM logs WHERE _env = ? AND log_group = ?"]
        params: list[Any] = [env, group]
        if streams is not None:
            sql.append("AND list_contains(?, log_stream)")
            params.append(list(streams))
        if start_ms is not None:
            sql.append('AND "timestamp" >= make_timestamp(?)')
            params.append(start_ms * 1000)
        if end_ms is not None:
            sql.append('AND "timestamp" < make_timestamp(?)')
            params.append(end_ms * 1000)
        if after is not None:
            sql.append('AND ("timestamp" > make_timestamp(?) OR ("timestamp" = make_timestamp(?) AND seq > ?))')
            params += [after[0], after[0], after[1]]
        if before is not None:
            sql.append('AND ("timestamp" < make_timestamp(?) OR ("timestamp" = make_timestamp(?) AND seq < ?))')
            params += [before[0], before[0], before[1]]
        if where:
            sql.append(f"AND ({where})")
            params += list(where_params)
        order = "DESC" if descending else "ASC"
        sql.append(f'ORDER BY "timestamp" {order}, seq {order} LIMIT ?')
        params.append(limit)
        return self.query(" ".join(sql), params)

    def trace_logs(self, env: str, trace_id: str, limit: int = 1000) -> pa.Table:
        """Log lines of one trace, oldest first (for the trace view)."""
        return self.query("""SELECT "timestamp", log_group, log_stream, message, severity_text, span_id, source
                             FROM logs WHERE _env = ? AND trace_id = ? ORDER BY "timestamp", seq LIMIT ?""",
                          [env, trace_id, limit])

    def count(self, env: str | None = None) -> int:
        if env is None:
            return self.query("SELECT count(*) FROM logs").column(0)[0].as_py()
        return self.query("SELECT count(*) FROM logs WHERE _env = ?", [env]).column(0)[0].as_py()

    # -- upkeep ---------------------------------------------------------------------------------

    async def delete_expired(self) -> None:
        """Drop events older than their group's retention (``PutRetentionPolicy``)."""
        with self._lock:
            rules = [(e, g.name, g.retention_days) for (e, _), g in self._groups.items() if g.retention_days]
        if not rules:
            return
        now = datetime.now(timezone.utc).replace(tzinfo=None)

        def run(db: duckdb.DuckDBPyConnection) -> None:
            for env, name, days in rules:
                db.execute("DELETE FROM logs WHERE _env = ? AND log_group = ? AND \"timestamp\" < ? - to_days(?)",
                           [env, name, now, days])

        await self._op(run, lambda: None)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._writer.close()
        self._db.close()


def _stream_stats(incoming: pa.Table) -> dict[tuple[str, str, str], tuple[int, int, int, int]]:
    """(env, group, stream) -> (first ms, last ms, last ingestion ms, bytes) of the rows being committed."""
    t = pa.table({
        "_env": incoming.column("_env"), "g": incoming.column("log_group"), "s": incoming.column("log_stream"),
        "ts": pc.cast(incoming.column("timestamp"), pa.int64()),
        "it": pc.cast(incoming.column("ingestion_time"), pa.int64()),
        "b": pc.binary_length(pc.cast(incoming.column("message"), pa.binary())),
    })
    agg = t.group_by(["_env", "g", "s"]).aggregate([("ts", "min"), ("ts", "max"), ("it", "max"), ("b", "sum")])
    out = {}
    for r in agg.to_pylist():
        out[(r["_env"], r["g"], r["s"])] = (r["ts_min"] // 1000, r["ts_max"] // 1000, r["it_max"] // 1000,
                                            int(r["b_sum"] or 0))
    return out
