"""``apiary bubbleup``: flags -> a BubbleUp request to a running server, its answer -> a ranked text table."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone
from typing import Any

from apiary.query import terminal
from apiary.query.spec import SpecError


def parse_time(text: str, flag: str) -> float:
    """Unix seconds, or an ISO 8601 time (UTC unless it says otherwise)."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise SpecError(f"{flag}: {text!r} is neither unix seconds nor an ISO 8601 time like 2026-12-06T12:00:00") from None
    return (when if when.tzinfo else when.replace(tzinfo=timezone.utc)).timestamp()


def build_request(args: argparse.Namespace) -> dict[str, Any]:
    spec = terminal.build_spec(wheres=args.where, last=args.last, any_filter=args.any)
    if args.start or args.end:
        if args.last:
            raise SpecError("give --last or --start/--end, not both")
        if not (args.start and args.end):
            raise SpecError("give both --start and --end")
        spec["start_time"], spec["end_time"] = (int(parse_time(args.start, "--start")), int(parse_time(args.end, "--end")) + 1)
    if args.select_column:  # what the heatmap shows; the query itself needs no calculation
        spec["calculations"] = [{"op": "HEATMAP", "column": args.select_column}]
    selection: dict[str, Any] = {}
    if args.select_column:
        selection["column"] = args.select_column
    if args.min is not None:
        selection["min"] = args.min
    if args.max is not None:
        selection["max"] = args.max
    if args.select_start:
        selection["start_time"] = parse_time(args.select_start, "--select-start")
    if args.select_end:
        selection["end_time"] = parse_time(args.select_end, "--select-end")
    if args.select_where:
        selection["filters"] = [terminal.parse_where(w) for w in args.select_where]
    return {"dataset": args.dataset, "query": spec, "selection": selection}


def _label(entry: dict[str, Any]) -> str:
    if "lower" in entry:
        return f"{terminal._cell(entry['lower'])} - {terminal._cell(entry['upper'])}"
    if "present" in entry:
        return "(any value)"
    return terminal._cell(entry["value"])


def render(doc: dict[str, Any], columns: int = 10, values: int = 5) -> str:
    """The most different columns first; under each, its values (or buckets) that differ most between the sides."""
    lines = [f"{doc['selection_count']:,} selected events against {doc['baseline_count']:,} in the rest of the query"]
    if not doc["columns"]:
        lines.append("nothing to compare: " + ("no events in the selection" if not doc["selection_count"]
                                                else "the selection holds every event of the query"))
        return "\n".join(lines)
    for col in doc["columns"][:columns]:
        lines += ["", f"{col['score']:.2f}  {col['column']}  ({col['kind']}, {col['type']})"]
        pairs = list(zip(col["selection"], col["baseline"]))
        pairs = [p for p in pairs if p[0]["count"] or p[1]["count"]]
        pairs.sort(key=lambda p: -abs(p[0]["share"] - p[1]["share"]))
        shown = pairs[:values]
        width = max([len(_label(s)) for s, _ in shown] + [5])
        lines.append(f"      {'value'.ljust(width)}  {'selection':>17}  {'baseline':>17}")
        for s, b in shown:
            lines.append(f"      {_label(s).ljust(width)}  {s['count']:>9,} {s['share']:>6.1%}  {b['count']:>9,} {b['share']:>6.1%}")
        if len(pairs) > values:
            lines.append(f"      ... {len(pairs) - values} more")
    if len(doc["columns"]) > columns:
        lines += ["", f"... {len(doc['columns']) - columns} more columns (--columns N shows more)"]
    return "\n".join(lines)


def cmd_bubbleup(args: argparse.Namespace) -> int:
    from apiary.query.commands import ApiError, _client, _progress

    client = _client(args)
    if client is None:
        return 2
    try:
        body = build_request(args)
        done = _progress("comparing")
        try:
            doc = client.call("POST", "/api/bubbleup", body)
        finally:
            done.set()
    except (SpecError, ApiError) as exc:
        print(f"apiary bubbleup: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(doc, indent=2))
        return 0
    print(render(doc, args.columns, args.values))
    print(f"\n{len(doc['columns'])} columns compared in {doc['elapsed_ms']:.0f} ms", file=sys.stderr)
    return 0


def add_parser(sub: Any, connection: Any) -> None:
    p = sub.add_parser("bubbleup", help="which columns set a selection of a query's events apart from the rest",
                       description="Example: apiary bubbleup --dataset backend-flask --where 'http.method = GET' "
                                   "--select-column duration_ms --min 500 --max 2000 --last 2h")
    p.add_argument("--dataset", default="__all__", help="dataset (service.name), default __all__ = every dataset")
    p.add_argument("--where", action="append", default=[], help="the query's filters: 'COLUMN OP VALUE'; repeatable")
    p.add_argument("--any", action="store_true", help="match any --where (OR) instead of all (AND)")
    p.add_argument("--last", default=None, help="the query's time range: 90s, 30m, 2h, 1d (default 2h)")
    p.add_argument("--start", default=None, help="the query's start: unix seconds or ISO 8601 (with --end)")
    p.add_argument("--end", default=None, help="the query's end: unix seconds or ISO 8601 (with --start)")
    p.add_argument("--select-column", default=None, metavar="COLUMN", help="the numeric column the selection bounds")
    p.add_argument("--min", type=float, default=None, help="selected: COLUMN >= MIN")
    p.add_argument("--max", type=float, default=None, help="selected: COLUMN <= MAX")
    p.add_argument("--select-start", default=None, help="selected: events from this time (unix seconds or ISO 8601)")
    p.add_argument("--select-end", default=None, help="selected: events before this time")
    p.add_argument("--select-where", action="append", default=[], help="selected: events matching 'COLUMN OP VALUE'; repeatable")
    p.add_argument("--columns", type=int, default=10, help="columns printed, most different first (default 10)")
    p.add_argument("--values", type=int, default=5, help="values printed per column (default 5)")
    connection(p)
    p.set_defaults(func=cmd_bubbleup)
