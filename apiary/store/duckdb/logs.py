"""The embedded log store: tables ``logs``, ``log_groups``, ``log_streams`` in the span store's DuckDB file.

One file keeps a trace and its log lines in one database, so the trace view
joins them without a second store to open. The log store has its own
connection (a cursor of the span store's database) and its own group-commit
writer thread (`LogStoreBase`): a ``PutLogEvents`` is acknowledged only once
its transaction committed, and a catalogue change commits in the same
transaction as the events beside it, or not at all.
"""

from __future__ import annotations


import duckdb
import pyarrow as pa

from apiary.model.log import LOG_FIELDS
from apiary.store.base import LogGroup, LogStream
from apiary.store.duckdb.backend import SpanFileBackend, deleted
from apiary.store.duckdb.store import DuckDBStore
from apiary.store.duckdb.transactions import rollback
from apiary.store.log_store import Change, Incoming, LogStoreBase, StreamKey, encode_tags, now_ms
from apiary.store.lookup_tables import record_rows, table_row

_SQL = {pa.string(): "VARCHAR", pa.int32(): "INTEGER"}

__all__ = ["DuckDBLogStore", "LogGroup", "LogStream", "now_ms"]


def _sql_type(f: pa.Field) -> str:
    return "TIMESTAMP" if pa.types.is_timestamp(f.type) else _SQL[f.type]


class DuckDBLogStore(SpanFileBackend, LogStoreBase):
    dialect = "duckdb"

    def __init__(self, spans: DuckDBStore, *, max_pending_rows: int = 400_000) -> None:
        self._open(spans)
        self._create_schema()
        super().__init__(max_pending_rows=max_pending_rows)

    def _create_schema(self) -> None:
        cols = ["_env VARCHAR", "seq BIGINT"] + [f'"{f.name}" {_sql_type(f)}' for f in LOG_FIELDS]
        db = self._db
        db.execute(f"CREATE TABLE IF NOT EXISTS logs ({', '.join(cols)})")
        db.execute("""CREATE TABLE IF NOT EXISTS log_groups (_env VARCHAR, name VARCHAR, created_ms BIGINT,
                      retention_days INTEGER, PRIMARY KEY (_env, name))""")
        db.execute("""CREATE TABLE IF NOT EXISTS log_streams (_env VARCHAR, log_group VARCHAR, name VARCHAR,
                      created_ms BIGINT, first_event_ms BIGINT, last_event_ms BIGINT, last_ingestion_ms BIGINT,
                      stored_bytes BIGINT, PRIMARY KEY (_env, log_group, name))""")
        db.execute("""CREATE TABLE IF NOT EXISTS lookup_tables (_env VARCHAR, name VARCHAR, description VARCHAR,
                      fields VARCHAR, records BIGINT, size_bytes BIGINT, updated_ms BIGINT, body VARCHAR,
                      PRIMARY KEY (_env, name))""")
        # Tags came after the first lookup tables: a file written before them gains the column, empty.
        db.execute("ALTER TABLE lookup_tables ADD COLUMN IF NOT EXISTS tags VARCHAR DEFAULT '{}'")
        db.execute("CREATE TABLE IF NOT EXISTS lookup_rows (_env VARCHAR, lookup_table VARCHAR, row_no BIGINT, "
                   "row VARCHAR)")
        db.execute("""CREATE TABLE IF NOT EXISTS log_group_tags (_env VARCHAR, log_group VARCHAR, tags VARCHAR,
                      PRIMARY KEY (_env, log_group))""")

    def _load(self, groups: dict[tuple[str, str], LogGroup], streams: dict[StreamKey, LogStream]) -> int:
        db = self._db
        for env, name, created, retention in db.execute(
                "SELECT _env, name, created_ms, retention_days FROM log_groups").fetchall():
            groups[(env, name)] = LogGroup(name, created, retention)
        for env, grp, name, created, first, last, ingest, size in db.execute(
                "SELECT * FROM log_streams").fetchall():
            streams[(env, grp, name)] = LogStream(grp, name, created, first, last, ingest, size or 0)
        return (db.execute("SELECT max(seq) FROM logs").fetchall()[0][0] or 0) + 1

    def _put_tags(self, db: duckdb.DuckDBPyConnection, c: Change) -> None:
        """The group's tags replaced whole by ``c.tags`` (none: the row goes)."""
        db.execute("DELETE FROM log_group_tags WHERE _env = ? AND log_group = ?", [c.env, c.group])
        if c.tags:
            db.execute("INSERT INTO log_group_tags VALUES (?, ?, ?)", [c.env, c.group, encode_tags(c.tags)])

    def _run_change(self, db: duckdb.DuckDBPyConnection, c: Change) -> None:
        if c.kind == "create_group":
            db.execute("INSERT OR IGNORE INTO log_groups VALUES (?, ?, ?, NULL)", [c.env, c.group, c.value])
            if c.tags:  # a group without tags costs no statement more (its deletion took any old row)
                self._put_tags(db, c)
        elif c.kind == "tags":
            self._put_tags(db, c)
        elif c.kind == "create_stream":
            db.execute("INSERT OR IGNORE INTO log_streams VALUES (?, ?, ?, ?, NULL, NULL, NULL, 0)",
                       [c.env, c.group, c.stream, c.value])
        elif c.kind == "delete_group":
            db.execute("DELETE FROM logs WHERE _env = ? AND log_group = ?", [c.env, c.group])
            db.execute("DELETE FROM log_streams WHERE _env = ? AND log_group = ?", [c.env, c.group])
            db.execute("DELETE FROM log_groups WHERE _env = ? AND name = ?", [c.env, c.group])
            db.execute("DELETE FROM log_group_tags WHERE _env = ? AND log_group = ?", [c.env, c.group])
        elif c.kind == "delete_stream":
            db.execute("DELETE FROM logs WHERE _env = ? AND log_group = ? AND log_stream = ?",
                       [c.env, c.group, c.stream])
            db.execute("DELETE FROM log_streams WHERE _env = ? AND log_group = ? AND name = ?",
                       [c.env, c.group, c.stream])
        elif c.kind == "retention":
            db.execute("UPDATE log_groups SET retention_days = ? WHERE _env = ? AND name = ?",
                       [c.value, c.env, c.group])
        elif c.kind == "expire":
            for env, group, cutoff in c.value:
                c.removed += deleted(db.execute('DELETE FROM logs WHERE _env = ? AND log_group = ? AND "timestamp" < ?',
                                                 [env, group, cutoff]))
        elif c.kind == "older_than":
            c.removed = deleted(db.execute('DELETE FROM logs WHERE "timestamp" < ?', [c.value]))
        elif c.kind == "lookup_tags":
            db.execute("UPDATE lookup_tables SET tags = ? WHERE _env = ? AND name = ?",
                       [table_row(c.env, c.value, "")["tags"], c.env, c.group])
        elif c.kind in ("put_lookup", "delete_lookup"):
            db.execute("DELETE FROM lookup_rows WHERE _env = ? AND lookup_table = ?", [c.env, c.group])
            db.execute("DELETE FROM lookup_tables WHERE _env = ? AND name = ?", [c.env, c.group])
            if c.kind == "put_lookup":
                table, body, parsed = c.value
                row = table_row(c.env, table, body)
                db.execute(f"INSERT INTO lookup_tables ({', '.join(row)}) VALUES ({', '.join('?' for _ in row)})",
                           list(row.values()))
                db.register("_incoming_lookup", record_rows(c.env, table.name, parsed.rows))
                try:
                    db.execute("INSERT INTO lookup_rows BY NAME SELECT * FROM _incoming_lookup")
                finally:
                    db.unregister("_incoming_lookup")
        else:
            raise ValueError(f"unknown log store change {c.kind!r}")

    def _persist(self, changes: list[Change], incoming: Incoming) -> None:
        db = self._db
        events = incoming.events
        if events is not None:
            for name in ("timestamp", "ingestion_time"):
                i = events.schema.get_field_index(name)
                events = events.set_column(i, name, events.column(name).cast(pa.timestamp("us")))
        db.execute("BEGIN TRANSACTION")
        try:
            for c in changes:
                self._run_change(db, c)
            if events is not None:
                db.register("_incoming_logs", events)
                try:
                    db.execute("INSERT INTO logs BY NAME SELECT * FROM _incoming_logs")
                finally:
                    db.unregister("_incoming_logs")
                db.executemany("""UPDATE log_streams SET first_event_ms = ?, last_event_ms = ?, last_ingestion_ms = ?,
                                  stored_bytes = ? WHERE _env = ? AND log_group = ? AND name = ?""",
                               [[s.first_event_ms, s.last_event_ms, s.last_ingestion_ms, s.stored_bytes, *k]
                                for k, s in incoming.streams.items()])
            db.execute("COMMIT")
        except BaseException:
            rollback(db)
            raise
