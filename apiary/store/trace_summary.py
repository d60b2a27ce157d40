"""Per-trace summary rows, kept at ingest beside the spans, so a trace list reads one row per trace.

A trace search over a day of 10 M spans spent its time grouping the spans by trace (1.25 M groups) to learn
each trace's start, end and counts. Both stores therefore write, in the same commit as the spans, one
*partial* row per (environment, trace) of every load: a trace that arrives in several loads has several rows,
merged when read (``apiary.query.dialects.traces``), so a write never reads or rewrites an earlier row.

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
    parent = t.column("trace.parent_id")
    is_root = pc.fill_null(pc.equal(parent, ""), True)
    t = pa.table({
        "_env": t.column("_env"), "trace_id": t.column("trace.trace_id"), "ts": t.column("timestamp"),
        "start_us": start_us, "end_us": pc.add(start_us, took_us),
        "err": pc.fill_null(t.column("error"), False).cast(pa.int64()), "is_root": is_root,
        "name": t.column("name"), "service": t.column("service.name"),
    }).sort_by([("_env", "ascending"), ("trace_id", "ascending"), ("start_us", "ascending")])
    keys = ["_env", "trace_id"]
    # Grouped in order (no threads), so "first" is the earliest span of each trace.
    every = t.group_by(keys, use_threads=False).aggregate([
        ("ts", "min"), ("ts", "max"), ("end_us", "max"), ("start_us", "count"), ("err", "sum"),
        ("name", "first"), ("service", "first"),
        ("service", "distinct", pc.CountOptions(mode="only_valid"))])
    roots = t.filter(t.column("is_root")).group_by(keys, use_threads=False).aggregate([
        ("start_us", "first"), ("name", "first"), ("service", "first")])
    # Arrow's join takes no list columns: each trace's root row found by its key instead.
    at = pc.index_in(_key(every), value_set=_key(roots))
    joined = every
    for column, alias in (("start_us_first", "root_us"), ("name_first", "root_name"), ("service_first", "root_service")):
        joined = joined.append_column(alias, roots.column(column).take(at))
    return pa.table({
        "_env": joined.column("_env"), "trace_id": joined.column("trace_id"),
        "ts_min": joined.column("ts_min"), "ts_max": joined.column("ts_max"),
        "end_us": joined.column("end_us_max"), "spans": joined.column("start_us_count").cast(pa.int64()),
        "errors": joined.column("err_sum").cast(pa.int64()),
        "root_us": joined.column("root_us"), "root_name": joined.column("root_name"),
        "root_service": joined.column("root_service"),
        "first_name": joined.column("name_first"), "first_service": joined.column("service_first"),
        "services": joined.column("service_distinct"),
    })


def _key(t: pa.Table) -> pa.ChunkedArray:
    return pc.binary_join_element_wise(t.column("_env"), t.column("trace_id"), "\x00")
