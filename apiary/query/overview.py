"""The UI's overview reads over spans: per-dataset statistics, recent root spans, the service map.

Each statement is written once, with ``?`` placeholders and a `LogDialect`
call wherever DuckDB and ClickHouse spell a function differently (only the
percentile does here); the dialect's ``bind`` turns it into what the store
takes, so both stores run the same statement shape and answer alike. Only
the core columns are read (their physical names are their Honeycomb names),
so the attribute layout of either store never matters.

Functions return plain rows (Python values); ``apiary.ui.queries`` shapes them into the UI's JSON.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any, Sequence

from apiary.query.dialects.logs import log_dialect_for
from apiary.store.base import Store

#: Rows that are spans (not span events or links, nor OTLP metric points, which share the datasets).
IS_SPAN = '("meta.annotation_type" IS NULL AND coalesce("meta.signal_type", \'\') <> \'metric\')'
IS_ROOT = '("trace.parent_id" IS NULL OR "trace.parent_id" = \'\')'
#: How far before the window a parent span is looked for, so a long trace's calls still have their caller.
PARENT_LOOKBACK = timedelta(hours=1)
#: Around the roots listed, how far a trace's other spans are looked for when counting them.
TRACE_SLACK = timedelta(hours=1)


def _run(store: Store, sql: str, params: Sequence[Any]) -> list[dict[str, Any]]:
    return store.query(*log_dialect_for(store.dialect).bind(sql, list(params))).to_pylist()


def _naive(dt: datetime) -> datetime:
    """UTC without a zone: how both stores' ``timestamp`` columns compare."""
    return dt.astimezone(timezone.utc).replace(tzinfo=None) if dt.tzinfo else dt


def dataset_stats(store: Store, env: str) -> list[dict[str, Any]]:
    """Per dataset of ``env``: ``dataset``, ``n_rows`` (spans, events, links, metric rows), ``spans``, ``errors``,
    ``first_ts`` and ``last_ts`` (timestamps of its rows), by dataset name."""
    return _run(store, f"""SELECT _dataset AS dataset, count(*) AS n_rows, count(*) FILTER (WHERE {IS_SPAN}) AS spans,
                                  count(*) FILTER (WHERE error) AS errors, min("timestamp") AS first_ts,
                                  max("timestamp") AS last_ts
                           FROM spans WHERE _env = ? GROUP BY _dataset ORDER BY _dataset""", [env])


def recent_roots(store: Store, env: str, limit: int, dataset: str | None = None) -> list[dict[str, Any]]:
    """Root spans of ``env`` (of one dataset if given), newest first: ``trace_id``, ``name``, ``service``,
    ``dataset``, ``timestamp``, ``duration_ms``, ``error``, ``status_code``, ``kind``."""
    where = ["_env = ?", IS_SPAN, IS_ROOT, '"trace.trace_id" IS NOT NULL']
    params: list[Any] = [env]
    if dataset:
        where.append("_dataset = ?")
        params.append(dataset)
    return _run(store, f"""SELECT "trace.trace_id" AS trace_id, name, "service.name" AS service, _dataset AS dataset,
                                  "timestamp", duration_ms, error, status_code, "span.kind" AS kind
                           FROM spans WHERE {' AND '.join(where)} ORDER BY "timestamp" DESC LIMIT ?""",
                [*params, int(limit)])


def trace_counts(store: Store, env: str, trace_ids: Sequence[str], lo: datetime, hi: datetime) -> list[dict[str, Any]]:
    """Per trace listed: ``trace_id``, ``spans``, ``errors``, ``services`` among its spans between ``lo`` and ``hi``."""
    if not trace_ids:
        return []
    marks = ", ".join("?" for _ in trace_ids)
    return _run(store, f"""SELECT "trace.trace_id" AS trace_id, count(*) AS spans, count(*) FILTER (WHERE error) AS errors,
                                  count(DISTINCT "service.name") AS services
                           FROM spans WHERE _env = ? AND "timestamp" >= ? AND "timestamp" <= ? AND {IS_SPAN}
                             AND "trace.trace_id" IN ({marks})
                           GROUP BY "trace.trace_id" """, [env, _naive(lo), _naive(hi), *trace_ids])


def recent_traces(store: Store, env: str, limit: int, dataset: str | None = None) -> list[dict[str, Any]]:
    """`recent_roots`, each with its trace's ``spans``, ``errors`` and ``services`` counts (a root alone: 1, 0, 1)."""
    roots = recent_roots(store, env, limit, dataset)
    if not roots:
        return []
    stamps = [_naive(r["timestamp"]) for r in roots]
    counts = trace_counts(store, env, sorted({r["trace_id"] for r in roots}),
                          min(stamps) - TRACE_SLACK, max(stamps) + TRACE_SLACK)
    by_id = {c["trace_id"]: c for c in counts}
    return [{**r, "spans": by_id.get(r["trace_id"], {}).get("spans", 1),
             "errors": by_id.get(r["trace_id"], {}).get("errors", 0),
             "services": by_id.get(r["trace_id"], {}).get("services", 1)} for r in roots]


def service_nodes(store: Store, env: str, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Per service with spans in [start, end): ``service``, ``count``, ``errors``, ``p90`` (of ``duration_ms``),
    ``roots`` (spans without a parent), by service name."""
    p90 = log_dialect_for(store.dialect).percentile("duration_ms", 0.9)
    return _run(store, f"""SELECT "service.name" AS service, count(*) AS count, count(*) FILTER (WHERE error) AS errors,
                                  {p90} AS p90, count(*) FILTER (WHERE {IS_ROOT}) AS roots
                           FROM spans WHERE _env = ? AND "timestamp" >= ? AND "timestamp" < ? AND {IS_SPAN}
                           GROUP BY "service.name" ORDER BY "service.name" """, [env, _naive(start), _naive(end)])


def service_edges(store: Store, env: str, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Calls between services: child spans in [start, end) whose parent span is in another service, per
    (``parent``, ``child``) service: ``count``, ``errors``, ``p90`` of the child's duration.

    Parents are looked for from `PARENT_LOOKBACK` before the window. Each side is filtered in a subquery of its
    own, a shape both engines plan alike; it is no slower than joining first and filtering after (measured at
    100,000 spans with ``bench/ui_reads.py``'s data: 122 against 142 ms on DuckDB, 520 against 531 ms on chdb)."""
    p90 = log_dialect_for(store.dialect).percentile("c.duration_ms", 0.9)
    side = ('SELECT "trace.trace_id" AS tid, "trace.span_id" AS sid, "trace.parent_id" AS pid, "service.name" AS svc, '
            'error, duration_ms FROM spans WHERE _env = ? AND "timestamp" >= ? AND "timestamp" < ? '
            'AND "meta.annotation_type" IS NULL')
    return _run(store, f"""SELECT p.svc AS parent, c.svc AS child, count(*) AS count,
                                  count(*) FILTER (WHERE c.error) AS errors, {p90} AS p90
                           FROM ({side}) AS c JOIN ({side}) AS p ON p.tid = c.tid AND p.sid = c.pid
                           WHERE p.svc IS DISTINCT FROM c.svc
                           GROUP BY p.svc, c.svc ORDER BY p.svc, c.svc""",
                [env, _naive(start), _naive(end), env, _naive(start - PARENT_LOOKBACK), _naive(end)])
