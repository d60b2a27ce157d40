"""The embedded store: spans, logs and errors in one DuckDB file (the keys and settings beside it, in SQLite)."""

from apiary.store.duckdb.errors import DuckDBErrorStore
from apiary.store.duckdb.logs import DuckDBLogStore
from apiary.store.duckdb.store import DuckDBStore

__all__ = ["DuckDBErrorStore", "DuckDBLogStore", "DuckDBStore"]
