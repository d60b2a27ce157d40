"""Trace search and the critical path, each beside its own SQL replayed in the same run.

    python bench/trace_search.py --spans 1000000          # quick
    python bench/trace_search.py --spans 10000000         # the goal's size; the store is kept in --data and reused

Loads the spans ``bench/query.py`` loads (3 services, 20 routes, traces of 8
spans, 24 h) and one 100,000-span trace (``bench/critical_trace.py``, through
the OTLP decoder). Then, medians of ``--runs`` rounds, each case timed in turn
with the statements it sent to the store replayed directly (the ratio is the
engine's own overhead: planning, the ``under`` check in Python, shaping):

* every trace of the day, no condition: what grouping the spans by trace costs;
* cross-span: a trace with a ``GET /api/route3`` span and a span with
  ``http.status_code >= 500``;
* absence: a ``GET /api/route3`` span and no error anywhere in the trace;
* descendant: an error span under a ``GET /api/route3`` span (candidates from
  SQL, the parent links walked in Python);
* the critical path of the 100,000-span trace (``store.trace`` is its SQL).

Goals: trace searches <= 1 s, critical path <= 300 ms, engine overhead <= 1.2x.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from apiary.model.critical_path import critical_path_of_table  # noqa: E402
from apiary.query.trace_search import search_traces  # noqa: E402
from apiary.receivers.otlp.traces import decode  # noqa: E402
from bench import critical_trace  # noqa: E402
from bench.query import ENV, open_store, replayed  # noqa: E402
from bench.timing import interleaved_medians_ms  # noqa: E402


def add_big_trace(store: Any, marker: Path) -> None:
    """The 100,000-span trace, once per store directory."""
    if marker.exists():
        return
    start_ns = (int(time.time()) - 3600) * 1_000_000_000
    for body in critical_trace.requests(start_ns):
        asyncio.run(store.append(ENV, decode(body, False)))
    marker.write_text("loaded")


def cases(window: dict[str, int]) -> list[tuple[str, dict[str, Any]]]:
    route3 = {"name": "GET /api/route3"}
    failed = {"where": [{"column": "http.status_code", "op": ">=", "value": 500}]}
    return [
        ("every trace, no condition, 24 h (the grouping)", {**window}),
        ("cross-span: route3 and a 5xx span, 24 h", {**window, "spans": {"a": route3, "e": failed}, "match": "a and e"}),
        ("absence: route3 and no error, 24 h", {**window, "spans": {"a": route3, "e": {"error": True}}, "match": "a and not e"}),
        ("  the same, slowest first", {**window, "spans": {"a": route3, "e": {"error": True}}, "match": "a and not e",
                                       "order": "slowest"}),
        ("descendant: an error under route3, 24 h", {**window, "spans": {"a": route3, "e": {"error": True}}, "match": "e under a"}),
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spans", type=int, default=10_000_000)
    ap.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "apiary-bench-trace-search")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--store", choices=["duckdb", "clickhouse"], default="duckdb")
    ap.add_argument("--load-only", action="store_true", help="build the store and stop")
    ap.add_argument("--case", action="append", default=[],
                    help="run only the cases whose label contains this (repeatable; 'critical' for the critical path): "
                         "keeps each run within a minute at 10 M spans")
    args = ap.parse_args()
    args.data.mkdir(parents=True, exist_ok=True)
    store, start_us = open_store(args.store, args.data, args.spans, None)
    add_big_trace(store, args.data / f"{args.store}-{args.spans}.big-trace")
    if args.load_only:
        store.close_sync()
        return
    start = start_us // 1_000_000
    window = {"start_time": start, "end_time": start + 86_400 + 1}
    print(f"\n{store.count(ENV):,} spans, {args.store}, median of {args.runs} rounds (ms)")
    print(f"{'case':44} {'engine':>9} {'its SQL':>9} {'ratio':>6} {'matched':>9}")
    wanted = lambda label: not args.case or any(c in label for c in args.case)  # noqa: E731
    for label, doc in cases(window):
        if not wanted(label):
            continue
        run: Callable[[], Any] = lambda doc=doc: search_traces(store, ENV, doc)  # noqa: E731
        matched = run().data["matched"]
        e, d = interleaved_medians_ms([run, replayed(store, run)], args.runs)
        print(f"{label:44} {e:9.1f} {d:9.1f} {e / d:6.2f} {matched:9,}")

    if not wanted("critical path"):
        store.close_sync()
        return
    fetch = lambda: store.trace(ENV, critical_trace.TRACE_ID)  # noqa: E731
    table = fetch()
    path = critical_path_of_table(table)
    assert len(set(path["span_ids"])) == critical_trace.ON_PATH, "the planted critical path was not found"
    with_path = lambda: critical_path_of_table(fetch())  # noqa: E731
    e, d, c = interleaved_medians_ms([with_path, fetch, lambda: critical_path_of_table(table)], args.runs)
    print(f"{'critical path, 100,000-span trace (fetch+path)':44} {e:9.1f} {d:9.1f} {e / d:6.2f}")
    print(f"{'  the critical path alone':44} {c:9.1f}")
    store.close_sync()


if __name__ == "__main__":
    main()
