"""The scale-out log store: log events, groups and streams in the span store's ClickHouse database.

* ``logs``: MergeTree, ``PARTITION BY toDate(timestamp)``, ``ORDER BY (_env,
  log_group, timestamp, seq)`` -- every read is "one group of one
  environment over a time range, in (timestamp, seq) order", which that key
  answers from the granules of that group and range; retention drops rows
  by the same key.
* ``log_groups``, ``log_streams`` and ``log_group_tags``: ReplacingMergeTree on a version
  column. A change inserts a new version of the row (a deletion a version
  marked ``deleted``); start-up reads the latest versions (``FINAL``). The
  catalogue is also held in memory (`LogStoreBase`).

Acknowledgement follows the span store's rule: one commit group is one
``INSERT`` of its events, acknowledged after ClickHouse wrote the part
(``fsync_after_insert``); catalogue rows go first, so a failure before the
events insert leaves at most a catalogue row, never an event the catalogue
does not know. ClickHouse has no multi-statement transactions: the streams'
statistics are written after the events, and a failure between the two
leaves statistics a commit behind (they are display figures, not data).

``seq`` is assigned by this process (the highest stored seq + 1 at
start-up), so one Apiary node writes a database's logs; several nodes
would need a seq range per node.
"""

from __future__ import annotations

import itertools
import time
from typing import Any, Sequence

import pyarrow as pa

from apiary.model.log import LOG_FIELDS
from apiary.query.dialects.logs import ClickHouseLogDialect
from apiary.store.base import LogGroup, LogStream
from apiary.store.clickhouse.client import Client, quote
from apiary.store.log_store import Change, Incoming, LogStoreBase, StreamKey, encode_tags
from apiary.store.lookup_tables import TABLES_SCHEMA, record_rows, table_row

TS = "DateTime64(6, 'UTC')"
_LOW_CARDINALITY = {"log_group", "log_stream", "severity_text", "source"}


def _column_sql(f: pa.Field) -> str:
    if pa.types.is_timestamp(f.type):
        return TS
    if f.name in ("log_group", "log_stream"):
        return "LowCardinality(String)"
    if f.name == "message":
        return "String"
    base = "Int32" if f.type == pa.int32() else "String"
    return f"LowCardinality(Nullable({base}))" if f.name in _LOW_CARDINALITY else f"Nullable({base})"


class ClickHouseLogStore(LogStoreBase):
    dialect = "clickhouse"
    _TAGS_SQL = "SELECT _env, log_group, tags FROM log_group_tags FINAL WHERE deleted = 0"

    def __init__(self, client: Client, *, max_pending_rows: int = 400_000, fsync: bool = True) -> None:
        self.client = client
        self._bind = ClickHouseLogDialect().bind
        self._versions = itertools.count(time.time_ns())
        self._create_schema(fsync)
        super().__init__(max_pending_rows=max_pending_rows)

    def _create_schema(self, fsync: bool) -> None:
        c = self.client
        cols = ["_env LowCardinality(String)", "seq Int64"] + [f"{quote(f.name)} {_column_sql(f)}" for f in LOG_FIELDS]
        durable = f"fsync_after_insert = {int(fsync)}, fsync_part_directory = {int(fsync)}"
        c.command(f"""CREATE TABLE IF NOT EXISTS logs ({', '.join(cols)})
                      ENGINE = MergeTree PARTITION BY toDate(`timestamp`) ORDER BY (_env, log_group, `timestamp`, seq)
                      SETTINGS {durable}""")
        c.command(f"""CREATE TABLE IF NOT EXISTS log_groups (_env String, name String, created_ms Int64,
                      retention_days Nullable(Int32), deleted UInt8, version UInt64)
                      ENGINE = ReplacingMergeTree(version) ORDER BY (_env, name) SETTINGS {durable}""")
        c.command(f"""CREATE TABLE IF NOT EXISTS log_streams (_env String, log_group String, name String,
                      created_ms Int64, first_event_ms Nullable(Int64), last_event_ms Nullable(Int64),
                      last_ingestion_ms Nullable(Int64), stored_bytes Int64, deleted UInt8, version UInt64)
                      ENGINE = ReplacingMergeTree(version) ORDER BY (_env, log_group, name) SETTINGS {durable}""")
        # Lookup tables are replaced whole (delete, then insert), as rarely as a user uploads one.
        c.command(f"""CREATE TABLE IF NOT EXISTS lookup_tables (_env String, name String, description String,
                      fields String, records Int64, size_bytes Int64, updated_ms Int64, body String)
                      ENGINE = MergeTree ORDER BY (_env, name) SETTINGS {durable}""")
        # Tags came after the first lookup tables: a database written before them gains the column, empty.
        c.command("ALTER TABLE lookup_tables ADD COLUMN IF NOT EXISTS tags String DEFAULT '{}'")
        c.command(f"""CREATE TABLE IF NOT EXISTS log_group_tags (_env String, log_group String, tags String,
                      deleted UInt8, version UInt64)
                      ENGINE = ReplacingMergeTree(version) ORDER BY (_env, log_group) SETTINGS {durable}""")
        c.command(f"""CREATE TABLE IF NOT EXISTS lookup_rows (_env String, lookup_table String, row_no Int64,
                      row String) ENGINE = MergeTree ORDER BY (_env, lookup_table, row_no) SETTINGS {durable}""")

    def _load(self, groups: dict[tuple[str, str], LogGroup], streams: dict[StreamKey, LogStream]) -> int:
        for r in self.client.query_arrow("SELECT _env, name, created_ms, retention_days FROM log_groups FINAL "
                                         "WHERE deleted = 0").to_pylist():
            groups[(r["_env"], r["name"])] = LogGroup(r["name"], r["created_ms"], r["retention_days"])
        for r in self.client.query_arrow("SELECT _env, log_group, name, created_ms, first_event_ms, last_event_ms, "
                                         "last_ingestion_ms, stored_bytes FROM log_streams FINAL "
                                         "WHERE deleted = 0").to_pylist():
            streams[(r["_env"], r["log_group"], r["name"])] = LogStream(
                r["log_group"], r["name"], r["created_ms"], r["first_event_ms"], r["last_event_ms"],
                r["last_ingestion_ms"], r["stored_bytes"] or 0)
        top = self.client.query_arrow("SELECT max(seq) AS top FROM logs").column(0)[0].as_py()
        return (top or 0) + 1

    # -- writing ----------------------------------------------------------------------------------

    def _group_row(self, env: str, g: LogGroup, deleted: bool = False) -> dict[str, Any]:
        return {"_env": env, "name": g.name, "created_ms": g.created_ms, "retention_days": g.retention_days,
                "deleted": int(deleted), "version": next(self._versions)}

    def _stream_row(self, env: str, s: LogStream, deleted: bool = False) -> dict[str, Any]:
        return {"_env": env, "log_group": s.log_group, "name": s.name, "created_ms": s.created_ms,
                "first_event_ms": s.first_event_ms, "last_event_ms": s.last_event_ms,
                "last_ingestion_ms": s.last_ingestion_ms, "stored_bytes": s.stored_bytes, "deleted": int(deleted),
                "version": next(self._versions)}

    def _tags_row(self, env: str, group: str, tags: dict[str, str] | None) -> dict[str, Any]:
        """A new version of a group's tags; none marks the row deleted."""
        return {"_env": env, "log_group": group, "tags": encode_tags(tags or {}), "deleted": int(not tags),
                "version": next(self._versions)}

    def _delete(self, where: str, params: list[Any], table: str = "logs") -> int:
        sql, bound = self._bind(f"SELECT count() AS n FROM {table} WHERE {where}", params)
        n = int(self.query(sql, bound).column(0)[0].as_py())
        if n:
            sql, bound = self._bind(f"DELETE FROM {table} WHERE {where}", params)
            self.client.command(sql, {f"p{i + 1}": v for i, v in enumerate(bound)})
        return n

    def _persist(self, changes: list[Change], incoming: Incoming) -> None:
        groups: list[dict[str, Any]] = []
        streams: list[dict[str, Any]] = []
        tags: list[dict[str, Any]] = []
        with self._lock:
            known_groups, known_streams = dict(self._groups), dict(self._streams)
        for c in changes:
            if c.kind == "create_group":
                groups.append(self._group_row(c.env, LogGroup(c.group, c.value)))
                if c.tags:
                    tags.append(self._tags_row(c.env, c.group, c.tags))
            elif c.kind == "tags":
                tags.append(self._tags_row(c.env, c.group, c.tags))
            elif c.kind == "create_stream":
                streams.append(self._stream_row(c.env, LogStream(c.group, c.stream, c.value)))
            elif c.kind == "retention":
                g = known_groups.get((c.env, c.group))
                if g is not None:
                    groups.append(self._group_row(c.env, LogGroup(g.name, g.created_ms, c.value)))
            elif c.kind == "delete_group":
                self._delete("_env = ? AND log_group = ?", [c.env, c.group])
                g = known_groups.get((c.env, c.group))
                if g is not None:
                    groups.append(self._group_row(c.env, g, deleted=True))
                tags.append(self._tags_row(c.env, c.group, None))
                streams += [self._stream_row(c.env, s, deleted=True) for (e, gn, _), s in known_streams.items()
                            if e == c.env and gn == c.group]
            elif c.kind == "delete_stream":
                self._delete("_env = ? AND log_group = ? AND log_stream = ?", [c.env, c.group, c.stream])
                s = known_streams.get((c.env, c.group, c.stream))
                if s is not None:
                    streams.append(self._stream_row(c.env, s, deleted=True))
            elif c.kind == "expire":
                for env, group, cutoff in c.value:
                    c.removed += self._delete('_env = ? AND log_group = ? AND "timestamp" < ?', [env, group, cutoff])
            elif c.kind == "older_than":
                c.removed = self._delete('"timestamp" < ?', [c.value])
            elif c.kind == "lookup_tags":  # the table's row again, with its new tags; its records stay
                sql, bound = self._bind("SELECT body FROM lookup_tables WHERE _env = ? AND name = ?", [c.env, c.group])
                body = self.query(sql, bound).column(0)[0].as_py()
                self._delete("_env = ? AND name = ?", [c.env, c.group], "lookup_tables")
                self.client.insert_arrow("lookup_tables", pa.Table.from_pylist([table_row(c.env, c.value, body)],
                                                                               schema=TABLES_SCHEMA))
            elif c.kind in ("put_lookup", "delete_lookup"):
                self._delete("_env = ? AND lookup_table = ?", [c.env, c.group], "lookup_rows")
                self._delete("_env = ? AND name = ?", [c.env, c.group], "lookup_tables")
                if c.kind == "put_lookup":
                    table, body, parsed = c.value
                    self.client.insert_arrow("lookup_tables", pa.Table.from_pylist([table_row(c.env, table, body)],
                                                                                   schema=TABLES_SCHEMA))
                    if parsed.rows:
                        self.client.insert_arrow("lookup_rows", record_rows(c.env, table.name, parsed.rows))
            else:
                raise ValueError(f"unknown log store change {c.kind!r}")
        if groups:
            self.client.insert_arrow("log_groups", pa.Table.from_pylist(groups, schema=_GROUPS))
        if streams:
            self.client.insert_arrow("log_streams", pa.Table.from_pylist(streams, schema=_STREAMS))
        if tags:
            self.client.insert_arrow("log_group_tags", pa.Table.from_pylist(tags, schema=_TAGS))
        if incoming.events is not None:
            self.client.insert_arrow("logs", incoming.events, settings={"max_partitions_per_insert_block": 1000})
            rows = [self._stream_row(k[0], s) for k, s in incoming.streams.items()]
            self.client.insert_arrow("log_streams", pa.Table.from_pylist(rows, schema=_STREAMS))

    # -- reading ----------------------------------------------------------------------------------

    def query(self, sql: str, params: Sequence[Any] = ()) -> pa.Table:
        """SQL bound by `ClickHouseLogDialect` (``{pN:Type}``), its values in order."""
        return self.client.query_arrow(sql, {f"p{i + 1}": v for i, v in enumerate(params)})

    def _close_backend(self) -> None:
        """The client belongs to the span store, which closes it."""


_GROUPS = pa.schema([("_env", pa.string()), ("name", pa.string()), ("created_ms", pa.int64()),
                     ("retention_days", pa.int32()), ("deleted", pa.uint8()), ("version", pa.uint64())])
_TAGS = pa.schema([("_env", pa.string()), ("log_group", pa.string()), ("tags", pa.string()),
                   ("deleted", pa.uint8()), ("version", pa.uint64())])
_STREAMS = pa.schema([("_env", pa.string()), ("log_group", pa.string()), ("name", pa.string()),
                      ("created_ms", pa.int64()), ("first_event_ms", pa.int64()), ("last_event_ms", pa.int64()),
                      ("last_ingestion_ms", pa.int64()), ("stored_bytes", pa.int64()), ("deleted", pa.uint8()),
                      ("version", pa.uint64())])
