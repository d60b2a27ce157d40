"""The UI's JSON: what the overview reads (``apiary.query.overview``) and the log and error stores answer, shaped
for the front end (ISO times, error rates, events with their cursor). No SQL here: both stores answer the same
calls, so every function below works on either.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from apiary.query import insights, overview
from apiary.store.base import ErrorItem, ErrorStore, LogStore, Store


def _iso(dt: datetime | None) -> str | None:
    if dt is None:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def _naive(dt: datetime) -> datetime:
    return dt.astimezone(timezone.utc).replace(tzinfo=None)


def dataset_stats(store: Store, env: str) -> list[dict[str, Any]]:
    """Per dataset: rows, spans, errors, first and last span timestamps."""
    return [{"name": r["dataset"], "rows": r["n_rows"], "spans": r["spans"], "errors": r["errors"],
             "first_seen": _iso(r["first_ts"]), "last_seen": _iso(r["last_ts"])}
            for r in overview.dataset_stats(store, env)]


def recent_traces(store: Store, env: str, limit: int = 50, dataset: str | None = None) -> list[dict[str, Any]]:
    """Root spans, newest first, with each trace's span and error counts."""
    return [{**r, "timestamp": _iso(r["timestamp"]), "error": bool(r["error"])}
            for r in overview.recent_traces(store, env, limit, dataset)]


def service_map(store: Store, env: str, seconds: int, now: datetime | None = None) -> dict[str, Any]:
    """Services (nodes) and calls between them (edges: parent span's service -> child span's service).

    An edge counts child spans whose parent span is in another service: requests, errors, P90 of the
    child's duration. Parents are looked up within the window plus an hour before it, for long traces.
    """
    end = _naive(now or datetime.now(timezone.utc)) + timedelta(seconds=1)
    start = end - timedelta(seconds=seconds)
    nodes = overview.service_nodes(store, env, start, end)
    edges = overview.service_edges(store, env, start, end)
    for row in (*nodes, *edges):
        row["error_rate"] = row["errors"] / row["count"] if row["count"] else 0.0
    return {"start": _iso(start), "end": _iso(end), "nodes": nodes, "edges": edges}


# -- logs and errors (the log and error stores, on either backend) --------------------------------

#: A filter pattern the SQL prefilter cannot decide alone is checked line by line; one request reads at most this many.
LOG_SCAN_BUDGET = 100_000


def log_catalogue(logs: LogStore, env: str) -> list[dict[str, Any]]:
    """Log groups, each with its streams: event counts, bytes, first/last event and last ingestion."""
    counts = logs.event_counts(env)
    out = []
    for g in logs.groups(env):
        streams = []
        for s in logs.streams(env, g.name):
            streams.append({"name": s.name, "events": counts.get((g.name, s.name), 0), "stored_bytes": s.stored_bytes,
                            "first_event_ms": s.first_event_ms, "last_event_ms": s.last_event_ms,
                            "last_ingestion_ms": s.last_ingestion_ms, "created_ms": s.created_ms})
        streams.sort(key=lambda s: -(s["last_event_ms"] or s["created_ms"] or 0))
        last = max((s["last_event_ms"] for s in streams if s["last_event_ms"] is not None), default=None)
        out.append({"name": g.name, "created_ms": g.created_ms, "retention_days": g.retention_days,
                    "stored_bytes": g.stored_bytes, "events": sum(s["events"] for s in streams),
                    "last_event_ms": last, "streams": streams})
    return out


def _log_json(row: dict[str, Any]) -> dict[str, Any]:
    return {"timestamp_ms": row["timestamp_us"] // 1000, "timestamp": _iso(datetime.fromtimestamp(row["timestamp_us"] / 1e6, timezone.utc)),
            "seq": row["seq"], "stream": row["log_stream"], "message": row["message"], "level": row.get("severity_text"),
            "trace_id": row.get("trace_id"), "span_id": row.get("span_id")}


def log_events(logs: LogStore, env: str, group: str, streams: list[str] | None, pattern: Any, *, limit: int = 200,
               start_ms: int | None = None, end_ms: int | None = None) -> dict[str, Any]:
    """The newest ``limit`` events matching a parsed filter pattern, oldest first, and a cursor for `log_tail`.

    The cursor is the highest ``seq`` of the group (the store's commit order), so a tail sees every event
    committed after this call, whatever its timestamp.
    """
    message_filter = pattern.prefilter()
    exact = pattern.exact_in_sql
    found: list[dict[str, Any]] = []
    before = None
    scanned = 0
    truncated = False
    while len(found) < limit:
        chunk = (limit - len(found)) if exact else 5000
        rows = logs.events(env, group, streams, start_ms=start_ms, end_ms=end_ms, before=before, descending=True,
                           limit=chunk, message_filter=message_filter, detail=True).to_pylist()
        for r in rows:
            if exact or pattern.matches(r["message"]):
                found.append(r)
                if len(found) == limit:
                    break
        scanned += len(rows)
        if len(rows) < chunk:
            break
        before = (rows[-1]["timestamp_us"], rows[-1]["seq"])
        if scanned >= LOG_SCAN_BUDGET:
            truncated = True
            break
    top = logs.max_seq(env, group)
    found.reverse()
    return {"events": [_log_json(r) for r in found], "cursor": top, "scanned": scanned, "truncated": truncated}


def log_tail(logs: LogStore, env: str, group: str, streams: list[str] | None, pattern: Any, after_seq: int,
             limit: int = 500) -> dict[str, Any]:
    """Events committed after ``after_seq`` (in commit order) that match the pattern, and the new cursor."""
    rows = logs.events_after_seq(env, group, streams, after_seq, limit if pattern.exact_in_sql else 5000,
                                 pattern.prefilter())
    cursor = after_seq
    matched: list[dict[str, Any]] = []
    for r in rows.to_pylist():
        if pattern.exact_in_sql or pattern.matches(r["message"]):
            if len(matched) == limit:
                break
            matched.append(r)
        cursor = r["seq"]  # every row up to here is decided
    return {"events": [_log_json(r) for r in matched], "cursor": cursor}


def _json_value(v: Any) -> Any:
    if isinstance(v, datetime):
        return _iso(v)
    if isinstance(v, (int, float, str, bool)) or v is None:
        return v
    if isinstance(v, Decimal):
        return int(v) if v == v.to_integral_value() else float(v)
    return str(v)


def insights_run(logs: LogStore, env: str, text: str, groups: list[str], start_s: int, end_s: int) -> dict[str, Any]:
    """Run a Logs Insights query now (compiled for the store's dialect, as StartQuery does); rows as JSON values."""
    compiled = insights.compile_query(text, None, logs.dialect, insights.fields_of_lookup_tables(logs, env))
    sql, params, counts_sql, counts_params = insights.to_sql(compiled, env, groups, start_s, end_s)
    table = logs.query(sql, params)
    counts = logs.query(counts_sql, counts_params).to_pylist()[0]
    names = table.column_names
    rows = [[_json_value(r[n]) for n in names] for r in table.to_pylist()]
    return {"columns": compiled.columns, "rows": rows, "is_stats": compiled.is_stats,
            "statistics": {k: int(counts[c] or 0) for k, c in (("matched", "matched"), ("scanned", "scanned"), ("bytes", "size"))}}


def trace_logs(logs: LogStore, env: str, trace_id: str, limit: int = 1000) -> list[dict[str, Any]]:
    out = []
    for r in logs.trace_logs(env, trace_id, limit).to_pylist():
        out.append({"timestamp": _iso(r["timestamp"]), "group": r["log_group"], "stream": r["log_stream"],
                    "message": r["message"], "level": r["severity_text"], "span_id": r["span_id"], "source": r["source"]})
    return out


def error_sparklines(errors: ErrorStore, env: str, item_ids: list[int], start: datetime, bucket_s: int,
                     buckets: int) -> dict[int, list[int]]:
    """Per item, occurrences per ``bucket_s`` seconds from ``start`` (``buckets`` values, zeros included)."""
    out = {i: [0] * buckets for i in item_ids}
    for r in errors.occurrence_counts(env, item_ids, start, bucket_s):
        if 0 <= r["b"] < buckets:
            out[r["item_id"]][r["b"]] += r["n"]
    return out


# -- error items and occurrences ----------------------------------------------------------------------


def seconds_iso(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat().replace("+00:00", "Z")


def item_json(item: ErrorItem) -> dict[str, Any]:
    return {"id": item.id, "counter": item.counter, "title": item.title, "level": item.level, "status": item.status,
            "environment": item.environment, "framework": item.framework, "platform": item.platform,
            "language": item.language, "total_occurrences": item.total_occurrences,
            "first_seen": seconds_iso(item.first_occurrence_timestamp),
            "last_seen": seconds_iso(item.last_occurrence_timestamp),
            "last_resolved": seconds_iso(item.last_resolved_timestamp), "last_muted": seconds_iso(item.last_muted_timestamp),
            "last_trace_id": item.last_trace_id}


def occurrence_json(row: dict[str, Any]) -> dict[str, Any]:
    """An occurrence as the errors page shows it: its exception chain's frames, message, request, person, server."""
    data = row.get("data") or {}
    body = data.get("body") if isinstance(data.get("body"), dict) else {}
    chain = body.get("trace_chain") or ([body["trace"]] if isinstance(body.get("trace"), dict) else [])
    exceptions = []
    for t in chain if isinstance(chain, list) else []:
        if not isinstance(t, dict):
            continue
        exc = t.get("exception") if isinstance(t.get("exception"), dict) else {}
        frames = [f for f in (t.get("frames") or []) if isinstance(f, dict)]
        exceptions.append({"class": exc.get("class"), "message": exc.get("message"), "frames": [
            {"filename": f.get("filename"), "lineno": f.get("lineno"), "method": f.get("method"), "code": f.get("code")}
            for f in frames]})
    message = body.get("message", {}).get("body") if isinstance(body.get("message"), dict) else None
    return {"id": row["id"], "item_id": row["item_id"], "uuid": row["uuid"], "level": row["level"],
            "timestamp": seconds_iso(row["ts_ms"] / 1000), "trace_id": row["trace_id"], "span_id": row["span_id"],
            "exceptions": exceptions, "message": message,
            "request": data.get("request") if isinstance(data.get("request"), dict) else None,
            "person": data.get("person") if isinstance(data.get("person"), dict) else None,
            "server": data.get("server") if isinstance(data.get("server"), dict) else None,
            "custom": data.get("custom"), "environment": data.get("environment"), "framework": data.get("framework")}


def trace_errors(errors: ErrorStore, env: str, trace_id: str) -> list[dict[str, Any]]:
    """A trace's error occurrences, each with its item's title and status (the trace view's errors tab)."""
    out = []
    for row in errors.trace_errors(env, trace_id):
        item = errors.item(env, row["item_id"])
        out.append({**occurrence_json(row), "title": item.title if item else None,
                    "item_status": item.status if item else None})
    return out
