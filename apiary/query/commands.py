"""``apiary query`` and ``apiary queries ...``: talk to a running server over HTTP (it holds the DuckDB file)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from apiary.ports import DEFAULT_PORT
from apiary.query import terminal
from apiary.query.spec import SpecError


class ApiError(Exception):
    pass


class Client:
    def __init__(self, url: str, key: str) -> None:
        self.url, self.key = url.rstrip("/"), key

    def call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"X-Honeycomb-Team": self.key, "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=600) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            try:
                message = json.load(exc).get("error", exc.reason)
            except ValueError:
                message = exc.reason
            raise ApiError(f"{message} (HTTP {exc.code})") from None
        except urllib.error.URLError as exc:
            raise ApiError(f"cannot reach {self.url}: {exc.reason} (is `apiary serve` running?)") from None
        return json.loads(raw) if raw else None

    def run(self, dataset: str, spec: dict[str, Any]) -> dict[str, Any]:
        ds = urllib.parse.quote(dataset, safe="")
        qid = self.call("POST", f"/1/queries/{ds}", spec)["id"]
        return self.call("POST", f"/1/query_results/{ds}", {"query_id": qid})


def _progress(label: str) -> threading.Event:
    """After a second, show the query is still running (on stderr, only on a terminal)."""
    done = threading.Event()
    if not sys.stderr.isatty():
        return done

    def tick() -> None:
        started = time.monotonic()
        while not done.wait(0.25):
            if time.monotonic() - started > 1:
                print(f"\r{label} ... {time.monotonic() - started:4.1f}s", end="", file=sys.stderr, flush=True)
        if time.monotonic() - started > 1:
            print("\r" + " " * 40 + "\r", end="", file=sys.stderr, flush=True)

    threading.Thread(target=tick, daemon=True).start()
    return done


def _client(args: argparse.Namespace) -> Client | None:
    key = args.key or os.environ.get("APIARY_KEY") or os.environ.get("HONEYCOMB_API_KEY")
    if not key:
        print(f"apiary {args.command}: give a read key with --key or APIARY_KEY", file=sys.stderr)
        return None
    return Client(args.url, key)


def _spec(args: argparse.Namespace) -> dict[str, Any]:
    return terminal.build_spec(calcs=args.calc, wheres=args.where, group_by=args.group_by, orders=args.order,
                               havings=args.having, limit=args.limit, last=args.last, granularity=args.granularity,
                               any_filter=args.any, heatmap=args.heatmap)


def _print_result(args: argparse.Namespace, spec: dict[str, Any], doc: dict[str, Any]) -> None:
    if args.json:
        print(json.dumps(doc, indent=2))
        return
    data = doc["data"]
    for c in spec.get("calculations", []):
        if c["op"] == "HEATMAP":
            print(terminal.heatmap(f"HEATMAP({c['column']})", data))
            print()
    print(terminal.table(spec, data))
    if doc.get("elapsed_ms") is not None:
        print(f"\n{len(data['results'])} rows in {doc['elapsed_ms']:.0f} ms  (result {doc['id']})", file=sys.stderr)


def cmd_query(args: argparse.Namespace) -> int:
    client = _client(args)
    if client is None:
        return 2
    try:
        spec = _spec(args)
        if args.save:
            client.call("POST", "/api/queries/saved", {"name": args.save, "dataset": args.dataset, "query": spec})
        done = _progress("querying")
        try:
            doc = client.run(args.dataset, spec)
        finally:
            done.set()
    except (SpecError, ApiError) as exc:
        print(f"apiary query: {exc}", file=sys.stderr)
        return 1
    _print_result(args, spec, doc)
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    client = _client(args)
    if client is None:
        return 2
    try:
        rows = client.call("GET", f"/api/queries/history?limit={args.limit}")["history"]
    except ApiError as exc:
        print(f"apiary queries history: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for r in rows:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r["ran_at"]))
        outcome = f"error: {r['error']}" if r["error"] else f"{r['result_rows']} rows"
        print(f"{when}  {r['elapsed_ms']:8.1f} ms  {r['dataset']}  {json.dumps(r['query'], separators=(',', ':'))}  ({outcome})")
    return 0


def cmd_saved(args: argparse.Namespace) -> int:
    client = _client(args)
    if client is None:
        return 2
    try:
        rows = client.call("GET", "/api/queries/saved")["saved"]
    except ApiError as exc:
        print(f"apiary queries list: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for r in rows:
        print(f"{r['name']}  [{r['dataset']}]  {json.dumps(r['query'], separators=(',', ':'))}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    client = _client(args)
    if client is None:
        return 2
    name = urllib.parse.quote(args.name, safe="")
    try:
        saved = client.call("GET", f"/api/queries/saved/{name}")
        doc = client.call("POST", f"/api/queries/saved/{name}/run")
    except ApiError as exc:
        print(f"apiary queries run: {exc}", file=sys.stderr)
        return 1
    _print_result(args, saved["query"], doc)
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    client = _client(args)
    if client is None:
        return 2
    try:
        client.call("DELETE", f"/api/queries/saved/{urllib.parse.quote(args.name, safe='')}")
    except ApiError as exc:
        print(f"apiary queries delete: {exc}", file=sys.stderr)
        return 1
    print(f"deleted {args.name}")
    return 0


def _connection(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", default=os.environ.get("APIARY_URL", f"http://127.0.0.1:{DEFAULT_PORT}"),
                   help="the running server (env APIARY_URL)")
    p.add_argument("--key", default=None, help="a read key (env APIARY_KEY)")
    p.add_argument("--json", action="store_true", help="print the raw JSON answer")


def add_parsers(sub: Any) -> None:
    q = sub.add_parser("query", help="run a Honeycomb-style query against a running server",
                       description="Example: apiary query --dataset backend-flask --calc 'P90(duration_ms)' --calc COUNT "
                                   "--where 'http.status_code != 200' --group-by http.route --order 'P90(duration_ms) desc' --last 2h")
    q.add_argument("--dataset", default="__all__", help="dataset (service.name), default __all__ = every dataset")
    q.add_argument("--calc", action="append", default=[], help="COUNT, P90(duration_ms), COUNT_DISTINCT(col) ... repeatable")
    q.add_argument("--where", action="append", default=[], help="'COLUMN OP VALUE', e.g. 'http.status_code >= 500'; repeatable")
    q.add_argument("--any", action="store_true", help="match any --where (OR) instead of all (AND)")
    q.add_argument("--group-by", action="append", default=[], help="breakdown column; repeatable")
    q.add_argument("--order", action="append", default=[], help="'P90(duration_ms) desc' or 'http.route asc'; repeatable")
    q.add_argument("--having", action="append", default=[], help="'COUNT > 10'; repeatable")
    q.add_argument("--limit", type=int, default=None, help="result rows (default 100, at most 10000)")
    q.add_argument("--last", default=None, help="time range: 90s, 30m, 2h, 1d (default 2h)")
    q.add_argument("--granularity", type=int, default=None, help="seconds per time bucket")
    q.add_argument("--heatmap", default=None, metavar="COLUMN", help="add HEATMAP(COLUMN) and draw it")
    q.add_argument("--save", default=None, metavar="NAME", help="also save the query under this name")
    _connection(q)
    q.set_defaults(func=cmd_query)

    qs = sub.add_parser("queries", help="query history and saved queries")
    qs_sub = qs.add_subparsers(dest="queries_command", required=True)
    h = qs_sub.add_parser("history", help="queries run, newest first, with their run time")
    h.add_argument("--limit", type=int, default=20)
    _connection(h)
    h.set_defaults(func=cmd_history)
    ls = qs_sub.add_parser("list", help="saved queries")
    _connection(ls)
    ls.set_defaults(func=cmd_saved)
    run = qs_sub.add_parser("run", help="run a saved query")
    run.add_argument("name")
    _connection(run)
    run.set_defaults(func=cmd_run)
    rm = qs_sub.add_parser("delete", help="delete a saved query")
    rm.add_argument("name")
    _connection(rm)
    rm.set_defaults(func=cmd_delete)

    from apiary.query import bubbleup_text

    bubbleup_text.add_parser(sub, _connection)
