"""What both log stores share: the catalogue in memory, the group-commit writer, and the reads.

A backend (``duckdb/logs.py``, ``clickhouse/logs.py``) supplies three things:
loading its catalogue at start-up, persisting one commit group (catalogue
changes, appended events, the streams' new statistics), and running SQL.
Everything else is written once, here, with the SQL spelled through the
store's `LogDialect`:

* Every write -- appended events, but also creating or deleting a group or
  a stream, or trimming by retention -- goes through one writer thread, so a
  store never sees two writers touching the same catalogue rows, and a
  burst of small ``PutLogEvents`` shares one commit. A write is acknowledged
  only once ``_persist`` returned.
* The catalogue (groups and streams with their statistics) is also held in
  memory, changed only after a commit succeeded, so ``Describe*`` and the
  existence checks of every ``PutLogEvents`` do not touch the database. It is
  indexed the way it is listed: each environment's group names sorted (a page
  of DescribeLogGroups is a bisection and a slice) and each group's streams
  apart (a group's size sums its own streams), so listing one page costs the
  page, not every group times every stream.
* A log group's tags (TagResource, CreateLogGroup's ``tags``) are one JSON object per group in
  ``log_group_tags``, replaced whole by each change and dropped with the group; `retag` reads,
  changes and writes them under one lock, so two tag calls on a group never lose each other's keys.
* Each event gets a ``seq``: a store-wide counter assigned at commit. The
  pair (``timestamp``, ``seq``) orders events totally; paging tokens are
  positions in that order, so a page never splits or repeats events that
  share a millisecond.
"""

from __future__ import annotations

import abc
import asyncio
import bisect
import json
import threading
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Mapping, Sequence, Union

import pyarrow as pa
import pyarrow.compute as pc

from apiary.model.log import LogBatch
from apiary.query.dialects.logs import log_dialect_for
from apiary.query.filter_pattern import MessageFilter, render
from apiary.store.base import LogGroup, LogStream, StoreUnavailable
from apiary.store.group_commit import GroupCommitter
from apiary.store.lookup_tables import LookupTable, Parsed, from_row

StreamKey = tuple[str, str, str]  # (env, group, stream)
_TS = '"timestamp"'


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class Change:
    """A catalogue change or a deletion, run by the backend inside the commit group, then applied to memory.

    ``kind`` is one of ``create_group`` (``value``: created ms), ``create_stream`` (created ms),
    ``delete_group``, ``delete_stream``, ``retention`` (days or None), ``expire`` (``value``: a list of
    (env, group, cutoff)), ``older_than`` (``value``: a cutoff), ``put_lookup`` (``group``: the lookup
    table's name; ``value``: (`LookupTable`, its CSV, its `Parsed` records)), ``delete_lookup``,
    ``lookup_tags`` (``group``: the lookup table's name; ``value``: the `LookupTable` with its new tags), ``tags``
    (``tags``: the group's whole new set, empty to drop it). ``create_group`` may carry ``tags`` too, so a
    group created with tags never exists without them. Deletions set ``removed``.
    """

    kind: str
    env: str = ""
    group: str = ""
    stream: str = ""
    value: Any = None
    removed: int = 0
    tags: dict[str, str] | None = None


@dataclass
class _Append:
    env: str
    batch: LogBatch


_Item = Union[_Append, Change]


@dataclass
class Incoming:
    """One commit group's events (``_env``, ``seq`` and the `LOG_SCHEMA` columns) and its streams' new statistics."""

    events: pa.Table | None
    streams: dict[StreamKey, LogStream] = field(default_factory=dict)


class LogStoreBase(abc.ABC):
    """Implements `apiary.store.base.LogStore` given ``_load``, ``_persist`` and ``query`` of a backend."""

    dialect = "duckdb"

    def __init__(self, *, max_pending_rows: int = 400_000) -> None:
        self._sql = log_dialect_for(self.dialect)
        self._lock = threading.Lock()
        self._groups: dict[tuple[str, str], LogGroup] = {}
        self._streams: dict[StreamKey, LogStream] = {}
        self._next_seq = self._load(self._groups, self._streams)
        #: Indexes of the two dicts above, changed with them (`_index_group`, `_index_stream`).
        self._names: dict[str, list[str]] = {}
        self._by_group: dict[tuple[str, str], dict[str, LogStream]] = {}
        for env, name in self._groups:
            self._names.setdefault(env, []).append(name)
        for names in self._names.values():
            names.sort()
        for (env, group, name), stream in self._streams.items():
            self._by_group.setdefault((env, group), {})[name] = stream
        self._lookups: dict[tuple[str, str], LookupTable] = {
            (r["_env"], r["name"]): from_row(r) for r in self.query(
                "SELECT _env, name, description, fields, records, size_bytes, updated_ms, tags "
                "FROM lookup_tables").to_pylist()}
        self._tags: dict[tuple[str, str], dict[str, str]] = {
            (r["_env"], r["log_group"]): decode_tags(r["tags"]) for r in self.query(self._TAGS_SQL).to_pylist()}
        self._tag_lock = asyncio.Lock()
        self._writer: GroupCommitter[_Item] = GroupCommitter(self._commit, max_pending_rows=max_pending_rows,
                                                             name=f"apiary-{self.dialect}-log-writer")
        self._closed = False

    # -- what a backend supplies ------------------------------------------------------------------

    #: The statement that reads every stored group's tags (``_env``, ``log_group``, ``tags``) at start-up.
    _TAGS_SQL = "SELECT _env, log_group, tags FROM log_group_tags"

    @abc.abstractmethod
    def _load(self, groups: dict[tuple[str, str], LogGroup], streams: dict[StreamKey, LogStream]) -> int:
        """Fill the catalogue from the database; return the next ``seq``."""

    @abc.abstractmethod
    def _persist(self, changes: list[Change], incoming: Incoming) -> None:
        """Make one commit group durable, as atomically as the database allows; raise to refuse all of it."""

    @abc.abstractmethod
    def query(self, sql: str, params: Sequence[Any] = ()) -> pa.Table:
        """Run a read statement of this store's dialect (from `apiary.query`), values as parameters."""

    @abc.abstractmethod
    def _close_backend(self) -> None:
        """Close the backend's connection, once the writer has committed its last group."""

    # -- catalogue (memory) -----------------------------------------------------------------------

    def _sized(self, env: str, name: str) -> LogGroup | None:
        """The group with its stored bytes, the sum of its own streams' (``_lock`` held)."""
        g = self._groups.get((env, name))
        if g is None:
            return None
        return replace(g, stored_bytes=sum(s.stored_bytes for s in self._by_group.get((env, name), {}).values()))

    def group(self, env: str, name: str) -> LogGroup | None:
        with self._lock:
            return self._sized(env, name)

    def groups(self, env: str, prefix: str = "", *, after: str = "", limit: int | None = None,
               keep: Callable[[str], bool] | None = None) -> list[LogGroup]:
        with self._lock:
            names = self._names.get(env, [])
            start = bisect.bisect_right(names, after) if after >= prefix else bisect.bisect_left(names, prefix)
            candidates = names[start:]  # a snapshot: ``keep`` runs without the lock (it may read tags)
        out: list[LogGroup] = []
        for name in candidates:
            if not name.startswith(prefix) or (limit is not None and len(out) >= limit):
                break
            if keep is not None and not keep(name):
                continue
            with self._lock:
                g = self._sized(env, name)
            if g is not None:
                out.append(g)
        return out

    def stream(self, env: str, group: str, name: str) -> LogStream | None:
        with self._lock:
            return self._streams.get((env, group, name))

    def streams(self, env: str, group: str, prefix: str = "") -> list[LogStream]:
        with self._lock:
            found = [s for n, s in self._by_group.get((env, group), {}).items() if n.startswith(prefix)]
        return sorted(found, key=lambda s: s.name)

    def _index_group(self, env: str, name: str, present: bool) -> None:
        """Keep ``_names`` sorted as a group comes or goes (``_lock`` held)."""
        names = self._names.setdefault(env, [])
        at = bisect.bisect_left(names, name)
        found = at < len(names) and names[at] == name
        if present and not found:
            names.insert(at, name)
        elif not present and found:
            del names[at]

    def _index_stream(self, key: StreamKey, stream: LogStream | None) -> None:
        """Set (or, with None, drop) a stream in ``_streams`` and in its group's index (``_lock`` held)."""
        env, group, name = key
        if stream is None:
            self._streams.pop(key, None)
            self._by_group.get((env, group), {}).pop(name, None)
        else:
            self._streams[key] = stream
            self._by_group.setdefault((env, group), {})[name] = stream

    # -- catalogue (writes) -----------------------------------------------------------------------

    async def _change(self, change: Change) -> Change:
        if self._closed:
            raise StoreUnavailable("store is closed")
        await self._writer.submit(change, 1)
        return change

    async def create_group(self, env: str, name: str, tags: Mapping[str, str] | None = None) -> bool:
        if self.group(env, name) is not None:
            return False
        await self._change(Change("create_group", env, name, value=now_ms(), tags=dict(tags) if tags else None))
        return True

    async def create_stream(self, env: str, group: str, name: str) -> bool:
        if self.stream(env, group, name) is not None:
            return False
        await self._change(Change("create_stream", env, group, name, value=now_ms()))
        return True

    async def ensure_stream(self, env: str, group: str, name: str) -> None:
        """Create the group and stream when missing (for receivers with no create call, like OTLP)."""
        if self.group(env, group) is None:
            await self.create_group(env, group)
        if self.stream(env, group, name) is None:
            await self.create_stream(env, group, name)

    async def delete_group(self, env: str, name: str) -> None:
        async with self._tag_lock:  # its tags go with it (`retag`)
            await self._change(Change("delete_group", env, name))

    async def delete_stream(self, env: str, group: str, name: str) -> None:
        await self._change(Change("delete_stream", env, group, name))

    async def put_retention(self, env: str, group: str, days: int | None) -> None:
        await self._change(Change("retention", env, group, value=days))

    # -- tags -------------------------------------------------------------------------------------

    def tags(self, env: str, group: str) -> dict[str, str]:
        with self._lock:
            return dict(self._tags.get((env, group), {}))

    async def retag(self, env: str, group: str,
                    change: Callable[[dict[str, str]], dict[str, str]]) -> dict[str, str] | None:
        """The group's tags after ``change`` (given the current ones; it may raise to refuse), committed; None
        when there is no such group.

        One tag call (or group deletion) at a time: the read, the change and the write see no other in between,
        and tags are never written for a group deleted meanwhile.
        """
        async with self._tag_lock:
            if self.group(env, group) is None:
                return None
            new = change(self.tags(env, group))
            await self._change(Change("tags", env, group, tags=new))
        return new

    # -- lookup tables ----------------------------------------------------------------------------

    def lookup_table(self, env: str, name: str) -> LookupTable | None:
        with self._lock:
            return self._lookups.get((env, name))

    def lookup_tables(self, env: str, prefix: str = "") -> list[LookupTable]:
        with self._lock:
            found = [t for (e, n), t in self._lookups.items() if e == env and n.startswith(prefix)]
        return sorted(found, key=lambda t: t.name)

    async def put_lookup_table(self, env: str, table: LookupTable, body: str, parsed: Parsed,
                               keep_tags: bool = False) -> None:
        """Create or wholly replace ``table``: its CSV and records, in one commit. With ``keep_tags`` (a replacement,
        UpdateLookupTable) the table keeps the tags it has when the change is made, whatever ``table`` carries."""
        async with self._tag_lock:
            current = self.lookup_table(env, table.name) if keep_tags else None
            if current is not None:
                table = replace(table, tags=dict(current.tags))
            await self._change(Change("put_lookup", env, table.name, value=(table, body, parsed)))

    async def delete_lookup_table(self, env: str, name: str) -> None:
        async with self._tag_lock:  # its tags go with it (`retag_lookup_table`)
            await self._change(Change("delete_lookup", env, name))

    async def retag_lookup_table(self, env: str, name: str,
                                 change: Callable[[dict[str, str]], dict[str, str]]) -> dict[str, str] | None:
        """As `retag`, for a lookup table: its tags after ``change``, committed; None when there is no such table."""
        async with self._tag_lock:
            table = self.lookup_table(env, name)
            if table is None:
                return None
            new = change(dict(table.tags))
            await self._change(Change("lookup_tags", env, name, value=replace(table, tags=new)))
        return new

    def lookup_table_body(self, env: str, name: str) -> str | None:
        """The CSV of a table as it was uploaded (GetLookupTable)."""
        sql, params = self._sql.bind("SELECT body FROM lookup_tables WHERE _env = ? AND name = ?", [env, name])
        found = self.query(sql, params).to_pylist()
        return found[0]["body"] if found else None

    def _apply(self, c: Change) -> None:
        """A committed change, in memory (the writer thread holds ``_lock``)."""
        if c.kind == "put_lookup":
            self._lookups[(c.env, c.group)] = c.value[0]
        elif c.kind == "lookup_tags":
            self._lookups[(c.env, c.group)] = c.value
        elif c.kind == "delete_lookup":
            self._lookups.pop((c.env, c.group), None)
        elif c.kind == "create_group":
            self._groups.setdefault((c.env, c.group), LogGroup(c.group, c.value))
            self._index_group(c.env, c.group, True)
            if c.tags:
                self._tags[(c.env, c.group)] = dict(c.tags)
        elif c.kind == "tags":
            if c.tags:
                self._tags[(c.env, c.group)] = dict(c.tags)
            else:
                self._tags.pop((c.env, c.group), None)
        elif c.kind == "create_stream":
            if (c.env, c.group, c.stream) not in self._streams:
                self._index_stream((c.env, c.group, c.stream), LogStream(c.group, c.stream, c.value))
        elif c.kind == "delete_group":
            self._groups.pop((c.env, c.group), None)
            self._index_group(c.env, c.group, False)
            self._tags.pop((c.env, c.group), None)
            for name in list(self._by_group.pop((c.env, c.group), {})):
                self._streams.pop((c.env, c.group, name), None)
        elif c.kind == "delete_stream":
            self._index_stream((c.env, c.group, c.stream), None)
        elif c.kind == "retention":
            g = self._groups.get((c.env, c.group))
            if g is not None:
                self._groups[(c.env, c.group)] = replace(g, retention_days=c.value)

    # -- events -----------------------------------------------------------------------------------

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

    def _commit(self, items: list[_Item]) -> None:
        appends = [i for i in items if isinstance(i, _Append)]
        changes = [i for i in items if isinstance(i, Change)]
        seq = self._next_seq
        incoming = Incoming(None)
        if appends:
            tables = []
            for a in appends:
                t = a.batch.table
                n = t.num_rows
                t = t.add_column(0, "seq", pa.array(range(seq, seq + n), pa.int64()))
                t = t.add_column(0, "_env", pa.array([a.env] * n, pa.string()))
                tables.append(t)
                seq += n
            incoming.events = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
            with self._lock:
                incoming.streams = {k: self._merged(k, v) for k, v in _stream_stats(incoming.events).items()}
        self._persist(changes, incoming)
        self._next_seq = seq
        with self._lock:
            for c in changes:
                self._apply(c)
            for k, s in incoming.streams.items():
                if k in self._streams:
                    self._index_stream(k, s)

    def _merged(self, key: StreamKey, st: tuple[int, int, int, int]) -> LogStream:
        first, last, ingest, size = st
        s = self._streams.get(key) or LogStream(key[1], key[2], now_ms())
        return replace(s, first_event_ms=first if s.first_event_ms is None else min(first, s.first_event_ms),
                       last_event_ms=last if s.last_event_ms is None else max(last, s.last_event_ms),
                       last_ingestion_ms=max(ingest, s.last_ingestion_ms or 0), stored_bytes=s.stored_bytes + size)

    # -- reading ----------------------------------------------------------------------------------

    def _where_streams(self, streams: Sequence[str] | None, sql: list[str], params: list[Any]) -> None:
        if streams is not None:
            sql.append("AND " + self._sql.in_array("?", "log_stream"))
            params.append(list(streams))

    def _where_filter(self, message_filter: MessageFilter | None, sql: list[str], params: list[Any]) -> None:
        if message_filter is not None and not message_filter.empty:
            cond, values = render(message_filter, self._sql)
            sql.append(f"AND ({cond})")
            params += values

    def _columns(self, detail: bool) -> str:
        d = self._sql
        cols = (f"seq, {d.epoch_us(_TS)} AS timestamp_us, {d.epoch_ms('ingestion_time')} AS ingestion_ms, "
                "log_stream, message")
        return cols + (", trace_id, span_id, severity_text" if detail else "")

    def _run(self, sql: list[str] | str, params: list[Any]) -> pa.Table:
        text = sql if isinstance(sql, str) else " ".join(sql)
        return self.query(*self._sql.bind(text, params))

    def events(self, env: str, group: str, streams: Sequence[str] | None = None, *, start_ms: int | None = None,
               end_ms: int | None = None, after: tuple[int, int] | None = None,
               before: tuple[int, int] | None = None, descending: bool = False, limit: int = 10_000,
               message_filter: MessageFilter | None = None, detail: bool = False) -> pa.Table:
        ts, at = '"timestamp"', self._sql.from_epoch_us("?")
        sql = [f"SELECT {self._columns(detail)} FROM logs WHERE _env = ? AND log_group = ?"]
        params: list[Any] = [env, group]
        self._where_streams(streams, sql, params)
        if start_ms is not None:
            sql.append(f"AND {ts} >= {at}")
            params.append(start_ms * 1000)
        if end_ms is not None:
            sql.append(f"AND {ts} < {at}")
            params.append(end_ms * 1000)
        if after is not None:
            sql.append(f"AND ({ts} > {at} OR ({ts} = {at} AND seq > ?))")
            params += [after[0], after[0], after[1]]
        if before is not None:
            sql.append(f"AND ({ts} < {at} OR ({ts} = {at} AND seq < ?))")
            params += [before[0], before[0], before[1]]
        self._where_filter(message_filter, sql, params)
        order = "DESC" if descending else "ASC"
        sql.append(f"ORDER BY {ts} {order}, seq {order} LIMIT ?")
        params.append(limit)
        return self._run(sql, params)

    def events_after_seq(self, env: str, group: str, streams: Sequence[str] | None, after_seq: int, limit: int,
                         message_filter: MessageFilter | None = None) -> pa.Table:
        sql = [f"SELECT {self._columns(True)} FROM logs WHERE _env = ? AND log_group = ? AND seq > ?"]
        params: list[Any] = [env, group, after_seq]
        self._where_streams(streams, sql, params)
        self._where_filter(message_filter, sql, params)
        sql.append("ORDER BY seq LIMIT ?")
        params.append(limit)
        return self._run(sql, params)

    def max_seq(self, env: str, group: str) -> int:
        t = self._run("SELECT max(seq) AS top FROM logs WHERE _env = ? AND log_group = ?", [env, group])
        return int(t.column(0)[0].as_py() or 0)

    def event_counts(self, env: str) -> dict[tuple[str, str], int]:
        rows = self._run("SELECT log_group, log_stream, count(*) AS n FROM logs WHERE _env = ? GROUP BY 1, 2",
                         [env]).to_pylist()
        return {(r["log_group"], r["log_stream"]): int(r["n"]) for r in rows}

    def trace_logs(self, env: str, trace_id: str, limit: int = 1000) -> pa.Table:
        """Log lines of one trace, oldest first (for the trace view)."""
        return self._run('SELECT "timestamp", log_group, log_stream, message, severity_text, span_id, source '
                         'FROM logs WHERE _env = ? AND trace_id = ? ORDER BY "timestamp", seq LIMIT ?',
                         [env, trace_id, limit])

    def count(self, env: str | None = None) -> int:
        if env is None:
            return int(self._run("SELECT count(*) AS n FROM logs", []).column(0)[0].as_py())
        return int(self._run("SELECT count(*) AS n FROM logs WHERE _env = ?", [env]).column(0)[0].as_py())

    # -- upkeep -----------------------------------------------------------------------------------

    async def delete_expired(self, now: datetime | None = None) -> int:
        """Drop events older than their group's retention (``PutRetentionPolicy``), as CloudWatch expires them."""
        at = (now or datetime.now(timezone.utc)).astimezone(timezone.utc).replace(tzinfo=None)
        with self._lock:
            rules = [(e, g.name, at - timedelta(days=g.retention_days))
                     for (e, _), g in self._groups.items() if g.retention_days]
        if not rules:
            return 0
        return (await self._change(Change("expire", value=rules))).removed

    async def delete_older_than(self, cutoff: datetime) -> int:
        at = cutoff.astimezone(timezone.utc).replace(tzinfo=None) if cutoff.tzinfo else cutoff
        return (await self._change(Change("older_than", value=at))).removed

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._writer.close()
        self._close_backend()


def encode_tags(tags: Mapping[str, str]) -> str:
    """A group's tags as the JSON text both stores keep (keys sorted, so equal sets are equal text)."""
    return json.dumps(dict(tags), sort_keys=True, ensure_ascii=False)


def decode_tags(text: str | None) -> dict[str, str]:
    return dict(json.loads(text)) if text else {}


def _stream_stats(incoming: pa.Table) -> dict[StreamKey, tuple[int, int, int, int]]:
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
