"""Memory under a client that invents attribute keys: every span brings keys no span had before.

One environment posts OTLP spans of ``--keys`` attributes, each key new (an id in its name, as a
careless instrumentation does), as fast as they are answered, for ``--duration`` seconds (at most
60). Printed every 10 s: spans accepted, the server's RSS (its process and decode workers), and the
columns its dataset lists (``/1/columns``); then the RSS growth per 1,000 spans after the first 10 s.
Before the dataset column cap (``--max-dataset-columns``, ``apiary/store/catalogue_cap.py``) the
catalogue, and the server, grew with every span; compare with an older tree through ``APIARY_BENCH_TREE``.

    python bench/invented_keys.py --duration 60
    python bench/invented_keys.py --duration 60 --store clickhouse
    APIARY_BENCH_TREE=/path/to/older/tree python bench/invented_keys.py --duration 60
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import os
import socket
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.fairness import keys, wide_span  # noqa: E402
from bench.ingest import tree_rss_kib  # noqa: E402
from bench.overload import BENCH_TREE, start_server, stop_server  # noqa: E402


def rss_mb(pid: int) -> float:
    """RSS of the server and its decode workers, in MiB."""
    return tree_rss_kib(pid) / 1024


def listed(port: int, key: str) -> int:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        c.request("GET", "/1/columns/flood", headers={"x-honeycomb-team": key})
        r = c.getresponse()
        body = r.read()
    finally:
        c.close()
    return len(json.loads(body)) if r.status == 200 else -1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument("--keys", type=int, default=200, help="new keys per span (under 256: an ordinary batch)")
    ap.add_argument("--store", choices=("duckdb", "clickhouse"), default="duckdb")
    args = ap.parse_args()
    args.duration = min(args.duration, 60.0)
    data = Path(tempfile.mkdtemp(prefix="apiary-invented-"))
    store = "duckdb" if args.store == "duckdb" else os.environ.get("APIARY_CLICKHOUSE_URL") or f"chdb://{data / 'ch'}"
    key = keys(data, "inventive", store)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = start_server(data, port, 0, ["--store", store])
    counter = itertools.count()  # each span's keys are named after its number: user<n>.<i>
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        headers = {"content-type": "application/x-protobuf", "x-honeycomb-team": key}
        accepted = refused = 0
        steady: tuple[int, float] | None = None  # spans accepted and RSS at 10 s
        start_rss = rss_mb(server.pid)
        print(f"invented keys ({args.store} store{', tree ' + BENCH_TREE if BENCH_TREE else ''}): one sender, "
              f"{args.keys} new keys per span, {args.duration:g} s; server RSS at start {start_rss:.0f} MiB")
        t0 = next_report = time.monotonic()
        end = t0 + args.duration
        while True:
            now = time.monotonic()
            if now >= next_report:
                rss = rss_mb(server.pid)
                if next_report > t0:  # the first 10 s are warm-up (DuckDB's buffers, caches filling)
                    steady = steady or (accepted, rss)
                print(f"  {now - t0:4.0f} s: {accepted:6} spans accepted ({refused} refused), RSS {rss:6.0f} MiB, "
                      f"columns listed {listed(port, key)}", flush=True)
                next_report += 10
            if now >= end:
                break
            try:
                conn.request("POST", "/v1/traces", wide_span(f"user{next(counter)}", args.keys), headers)
                r = conn.getresponse()
                r.read()
            except OSError:  # the server closed a connection idle past its header timeout: open another
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
                continue
            if r.status == 200:
                accepted += 1
            else:
                refused += 1
                time.sleep(float(r.getheader("retry-after") or 1))
        if steady:
            grown, spans = rss_mb(server.pid) - steady[1], accepted - steady[0]
            print(f"  after the first 10 s: RSS {grown:+.0f} MiB over {spans} spans, {grown / max(spans, 1) * 1000:+.1f} MiB "
                  f"per 1,000 spans")
    finally:
        stop_server(server, data)


if __name__ == "__main__":
    main()
