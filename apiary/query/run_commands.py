"""``apiary runs list`` and ``apiary runs compare A B``: runs from a terminal or CI, over HTTP to a running server.

``compare`` exits 0 when no span slowed past the threshold given, 1 when one did (so CI fails on a latency
regression), and 2 when it could not compare (no key, unknown run, server unreachable).
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.parse
from typing import Any

from apiary.query.commands import ApiError, _client, _connection, _progress
from apiary.query.runs import PERCENTILES, slowed_past
from apiary.query.spec import SpecError
from apiary.query.terminal import parse_duration

EXIT_SLOWER, EXIT_ERROR = 1, 2


def _lookback(args: argparse.Namespace) -> str:
    return f"?time_range={parse_duration(args.last)}" if args.last else ""


def cmd_list(args: argparse.Namespace) -> int:
    client = _client(args)
    if client is None:
        return EXIT_ERROR
    try:
        doc = client.call("GET", "/api/runs" + _lookback(args))
    except (SpecError, ApiError) as exc:
        print(f"apiary runs list: {exc}", file=sys.stderr)
        return EXIT_ERROR
    if args.json:
        print(json.dumps(doc, indent=2))
        return 0
    rows = [("run", "first seen (UTC)", "last seen (UTC)", "spans", "services")]
    for r in doc["runs"]:
        rows.append((r["name"], _when(r["first_seen"]), _when(r["last_seen"]), str(r["spans"]), ", ".join(r["services"])))
    print(_table(rows, numeric={3}) if doc["runs"] else "no runs (spans with the resource attribute apiary.run)")
    return 0


def _when(iso: str) -> str:
    return iso.replace("T", " ").rstrip("Z")


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}"


def _signed(v: float | None, unit: str) -> str:
    return "-" if v is None else f"{v:+.1f}{unit}"


def format_compare(doc: dict[str, Any], flagged: set[tuple[str, str]], limit: int) -> str:
    p = doc["percentile"]
    head = ("", "service: span", "count A→B", "errors A→B", f"{p} A ms", f"{p} B ms", "change ms", "change", "score")
    rows = [head]
    for r in doc["spans"][:limit]:
        a, b, c = r["a"] or {}, r["b"] or {}, r["change"]
        mark = "!" if (r["service"], r["name"]) in flagged else "+" if r["in"] == "b" else "-" if r["in"] == "a" else ""
        rows.append((mark, f"{r['service']}: {r['name']}", f"{a.get('count', 0)}→{b.get('count', 0)}",
                     f"{a.get('errors', 0)}→{b.get('errors', 0)}", _ms(a.get(p)), _ms(b.get(p)),
                     _signed(c.get(f"{p}_ms"), ""), _signed(c.get(f"{p}_pct"), "%"), f"{r['score']:.3f}"))
    out = [f"A = {doc['a']['name']} ({doc['a']['spans']} spans, {_when(doc['a']['first_seen'])})   "
           f"B = {doc['b']['name']} ({doc['b']['spans']} spans, {_when(doc['b']['first_seen'])})",
           "", _table(rows, numeric={4, 5, 6, 7, 8})]
    if len(doc["spans"]) > limit:
        out.append(f"... {len(doc['spans']) - limit} more span names (--limit)")
    out.append("")
    out.append("! slowed past the threshold   + in B only   - in A only")
    for label, names in (("span names new in B", doc["new_spans"]), ("span names gone from B", doc["vanished_spans"])):
        if names:
            out.append(f"{label}: " + ", ".join(f"{n['service']}: {n['name']}" for n in names))
    for label, cols in (("attributes in A only", doc["only_in_a"]), ("attributes in B only", doc["only_in_b"])):
        if cols:
            out.append(f"{label}: " + ", ".join(cols))
    if doc["changed_columns"]:
        out.append("columns that changed most (BubbleUp, B against A): " +
                   ", ".join(f"{c['column']} {c['score']:.2f}" for c in doc["changed_columns"][:5]))
    return "\n".join(out)


def _table(rows: list[tuple[str, ...]], numeric: set[int]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.rjust(w) if i in numeric else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip()
                     for r in rows)


def cmd_compare(args: argparse.Namespace) -> int:
    client = _client(args)
    if client is None:
        return EXIT_ERROR
    query = {"a": args.a, "b": args.b, "percentile": args.percentile}
    try:
        if args.last:
            query["time_range"] = str(parse_duration(args.last))
        done = _progress("comparing")
        try:
            doc = client.call("GET", "/api/runs/compare?" + urllib.parse.urlencode(query))
        finally:
            done.set()
    except (SpecError, ApiError) as exc:
        print(f"apiary runs compare: {exc}", file=sys.stderr)
        return EXIT_ERROR
    gate = args.threshold_ms is not None or args.threshold_pct is not None
    slower = slowed_past(doc, args.percentile, args.threshold_ms, args.threshold_pct) if gate else []
    if args.json:
        print(json.dumps({**doc, "slowed_past_threshold": [{"service": r["service"], "name": r["name"]} for r in slower]},
                         indent=2))
    else:
        print(format_compare(doc, {(r["service"], r["name"]) for r in slower}, args.limit))
    if slower:
        what = " and ".join(t for t in (args.threshold_ms is not None and f"{args.threshold_ms:g} ms",
                                        args.threshold_pct is not None and f"{args.threshold_pct:g} %") if t)
        print(f"\n{len(slower)} span name(s) slowed past {what} at {args.percentile}, the worst: "
              f"{slower[0]['service']}: {slower[0]['name']}", file=sys.stderr)
        return EXIT_SLOWER
    return 0


def add_parser(sub: Any) -> None:
    runs = sub.add_parser("runs", help="list runs and compare two (telemetry tagged with apiary.run)")
    runs_sub = runs.add_subparsers(dest="runs_command", required=True)
    ls = runs_sub.add_parser("list", help="runs seen lately: name, first and last seen, spans, services")
    ls.add_argument("--last", default=None, help="how far back to look: 30m, 2h, 7d (default 7d)")
    _connection(ls)
    ls.set_defaults(func=cmd_list)
    c = runs_sub.add_parser(
        "compare", help="run B against run A per span name, the most changed first",
        description="Example: apiary runs compare main my-branch --threshold-ms 20  (exit 1 when a span's p50 slowed by "
                    "more than 20 ms; 2 when the runs cannot be compared)")
    c.add_argument("a", help="the baseline run")
    c.add_argument("b", help="the run compared with it")
    c.add_argument("--percentile", choices=PERCENTILES, default="p50", help="the latency compared and gated (default p50)")
    c.add_argument("--threshold-ms", type=float, default=None,
                   help="exit 1 when a span's percentile slowed by more than this many milliseconds")
    c.add_argument("--threshold-pct", type=float, default=None,
                   help="exit 1 when a span's percentile slowed by more than this percentage (with --threshold-ms: both)")
    c.add_argument("--last", default=None, help="how far back to look for the runs: 30m, 2h, 7d (default 7d)")
    c.add_argument("--limit", type=int, default=30, help="span rows printed (default 30)")
    _connection(c)
    c.set_defaults(func=cmd_compare)
