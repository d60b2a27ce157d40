"""Per-trace summary rows, kept at ingest beside the spans, so a trace list reads one row per trace.

A trace search over a day of 10 M spans spent its time grouping the spans by trace (1.25 M groups) to learn
each trace's start, end and counts. Both stores therefore write, with the spans, one *partial* row per
(environment, trace) of every load. A trace that arrives in several loads has several: ClickHouse keeps them
and merges them when read (``apiary.query.dialects.traces``); DuckDB merges them into one row per trace as
they arrive (``apiary.store.duckdb.trace_summary``), since its GROUP BY over the trace ids cost what grouping
the spans did.

A row says what the trace's spans of that load were (not events or links, as the search counts them):

* ``ts_min`` / ``ts_max``: the first and last span *start* (the search judges a trace by the spans that start
  inside its window, so a row wholly inside a window stands for its spans there, and one that straddles an
  edge sends its trace back to the spans);
* ``end_us``: the latest span end (start plus duration, whole microseconds, rounded);
* ``spans``, ``errors``; ``root_us``, ``root_name``, ``root_service``: the earliest root span (no parent), if
  the load held one; ``first_name``, ``first_service``: the earliest span, for a trace whose root never came;
* ``services``: the distinct ``service.name`` values.

The rows are worked out here, with Arrow, once for both stores: at ingest, when retention cuts a trace in
two, and when an older store gets its summary.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

#: The span columns a summary is made from (physical names: both stores keep core columns by name).
SOURCE_COLUMNS = ("_env", "trace.trace_id", "timestamp", "duration_ms", "trace.parent_id", "name", "service.name",
                  "error", "meta.annotation_type")
#: The summary's columns, in order.
COLUMNS = ("_env", "trace_id", "ts_min", "ts_max", "end_us", "spans", "errors", "root_us", "root_name",
           "root_service", "first_name", "first_service", "services")

_EMPTY_TYPES = {"_env": pa.string(), "trace.trace_id": pa.string(), "timestamp": pa.timestamp("us"),
                "duration_ms": pa.float64(), "trace.parent_id": pa.string(), "name": pa.string(),
                "service.name": pa.string(), "error": pa.bool_(), "meta.annotation_type": pa.string()}


def summary_rows(spans: pa.Table) -> pa.Table:
    """One row per (environment, trace) of ``spans`` (a load, or any set of whole or partial traces)."""
    n = spans.num_rows
    cols = {name: spans.column(name) if name in spans.column_names else pa.nulls(n, _EMPTY_TYPES[name])
            for name in SOURCE_COLUMNS}
    t = pa.table(cols)
    keep = pc.and_(pc.is_valid(t.column("trace.trace_id")), pc.is_null(t.column("meta.annotation_type")))
    t = t.filter(keep)
    ts_type = t.column("timestamp").type
    start_us = t.column("timestamp").cast(pa.timestamp("us", tz=ts_type.tz)).cast(pa.int64())
    took_us = pc.round(pc.multiply(pc.fill_null(t.column("duration_ms"), 0.0), 1000.0)).cast(pa.int64())
    is_root = pc.fill_null(pc.equal(t.column("trace.parent_id"), ""), True)
    envs = pc.unique(t.column("_env")).to_pylist()
    if len(envs) <= 1:
        return _one_env(envs[0] if envs else None, t, start_us, took_us, is_root)
    parts = []
    for env in envs:
        mine = pc.equal(t.column("_env"), env) if env is not None else pc.is_null(t.column("_env"))
        parts.append(_one_env(env, t.filter(mine), start_us.filter(mine), took_us.filter(mine), is_root.filter(mine)))
    return pa.concat_tables(parts)


def _one_env(env: str | None, t: pa.Table, start_us: pa.ChunkedArray, took_us: pa.ChunkedArray,
             is_root: pa.ChunkedArray) -> pa.Table:
    """The rows of one environment's spans. Grouped by the trace id alone (a second key made Arrow's grouping ~10x
    slower), and with integers only: the spans are put in start order, so the smallest row number of a trace
    (among its roots, or among its spans with a name) is its earliest span: SQL's ``arg_min(value, start)``,
    which skips nulls too. Sorting the strings and grouping them took ~13 s of a 1 M-span load."""
    order = pc.sort_indices(start_us)
    start = start_us.take(order)
    names, services = t.column("name").take(order), t.column("service.name").take(order)
    root = is_root.take(order)
    row = pa.array(range(len(start)), pa.int64())
    g = pa.table({
        "trace_id": t.column("trace.trace_id").take(order), "ts": t.column("timestamp").take(order), "start_us": start,
        "end_us": pc.add(start, took_us.take(order)), "err": pc.fill_null(t.column("error"), False).take(order).cast(pa.int64()),
        "root_row": pc.if_else(root, row, None), "root_name_row": pc.if_else(pc.and_(root, pc.is_valid(names)), row, None),
        "root_service_row": pc.if_else(pc.and_(root, pc.is_valid(services)), row, None),
        "name_row": pc.if_else(pc.is_valid(names), row, None), "service_row": pc.if_else(pc.is_valid(services), row, None),
        "service": services,
    }).group_by("trace_id", use_threads=False).aggregate([
        ("ts", "min"), ("ts", "max"), ("end_us", "max"), ("start_us", "count"), ("err", "sum"), ("root_row", "min"),
        ("root_name_row", "min"), ("root_service_row", "min"), ("name_row", "min"), ("service_row", "min"),
        ("service", "distinct", pc.CountOptions(mode="only_valid"))])
    return pa.table({
        "_env": pa.array([env] * g.num_rows, pa.string()), "trace_id": g.column("trace_id"),
        "ts_min": g.column("ts_min"), "ts_max": g.column("ts_max"), "end_us": g.column("end_us_max"),
        "spans": g.column("start_us_count").cast(pa.int64()), "errors": g.column("err_sum").cast(pa.int64()),
        "root_us": start.take(g.column("root_row_min")), "root_name": names.take(g.column("root_name_row_min")),
        "root_service": services.take(g.column("root_service_row_min")),
        "first_name": names.take(g.column("name_row_min")), "first_service": services.take(g.column("service_row_min")),
        "services": g.column("service_distinct"),
    })
