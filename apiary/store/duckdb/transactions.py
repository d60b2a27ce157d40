"""Ending a failed DuckDB transaction without losing why it failed."""

from __future__ import annotations

import duckdb


def rollback(db: duckdb.DuckDBPyConnection) -> None:
    """ROLLBACK inside an ``except`` block, keeping the error that failed the transaction.

    When COMMIT itself fails (its write-ahead log could not be written: a full disk), DuckDB has
    already ended the transaction and ROLLBACK raises "no transaction is active"; raised from the
    ``except`` block, that error would replace the one that says why the write failed.
    """
    try:
        db.execute("ROLLBACK")
    except duckdb.TransactionException:
        pass
