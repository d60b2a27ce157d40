"""The read queries behind the UI's home page, service map and recent-trace lists.

Each function takes a ``Store`` and an environment and runs parameterised SQL
over the core columns only (their physical names equal their Honeycomb names),
so attribute layout never matters here. Values travel in ``params``; the SQL
text is constant apart from the number of ``?`` placeholders. Written for the
DuckDB dialect; a second dialect gets its own branch where the syntax differs.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from apiary.store.base import Store

#: Rows that are spans (not span events or links).
_IS_SPAN = '"meta.annotation_type" IS NULL'
_IS_ROOT = '("trace.parent_id" IS NULL OR "trace.parent_id" = \'\')'


def _iso(dt: datetime | None) -> str | None:
    if dt is None:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.isoformat().replace("+00:00", "Z")


def _naive(dt: datetime) -> datetime:
    return dt.astimezone(timezone.utc).replace(tzinfo=None)


def dataset_stats(store: Store, env: str) -> list[dict[str, Any]]:
    """Per dataset: rows, spans, errors, first and last span timestamps."""
    t = store.query(
        f"""SELECT _dataset AS dataset, count(*) AS rows, count(*) FILTER (WHERE {_IS_SPAN}) AS spans,
                   count(*) FILTER (WHERE error) AS errors, min("timestamp") AS first_ts, max("timestamp") AS last_ts
            FROM spans WHERE _env = ? GROUP BY _dataset ORDER BY _dataset""", [env])
    out = []
    for r in t.to_pylist():
        out.append({"name": r["dataset"], "rows": r["rows"], "spans": r["spans"], "errors": r["errors"],
                    "first_seen": _iso(r["first_ts"]), "last_seen": _iso(r["last_ts"])})
    return out


def recent_traces(store: Store, env: str, limit: int = 50, dataset: str | None = None) -> list[dict[str, Any]]:
    """Root spans, newest first, with each trace's span and error counts."""
    where = [f"_env = ?", _IS_SPAN, _IS_ROOT, '"trace.trace_id" IS NOT NULL']
    params: list[Any] = [env]
    if dataset:
        where.append("_dataset = ?")
        params.append(dataset)
    roots = store.query(
        f"""SELECT "trace.trace_id" AS trace_id, name, "service.name" AS service, _dataset AS dataset, "timestamp",
                   duration_ms, error, status_code, "span.kind" AS kind
            FROM spans WHERE {' AND '.join(where)} ORDER BY "timestamp" DESC LIMIT ?""", [*params, limit]).to_pylist()
    if not roots:
        return []
    ids = sorted({r["trace_id"] for r in roots})
    lo = min(r["timestamp"] for r in roots) - timedelta(hours=1)
    hi = max(r["timestamp"] for r in roots) + timedelta(hours=1)
    marks = ", ".join("?" for _ in ids)
    counts = store.query(
        f"""SELECT "trace.trace_id" AS trace_id, count(*) AS spans, count(*) FILTER (WHERE error) AS errors,
                   count(DISTINCT "service.name") AS services
            FROM spans WHERE _env = ? AND "timestamp" BETWEEN ? AND ? AND {_IS_SPAN} AND "trace.trace_id" IN ({marks})
            GROUP BY 1""", [env, lo, hi, *ids]).to_pylist()
    by_id = {c["trace_id"]: c for c in counts}
    out = []
    for r in roots:
        c = by_id.get(r["trace_id"], {})
        out.append({"trace_id": r["trace_id"], "name": r["name"], "service": r["service"], "dataset": r["dataset"],
                    "timestamp": _iso(r["timestamp"]), "duration_ms": r["duration_ms"], "error": bool(r["error"]),
                    "status_code": r["status_code"], "kind": r["kind"], "spans": c.get("spans", 1),
                    "errors": c.get("errors", 0), "services": c.get("services", 1)})
    return out


def service_map(store: Store, env: str, seconds: int, now: datetime | None = None) -> dict[str, Any]:
    """Services (nodes) and calls between them (edges: parent span's service -> child span's service).

    An edge counts child spans whose parent span is in another service: requests, errors, P90 of the
    child's duration. Parents are looked up within the window plus an hour before it, for long traces.
    """
    end = _naive(now or datetime.now(timezone.utc)) + timedelta(seconds=1)
    start = end - timedelta(seconds=seconds)
    nodes = store.query(
        f"""SELECT "service.name" AS service, count(*) AS count, count(*) FILTER (WHERE error) AS errors,
                   quantile_cont(duration_ms, 0.9) AS p90, count(*) FILTER (WHERE {_IS_ROOT}) AS roots
            FROM spans WHERE _env = ? AND "timestamp" >= ? AND "timestamp" < ? AND {_IS_SPAN}
            GROUP BY 1 ORDER BY 1""", [env, start, end]).to_pylist()
    edges = store.query(
        f"""SELECT p."service.name" AS parent, c."service.name" AS child, count(*) AS count,
                   count(*) FILTER (WHERE c.error) AS errors, quantile_cont(c.duration_ms, 0.9) AS p90
            FROM spans c JOIN spans p
              ON p._env = c._env AND p."trace.trace_id" = c."trace.trace_id" AND p."trace.span_id" = c."trace.parent_id"
            WHERE c._env = ? AND c."timestamp" >= ? AND c."timestamp" < ? AND c."meta.annotation_type" IS NULL
              AND p._env = ? AND p."timestamp" >= ? AND p."timestamp" < ? AND p."meta.annotation_type" IS NULL
              AND p."service.name" IS DISTINCT FROM c."service.name"
            GROUP BY 1, 2 ORDER BY 1, 2""",
        [env, start, end, env, start - timedelta(hours=1), end]).to_pylist()
    for n in nodes:
        n["error_rate"] = n["errors"] / n["count"] if n["count"] else 0.0
    for e in edges:
        e["error_rate"] = e["errors"] / e["count"] if e["count"] else 0.0
    return {"start": _iso(start), "end": _iso(end), "nodes": nodes, "edges": edges}
