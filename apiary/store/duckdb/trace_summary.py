"""The DuckDB store's ``trace_summary`` table: the partial per-trace rows of ``apiary.store.trace_summary``.

Written by the loader in the transaction that loads the spans (so a load replayed from the intake log after a
crash brings its summary rows with it, exactly once), cut by retention in the transaction that deletes the
spans, and built from the spans once when a store from before it is opened.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Sequence

import duckdb
import pyarrow as pa

from apiary.store.trace_summary import SOURCE_COLUMNS, summary_rows

log = logging.getLogger(__name__)

TABLE = "trace_summary"
_DDL = f"""CREATE TABLE {TABLE} (_env VARCHAR, trace_id VARCHAR, ts_min TIMESTAMP, ts_max TIMESTAMP,
           end_us BIGINT, spans BIGINT, errors BIGINT, root_us BIGINT, root_name VARCHAR, root_service VARCHAR,
           first_name VARCHAR, first_service VARCHAR, services VARCHAR[])"""
#: Spans read at a time when an older store's summary is built (a few hundred MB of Arrow at most).
_BACKFILL_ROWS = 2_000_000


def _source(alias: str) -> str:
    return ", ".join(f'{alias}."{c}"' for c in SOURCE_COLUMNS)


def create(db: duckdb.DuckDBPyConnection, span_tables: Sequence[str]) -> None:
    """The table, built from the spans already stored when it is new (one transaction: all or nothing)."""
    if db.execute("SELECT 1 FROM duckdb_tables() WHERE database_name = current_database() AND table_name = ?",
                  [TABLE]).fetchall():
        return
    db.execute("BEGIN TRANSACTION")
    try:
        db.execute(_DDL)
        total = 0
        for table in span_tables:
            (rows,) = db.execute(f"SELECT max(rowid) + 1 FROM {table}").fetchall()[0]
            for first in range(0, rows or 0, _BACKFILL_ROWS):  # rowid ranges: read a slice, not the table each time
                spans = db.sql(f"SELECT {_source('t')} FROM {table} t WHERE rowid >= ? AND rowid < ?",
                               params=[first, first + _BACKFILL_ROWS]).to_arrow_table()
                add(db, spans)
                total += spans.num_rows
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    if total:
        log.info("built the trace summary of %d stored spans", total)


def add(db: duckdb.DuckDBPyConnection, spans: pa.Table) -> None:
    """Inside the caller's transaction: the summary rows of a load's spans (physical columns)."""
    rows = summary_rows(spans)
    if not rows.num_rows:
        return
    db.register("_summary_rows", rows)
    try:
        db.execute(f"INSERT INTO {TABLE} SELECT * FROM _summary_rows")
    finally:
        db.unregister("_summary_rows")


def expire(cur: duckdb.DuckDBPyConnection, cutoff: datetime, span_tables: Sequence[str]) -> None:
    """Inside retention's transaction, after the spans older than ``cutoff`` went: rows wholly older go, and a
    trace the cutoff cut in two gets its rows made again from the spans it kept."""
    cut = cur.sql(f"SELECT DISTINCT _env, trace_id FROM {TABLE} WHERE ts_min < ? AND ts_max >= ?",
                  params=[cutoff, cutoff]).to_arrow_table()
    cur.execute(f"DELETE FROM {TABLE} WHERE ts_min < ?", [cutoff])
    if not cut.num_rows:
        return
    cur.register("_cut", cut)
    try:
        # Their rows still inside the cutoff are remade too (with the rest), so nothing is counted twice.
        cur.execute(f"DELETE FROM {TABLE} s USING _cut c WHERE s._env = c._env AND s.trace_id = c.trace_id")
        for table in span_tables:
            kept = cur.sql(f'SELECT {_source("t")} FROM {table} t SEMI JOIN _cut c ON t._env = c._env '
                           f'AND t."trace.trace_id" = c.trace_id WHERE t."timestamp" >= ?', params=[cutoff]).to_arrow_table()
            add(cur, kept)
    finally:
        cur.unregister("_cut")
