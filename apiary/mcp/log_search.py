"""Log search for one tool call: a CloudWatch filter pattern, or a Logs Insights query run to completion.

CloudWatch answers ``FilterLogEvents`` with tokens and ``StartQuery`` with a job to poll; an agent wants
one bounded answer. A filter pattern is scanned newest first in every named group (the store checks
what SQL can, `Pattern.matches` the rest), stopping at ``limit`` matches or `SCAN_BUDGET` lines per
group; an Insights query is compiled for the log store's dialect and run once, as ``StartQuery`` does.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Sequence

from apiary.query.insights import compile_query, fields_of_lookup_tables, to_sql
from apiary.receivers.cloudwatch.filter_pattern import parse
from apiary.store.base import LogStore

#: Lines read per log group for one filter-pattern call before answering with what was found.
SCAN_BUDGET = 200_000
MAX_MESSAGE_CHARS = 2000


def filter_events(logs: LogStore, env: str, groups: Sequence[str], pattern_text: str, start_ms: int, end_ms: int,
                  limit: int) -> dict[str, Any]:
    """The newest ``limit`` lines matching the pattern across ``groups``; `PatternError` for a bad pattern."""
    pattern = parse(pattern_text)
    prefilter = pattern.prefilter()
    found: list[dict[str, Any]] = []
    cut_short: list[str] = []
    filled = False  # a group gave ``limit`` matches: it may hold more
    scanned = 0
    for group in groups:
        before: tuple[int, int] | None = None
        kept = 0
        read = 0
        while kept < limit:
            chunk = limit + 1 if pattern.exact_in_sql else max(limit * 4, 2000)
            rows = logs.events(env, group, None, start_ms=start_ms, end_ms=end_ms, before=before, descending=True,
                               limit=chunk, message_filter=prefilter, detail=True).to_pylist()
            read += len(rows)
            for r in rows:
                if pattern.exact_in_sql or pattern.matches(r["message"]):
                    found.append(_event(group, r))
                    kept += 1
                    if kept == limit:
                        break
            if len(rows) < chunk:
                break
            before = (rows[-1]["timestamp_us"], rows[-1]["seq"])
            if read >= SCAN_BUDGET:
                cut_short.append(group)
                break
        scanned += read
        filled = filled or kept == limit
    found.sort(key=lambda e: e["_us"], reverse=True)
    more = len(found) > limit or filled
    events = [{k: v for k, v in e.items() if k != "_us"} for e in found[:limit]]
    doc: dict[str, Any] = {"events": events, "returned": len(events), "lines_read": scanned, "log_groups": list(groups)}
    if more or cut_short:
        doc["more"] = (f"{len(events)} newest matches shown; more may exist: narrow the time window "
                       f"(start_time/end_time) or the pattern")
    if cut_short:
        doc["scan_stopped_in"] = cut_short
    return doc


def run_insights(logs: LogStore, env: str, groups: Sequence[str], text: str, start_s: int, end_s: int,
                 limit: int) -> dict[str, Any]:
    """An Insights query's rows (at most ``limit``) and its counts; `QueryError` names what is wrong."""
    compiled = compile_query(text, dialect=logs.dialect, lookup_fields=fields_of_lookup_tables(logs, env))
    sql, params, counts_sql, counts_params = to_sql(compiled, env, list(groups), start_s, end_s)
    rows = logs.query(sql, params).to_pylist()
    counts = logs.query(counts_sql, counts_params).to_pylist()[0]
    shown = [{k: _value(v) for k, v in r.items() if v is not None} for r in rows[:limit]]
    doc: dict[str, Any] = {"fields": compiled.columns, "rows": shown,
                           "returned": len(shown), "total": len(rows), "records_matched": int(counts["matched"]),
                           "records_scanned": int(counts["scanned"]), "log_groups": list(groups)}
    if len(rows) > limit:
        doc["more"] = (f"{limit} of {len(rows)} rows shown; add `| limit N` or `| stats ...` to the query, "
                       "or raise limit (at most 500)")
    return doc


def _event(group: str, r: dict[str, Any]) -> dict[str, Any]:
    msg = r["message"] or ""
    out: dict[str, Any] = {"time": _iso_us(r["timestamp_us"]), "log_group": group, "log_stream": r["log_stream"],
                           "message": msg if len(msg) <= MAX_MESSAGE_CHARS else msg[:MAX_MESSAGE_CHARS] + "...",
                           "_us": r["timestamp_us"]}
    for k in ("trace_id", "span_id", "severity_text"):
        if r.get(k):
            out[k] = r[k]
    return out


def _value(v: Any) -> Any:
    if isinstance(v, datetime):
        return v.replace(tzinfo=timezone.utc).isoformat().replace("+00:00", "Z") if v.tzinfo is None else v.isoformat()
    if isinstance(v, str) and len(v) > MAX_MESSAGE_CHARS:
        return v[:MAX_MESSAGE_CHARS] + "..."
    return v


def _iso_us(us: int) -> str:
    return datetime.fromtimestamp(us / 1e6, timezone.utc).isoformat().replace("+00:00", "Z")
