"""The DuckDB store's ``trace_summary`` table: one row per trace, the partial rows of
``apiary.store.trace_summary`` merged as they arrive.

Merged at ingest, not when read, because DuckDB's GROUP BY costs what its groups cost: merging 1.25 M partial
rows by trace id took as long as grouping the 10 M spans themselves (~0.6-0.9 s each on this loaded machine),
while reading 1.25 M merged rows in order takes ~15 ms. A load upserts its rows (``ON CONFLICT`` on the
primary key): a trace seen before has its row widened, a new one is inserted.

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
from apiary.store.duckdb.transactions import rollback

log = logging.getLogger(__name__)

TABLE = "trace_summary"
_DDL = f"""CREATE TABLE {TABLE} (_env VARCHAR, trace_id VARCHAR, ts_min TIMESTAMP, ts_max TIMESTAMP,
           end_us BIGINT, spans BIGINT, errors BIGINT, root_us BIGINT, root_name VARCHAR, root_service VARCHAR,
           first_name VARCHAR, first_service VARCHAR, services VARCHAR[], PRIMARY KEY (_env, trace_id))"""
#: How a row already there takes in a later load's (``excluded``): each column as the merge of the two says it.
_ROOT_WINS = "excluded.root_us IS NOT NULL AND (root_us IS NULL OR excluded.root_us < root_us)"
_FIRST_WINS = "first_name IS NULL OR (excluded.first_name IS NOT NULL AND excluded.ts_min < ts_min)"
_MERGE = ", ".join([
    "ts_min = least(ts_min, excluded.ts_min)", "ts_max = greatest(ts_max, excluded.ts_max)",
    "end_us = greatest(end_us, excluded.end_us)", "spans = spans + excluded.spans", "errors = errors + excluded.errors",
    *(f"{c} = CASE WHEN {_ROOT_WINS} THEN excluded.{c} ELSE {c} END" for c in ("root_us", "root_name", "root_service")),
    *(f"{c} = CASE WHEN {_FIRST_WINS} THEN excluded.{c} ELSE {c} END" for c in ("first_name", "first_service")),
    "services = list_sort(list_distinct(list_concat(services, excluded.services)))",
])
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
        rollback(db)
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
        db.execute(f"INSERT INTO {TABLE} SELECT * FROM _summary_rows ON CONFLICT (_env, trace_id) DO UPDATE SET {_MERGE}")
    finally:
        db.unregister("_summary_rows")


def expire(cur: duckdb.DuckDBPyConnection, cutoff: datetime, span_tables: Sequence[str]) -> None:
    """Inside retention's transaction, after the spans older than ``cutoff`` went: rows wholly older go, and a
    trace the cutoff cut in two has its row made again from the spans it kept (replaced in place: a key deleted
    and inserted again in one transaction is refused by DuckDB's primary key)."""
    cut = cur.sql(f"SELECT _env, trace_id FROM {TABLE} WHERE ts_min < ? AND ts_max >= ?",
                  params=[cutoff, cutoff]).to_arrow_table()
    cur.execute(f"DELETE FROM {TABLE} WHERE ts_max < ?", [cutoff])
    if not cut.num_rows:
        return
    cur.register("_cut", cut)
    try:
        kept = [cur.sql(f'SELECT {_source("t")} FROM {table} t SEMI JOIN _cut c ON t._env = c._env '
                        f'AND t."trace.trace_id" = c.trace_id WHERE t."timestamp" >= ?', params=[cutoff]).to_arrow_table()
                for table in span_tables]
    finally:
        cur.unregister("_cut")
    rows = summary_rows(pa.concat_tables(kept)) if kept else None
    if rows is None or not rows.num_rows:
        return
    cur.register("_remade", rows)
    try:
        columns = [c for c in rows.column_names if c not in ("_env", "trace_id")]
        cur.execute(f"UPDATE {TABLE} s SET {', '.join(f'{c} = r.{c}' for c in columns)} FROM _remade r "
                    "WHERE s._env = r._env AND s.trace_id = r.trace_id")
    finally:
        cur.unregister("_remade")
