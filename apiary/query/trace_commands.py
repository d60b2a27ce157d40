"""``apiary traces search``: trace search from a terminal, over HTTP to a running server (as ``apiary query`` does)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Sequence

from apiary.query.commands import ApiError, _client, _connection, _progress
from apiary.query.spec import SpecError
from apiary.query.terminal import parse_duration, parse_where

EXAMPLE = ("Example: apiary traces search --span 'c: name = checkout' --span 'd: name = db-query' "
           "--span 'd: duration_ms >= 100' --span 'e: error = true' --match 'd under c and not e' --last 2h")


def build_request(*, spans: Sequence[str] = (), match: str | None = None, last: str | None = None,
                  trace_ids: Sequence[str] = (), min_trace_ms: float | None = None, max_trace_ms: float | None = None,
                  order: str = "newest", limit: int = 20) -> dict[str, Any]:
    """Flags -> the JSON request of ``POST /api/traces/search``; each ``--span 'NAME: COLUMN OP VALUE'`` adds
    one filter to the condition NAME (repeat a name to AND more filters on the same span)."""
    conditions: dict[str, dict[str, Any]] = {}
    for text in spans:
        name, sep, rest = text.partition(":")
        if not sep or not name.strip():
            raise SpecError(f"--span: cannot read {text!r}; write NAME: COLUMN OP VALUE, e.g. 'db: name = db-query'")
        where = parse_where(rest) if rest.strip() else None
        cond = conditions.setdefault(name.strip(), {"where": []})
        if where:
            cond["where"].append(where)
    doc: dict[str, Any] = {"spans": conditions, "order": order, "limit": limit}
    if match:
        doc["match"] = match
    if last:
        doc["time_range"] = parse_duration(last)
    if trace_ids:
        doc["trace_ids"] = list(trace_ids)
    if min_trace_ms is not None:
        doc["min_trace_duration_ms"] = min_trace_ms
    if max_trace_ms is not None:
        doc["max_trace_duration_ms"] = max_trace_ms
    return doc


def format_results(doc: dict[str, Any]) -> str:
    rows = [("trace id", "start (UTC)", "duration", "spans", "errors", "root")]
    for t in doc["traces"]:
        root = f"{t['root_service'] or '?'}: {t['root_name'] or '?'}" + ("  (root missing: earliest span)" if t["root_missing"] else "")
        rows.append((t["trace_id"], t["start"].replace("T", " ")[:23], f"{t['duration_ms']:.1f} ms", str(t["spans"]),
                     str(t["errors"]), root))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = ["  ".join(c.ljust(w) if i != 2 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))) + "  " + r[5]
             for r in rows]
    lines.append(f"\n{doc['returned']} of {doc['matched']} traces matched")
    return "\n".join(lines)


def cmd_search(args: argparse.Namespace) -> int:
    client = _client(args)
    if client is None:
        return 2
    try:
        body = build_request(spans=args.span, match=args.match, last=args.last, trace_ids=args.trace_id,
                             min_trace_ms=args.min_trace_ms, max_trace_ms=args.max_trace_ms, order=args.order,
                             limit=args.limit)
        done = _progress("searching")
        try:
            doc = client.call("POST", "/api/traces/search", body)
        finally:
            done.set()
    except (SpecError, ApiError) as exc:
        print(f"apiary traces search: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(doc, indent=2) if args.json else format_results(doc))
    return 0


def add_parser(sub: Any) -> None:
    traces = sub.add_parser("traces", help="search traces")
    traces_sub = traces.add_subparsers(dest="traces_command", required=True)
    s = traces_sub.add_parser("search", help="traces whose spans match conditions (Jaeger's search)", description=EXAMPLE)
    s.add_argument("--span", action="append", default=[], metavar="'NAME: COLUMN OP VALUE'",
                   help="a filter of the span condition NAME; repeat a NAME to add filters on the same span")
    s.add_argument("--match", default=None, help="how conditions combine: and, or, not, 'a under b' (default: all of them)")
    s.add_argument("--last", default=None, help="time range: 90s, 30m, 2h, 1d (default 2h)")
    s.add_argument("--trace-id", action="append", default=[], help="find this trace whatever its time; repeatable")
    s.add_argument("--min-trace-ms", type=float, default=None, help="the trace's duration (first start to last end) at least")
    s.add_argument("--max-trace-ms", type=float, default=None, help="the trace's duration at most")
    s.add_argument("--order", choices=("newest", "slowest"), default="newest")
    s.add_argument("--limit", type=int, default=20)
    _connection(s)
    s.set_defaults(func=cmd_search)
