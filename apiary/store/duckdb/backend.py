"""What the log and error stores share as backends on the span store's DuckDB file.

Each keeps its own connection (a cursor of the span store's database) for its writer, and reads through a
fresh cursor per query, so a read never waits on, or disturbs, a commit group in flight.
"""

from __future__ import annotations

from typing import Any, Sequence

import duckdb
import pyarrow as pa

from apiary.store.duckdb.store import DuckDBStore, _arrow


class SpanFileBackend:
    """The ``query`` and ``_close_backend`` a `LogStoreBase` / `ErrorStoreBase` asks of a DuckDB backend."""

    _spans: DuckDBStore
    _db: duckdb.DuckDBPyConnection

    def _open(self, spans: DuckDBStore) -> None:
        self._spans = spans
        self._db = spans.cursor()

    def query(self, sql: str, params: Sequence[Any] = ()) -> pa.Table:
        cur = self._spans.cursor()
        try:
            return _arrow(cur, sql, params)
        finally:
            cur.close()

    def _close_backend(self) -> None:
        self._db.close()


def deleted(result: duckdb.DuckDBPyConnection) -> int:
    """Rows a DELETE removed (DuckDB answers it as one row)."""
    row = result.fetchone()
    return int(row[0]) if row else 0
