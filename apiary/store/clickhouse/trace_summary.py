"""The ClickHouse store's ``trace_summary`` table: the partial per-trace rows of ``apiary.store.trace_summary``.

A plain MergeTree of partial rows, merged by GROUP BY when read (the same statement as DuckDB's): an
AggregatingMergeTree would merge them in the background too, but a read must merge whatever parts have not
been yet, so it would not spare the GROUP BY. Ordered by ``(_env, ts_min)``: a search reads the rows of its
window; a bloom filter on ``trace_id`` serves the lookups by id.

Written after the spans of a commit (the spans insert stays the commit point: if the summary insert fails, the
request fails and its retry is deduplicated on the spans, not on the summary, which it then completes).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Mapping

import pyarrow as pa

from apiary.store.clickhouse.client import Client, quote
from apiary.store.trace_summary import SOURCE_COLUMNS, summary_rows

TABLE = "trace_summary"
TS = "DateTime64(6, 'UTC')"
_SOURCE = ", ".join(quote(c) for c in SOURCE_COLUMNS)


def create(client: Client, durable: str) -> None:
    """The table; built from the stored spans, a day at a time, when a store from before it is opened."""
    exists = client.query_arrow("SELECT count() AS n FROM system.tables WHERE database = currentDatabase() "
                                f"AND name = '{TABLE}'").column(0)[0].as_py()
    if exists:
        return
    client.command(f"""CREATE TABLE {TABLE} (_env LowCardinality(String), trace_id String, ts_min {TS}, ts_max {TS},
                       end_us Int64, spans Int64, errors Int64, root_us Nullable(Int64), root_name Nullable(String),
                       root_service Nullable(String), first_name Nullable(String), first_service Nullable(String),
                       services Array(String), INDEX trace_ids trace_id TYPE bloom_filter GRANULARITY 1)
                       ENGINE = MergeTree PARTITION BY toDate(ts_min) ORDER BY (_env, ts_min)
                       SETTINGS non_replicated_deduplication_window = 1000{durable}""")
    days = client.query_arrow("SELECT DISTINCT toDate(`timestamp`) AS d FROM spans ORDER BY d").column(0).to_pylist()
    for day in days:
        add(client, client.query_arrow(f"SELECT {_SOURCE} FROM spans WHERE toDate(`timestamp`) = {{d:Date}}",
                                       {"d": day}), {})


def add(client: Client, spans: pa.Table, settings: Mapping[str, object]) -> None:
    """The summary rows of a commit's spans (physical columns)."""
    rows = summary_rows(spans)
    if rows.num_rows:
        client.insert_arrow(TABLE, rows, settings=settings)


def expire(client: Client, cutoff: datetime) -> None:
    """After the spans older than ``cutoff`` were deleted: rows wholly older go, and a trace the cutoff cut in two
    gets its rows made again from the spans it kept."""
    at = {"c": cutoff.astimezone(timezone.utc)}
    cut = client.query_arrow(f"SELECT DISTINCT _env, trace_id FROM {TABLE} WHERE ts_min < {{c:{TS}}} "
                             f"AND ts_max >= {{c:{TS}}}", at)
    client.command(f"DELETE FROM {TABLE} WHERE ts_min < {{c:{TS}}}", at)
    if not cut.num_rows:
        return
    keys = {"k": list(zip(cut.column("_env").to_pylist(), cut.column("trace_id").to_pylist()))}
    client.command(f"DELETE FROM {TABLE} WHERE has({{k:Array(Tuple(String, String))}}, (toString(_env), trace_id))", keys)
    kept = client.query_arrow(f"SELECT {_SOURCE} FROM spans WHERE has({{k:Array(Tuple(String, String))}}, "
                              f"(toString(_env), assumeNotNull(`trace.trace_id`))) AND `timestamp` >= {{c:{TS}}}",
                              {**keys, **at})
    add(client, kept, {})
