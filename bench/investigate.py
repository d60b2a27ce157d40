"""Investigation at scale: BubbleUp, trace search and the critical path, each beside its own SQL replayed.

    python bench/investigate.py --spans 1000000                   # a quick run
    python bench/investigate.py --spans 10000000                  # the goal's size (reuses bench/query.py's store)
    python bench/investigate.py --spans 1000000 --store clickhouse
    python bench/investigate.py --section bubbleup --section search
    APIARY_BENCH_TREE=/path/to/older/tree python bench/investigate.py ...   # that tree's apiary, this script

The spans are bench/query.py's (3 services, 20 routes, traces of 8 spans, log-normal durations over 24 h,
~30 columns, ``app.user_id`` inside the JSON overflow column), loaded once into ``--data`` and reused, plus
one 100,000-span trace (``bench/critical_trace.py``, through the OTLP decoder) added once per store.

Each case is timed through its engine entry point (plan, SQL, shaping; no HTTP) and the statements that run
issued, replayed directly, in the same rounds (``bench.timing.interleaved_medians_ms``, the two swapping places
every other round): their ratio is the engine's own overhead. Every section also times the 24 h
``HEATMAP(duration_ms)`` query in those rounds, a yardstick that moves with the machine's load: "/ heatmap"
compares runs made under different loads.

* ``bubbleup``: a rectangle on that heatmap (1 h x 500-2000 ms) against the rest of the day, all columns;
* ``search``: every trace of the day (what grouping by trace costs), cross-span (a ``GET /api/route3`` span
  and a span with ``http.status_code >= 500``), absence (route3 and no error anywhere), descendant (an error
  under route3: candidates from SQL, the parent links walked in arrays);
* ``critical``: the critical path of the 100,000-span trace (``store.trace`` is its SQL).

Goals (the issue "Investigate like Honeycomb and Jaeger"): BubbleUp <= 1.5 s, trace searches <= 1 s,
critical path <= 300 ms, engine overhead <= 1.2x.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.query import ENV, open_store, replayed  # noqa: E402  (first: it puts APIARY_BENCH_TREE's apiary in front)

from apiary.model.critical_path import critical_path_of_table  # noqa: E402
from apiary.query.bubbleup import parse_selection, plan_bubbleup, run_bubbleup  # noqa: E402
from apiary.query.engine import run_query  # noqa: E402
from apiary.query.spec import parse_spec  # noqa: E402
from apiary.query.trace_search import search_traces  # noqa: E402
from apiary.receivers.otlp.traces import decode  # noqa: E402
from bench import critical_trace  # noqa: E402
from bench.timing import interleaved_medians_ms  # noqa: E402

BUBBLEUP_GOAL_MS = 1500
SEARCH_GOAL_MS = 1000
CRITICAL_GOAL_MS = 300
OVERHEAD_GOAL = 1.2


def _met(value: float, goal: float) -> str:
    return "met" if value <= goal else "missed"


class Bench:
    """The store, the day's window and the yardstick query, shared by the sections."""

    def __init__(self, store: Any, start: int, runs: int) -> None:
        self.store, self.start, self.runs = store, start, runs
        self.heatmap_spec = parse_spec({"calculations": [{"op": "HEATMAP", "column": "duration_ms"}],
                                        "start_time": start, "end_time": start + 86_401})

    def heatmap(self) -> Any:
        return run_query(self.store, ENV, "__all__", self.heatmap_spec)

    def timed(self, engine: Callable[[], Any], sql: Callable[[], Any]) -> tuple[float, float, float]:
        """(engine, its SQL, heatmap) medians, timed in turn within every round, the engine and its SQL swapping
        places every other round (the second of the two would otherwise always read what the first just read)."""
        e, s, h = interleaved_medians_ms([engine, sql, self.heatmap], self.runs, alternate=True)
        return e, s, h


def bubbleup_section(b: Bench) -> list[str]:
    """A rectangle on the 24 h heatmap of duration_ms: one hour, 500-2000 ms, against the rest of the day, all columns."""
    spec = b.heatmap_spec
    selection = parse_selection({"start_time": b.start + 12 * 3600, "end_time": b.start + 13 * 3600,
                                 "column": "duration_ms", "min": 500, "max": 2000})
    plan = plan_bubbleup(b.store, ENV, "__all__", spec, selection)

    def engine() -> Any:
        return run_bubbleup(b.store, ENV, "__all__", spec, selection)

    first = engine()
    engine_ms, sql_ms, heatmap_ms = b.timed(engine, replayed(b.store, engine))
    doc = first.data
    top = ", ".join(f"{c['column']} {c['score']:.3f}" for c in doc["columns"][:3])
    return [
        f"BubbleUp: heatmap rectangle (1 h x 500-2000 ms) against 24 h, {len(plan.columns)} columns, "
        f"{len(first.sql)} statements",
        f"  selection {doc['selection_count']:,} spans, baseline {doc['baseline_count']:,} "
        f"({doc['baseline_compared']:,} compared); top: {top}",
        f"  engine {engine_ms:,.0f} ms (goal <= {BUBBLEUP_GOAL_MS:,} ms: {_met(engine_ms, BUBBLEUP_GOAL_MS)})",
        f"  its SQL replayed {sql_ms:,.0f} ms; ratio {engine_ms / sql_ms:.2f} "
        f"(goal <= {OVERHEAD_GOAL}: {_met(engine_ms / sql_ms, OVERHEAD_GOAL)})",
        f"  the HEATMAP(duration_ms) query it explains {heatmap_ms:,.0f} ms; BubbleUp / heatmap {engine_ms / heatmap_ms:.2f}",
    ]


def search_cases(window: dict[str, int]) -> list[tuple[str, dict[str, Any]]]:
    route3 = {"name": "GET /api/route3"}
    failed = {"where": [{"column": "http.status_code", "op": ">=", "value": 500}]}
    error = {"error": True}
    return [
        ("every trace, no condition (the grouping)", {**window}),
        ("cross-span: route3 and a 5xx span", {**window, "spans": {"a": route3, "e": failed}, "match": "a and e"}),
        ("absence: route3 and no error", {**window, "spans": {"a": route3, "e": error}, "match": "a and not e"}),
        ("  the same, slowest first", {**window, "spans": {"a": route3, "e": error}, "match": "a and not e",
                                       "order": "slowest"}),
        ("descendant: an error under route3", {**window, "spans": {"a": route3, "e": error}, "match": "e under a"}),
    ]


def search_section(b: Bench) -> Iterator[str]:
    """Line by line, as each case is measured: on ClickHouse at 10 M spans a case takes minutes on a busy machine."""
    window = {"start_time": b.start, "end_time": b.start + 86_401}
    yield (f"Trace search over 24 h (ms; medians): {'engine':>8} {'its SQL':>8} {'ratio':>6} {'/ heatmap':>9} "
           f"{'matched':>9}  goal <= {SEARCH_GOAL_MS:,} ms")
    for label, doc in search_cases(window):
        def engine(doc: dict[str, Any] = doc) -> Any:
            return search_traces(b.store, ENV, doc)

        matched = engine().data["matched"]
        e, s, h = b.timed(engine, replayed(b.store, engine))
        yield f"  {label:37} {e:8,.0f} {s:8,.0f} {e / s:6.2f} {e / h:9.2f} {matched:9,}  {_met(e, SEARCH_GOAL_MS)}"
    yield f"  (the HEATMAP(duration_ms) yardstick: {h:,.0f} ms in the last case's rounds)"


def add_big_trace(store: Any, marker: Path) -> None:
    """The 100,000-span trace, once per store directory."""
    if marker.exists():
        return
    start_ns = (int(time.time()) - 3600) * 1_000_000_000
    for body in critical_trace.requests(start_ns):
        asyncio.run(store.append(ENV, decode(body, False)))
    marker.write_text("loaded")


def critical_section(b: Bench) -> list[str]:
    def fetch() -> Any:
        return b.store.trace(ENV, critical_trace.TRACE_ID)

    table = fetch()
    path = critical_path_of_table(table)
    assert len(set(path["span_ids"])) == critical_trace.ON_PATH, "the planted critical path was not found"
    e, s, h = b.timed(lambda: critical_path_of_table(fetch()), fetch)
    alone = interleaved_medians_ms([lambda: critical_path_of_table(table)], b.runs)[0]
    return [
        f"Critical path of the {critical_trace.SPANS:,}-span trace ({critical_trace.ON_PATH:,} spans on it)",
        f"  fetch + path {e:,.0f} ms (goal <= {CRITICAL_GOAL_MS} ms: {_met(e, CRITICAL_GOAL_MS)}); the fetch (its SQL) "
        f"{s:,.0f} ms, ratio {e / s:.2f}; the path alone {alone:,.0f} ms; / heatmap {e / h:.2f}",
    ]


#: Named sections, run in this order.
SECTIONS: dict[str, Callable[[Bench], Iterable[str]]] = {
    "bubbleup": bubbleup_section,
    "search": search_section,
    "critical": critical_section,
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spans", type=int, default=10_000_000)
    ap.add_argument("--data", type=Path, default=Path("/tmp/apiary-bench-query"), help="bench/query.py's store directory")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--store", choices=["duckdb", "clickhouse"], default="duckdb")
    ap.add_argument("--section", action="append", choices=sorted(SECTIONS), help="run only these (repeatable)")
    args = ap.parse_args()
    args.data.mkdir(parents=True, exist_ok=True)
    store, start_us = open_store("duckdb", args.data, args.spans, None)
    if args.store == "clickhouse":
        store.close_sync()
        store, start_us = open_store("clickhouse", args.data, args.spans, start_us)
    add_big_trace(store, args.data / f"{args.store}-{args.spans}.big-trace")
    print(f"{store.count(ENV):,} spans, {args.store}, medians of {args.runs} rounds")
    bench = Bench(store, start_us // 1_000_000, args.runs)
    try:
        for name in args.section or list(SECTIONS):
            t = time.perf_counter()
            for line in SECTIONS[name](bench):
                print(line, flush=True)
            print(f"  ({name}: {time.perf_counter() - t:.0f} s)", file=sys.stderr)
    finally:
        store.close_sync()


if __name__ == "__main__":
    main()
