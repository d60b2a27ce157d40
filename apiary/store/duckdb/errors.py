"""Error items and their occurrences, in tables ``error_items`` and ``error_occurrences`` of the span store's DuckDB file.

Keeping the whole error signal in the DuckDB file lets the trace view join a
trace's errors beside its spans and logs. Each commit group of the writer
(`ErrorStoreBase`) is one DuckDB transaction: occurrences and their items'
new state commit together or not at all.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import timezone

import pyarrow as pa

from apiary.store.base import ErrorItem
from apiary.store.duckdb.backend import SpanFileBackend, deleted
from apiary.store.duckdb.store import DuckDBStore
from apiary.store.duckdb.transactions import rollback
from apiary.store.error_store import ITEM_COLUMNS, ErrorStoreBase, _Expire

__all__ = ["DuckDBErrorStore", "ErrorItem"]

_SQL_TYPES = {"env": "VARCHAR", "id": "BIGINT", "counter": "BIGINT", "total_occurrences": "BIGINT",
              "first_occurrence_id": "BIGINT", "last_occurrence_id": "BIGINT", "activating_occurrence_id": "BIGINT",
              "first_occurrence_timestamp": "DOUBLE", "last_occurrence_timestamp": "DOUBLE",
              "last_activated_timestamp": "DOUBLE", "last_resolved_timestamp": "DOUBLE", "last_muted_timestamp": "DOUBLE"}


class DuckDBErrorStore(SpanFileBackend, ErrorStoreBase):
    dialect = "duckdb"

    def __init__(self, spans: DuckDBStore, *, max_pending_rows: int = 100_000) -> None:
        self._open(spans)
        cols = ", ".join(f"{c} {_SQL_TYPES.get(c, 'VARCHAR')}" for c in ITEM_COLUMNS)
        self._db.execute(f"CREATE TABLE IF NOT EXISTS error_items ({cols}, PRIMARY KEY (env, id))")
        self._db.execute("""CREATE TABLE IF NOT EXISTS error_occurrences (_env VARCHAR, id BIGINT, item_id BIGINT,
                            "timestamp" TIMESTAMP, uuid VARCHAR, item_key VARCHAR, title VARCHAR, level VARCHAR,
                            environment VARCHAR, framework VARCHAR, platform VARCHAR, language VARCHAR,
                            exception_class VARCHAR, trace_id VARCHAR, span_id VARCHAR, data VARCHAR)""")
        super().__init__(max_pending_rows=max_pending_rows)

    def _load(self, items: dict[tuple[str, int], ErrorItem]) -> int:
        for row in self._db.execute(f"SELECT {', '.join(ITEM_COLUMNS)} FROM error_items").fetchall():
            item = ErrorItem(*row)
            items[(item.env, item.id)] = item
        return (self._db.execute("SELECT max(id) FROM error_occurrences").fetchall()[0][0] or 0) + 1

    def _persist(self, occurrences: pa.Table | None, items: list[ErrorItem], expiries: list[_Expire],
                 gone: list[tuple[str, int]]) -> None:
        db = self._db
        db.execute("BEGIN TRANSACTION")
        try:
            if occurrences is not None:
                ts = occurrences.schema.get_field_index("timestamp")
                occurrences = occurrences.set_column(ts, "timestamp", occurrences.column(ts).cast(pa.timestamp("us")))
                db.register("_incoming_errors", occurrences)
                try:
                    db.execute("INSERT INTO error_occurrences BY NAME SELECT * FROM _incoming_errors")
                finally:
                    db.unregister("_incoming_errors")
            if items:
                marks = ", ".join("?" for _ in ITEM_COLUMNS)
                db.executemany(f"INSERT OR REPLACE INTO error_items ({', '.join(ITEM_COLUMNS)}) VALUES ({marks})",
                               [list(asdict(it).values()) for it in items])
            for e in expiries:
                cutoff = e.cutoff.astimezone(timezone.utc).replace(tzinfo=None)
                e.removed = deleted(db.execute('DELETE FROM error_occurrences WHERE "timestamp" < ?', [cutoff]))
            if gone:
                db.executemany("DELETE FROM error_items WHERE env = ? AND id = ?", [list(k) for k in gone])
            db.execute("COMMIT")
        except BaseException:
            rollback(db)
            raise
