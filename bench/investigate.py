"""Investigation features (BubbleUp, ...) on bench/query.py's synthetic spans, each beside its own SQL replayed.

    python bench/investigate.py --spans 1000000                   # a quick run
    python bench/investigate.py --spans 10000000                  # the goal's size (reuses bench/query.py's store)
    python bench/investigate.py --spans 1000000 --store clickhouse
    python bench/investigate.py --section bubbleup

Each section times a feature through its engine entry point (plan, SQL, shaping; no HTTP) and the
statements that run issued, replayed directly in the same rounds (``bench.timing.interleaved_medians_ms``):
their ratio is the engine's own overhead. BubbleUp is also timed against the heatmap query it explains, in the
same rounds, as a yardstick that moves with the machine's load. The spans are bench/query.py's (3 services, 20 routes,
log-normal durations over 24 h, ~30 columns, ``app.user_id`` inside the JSON overflow column), loaded
once into ``--data`` and reused by both scripts.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from apiary.query.bubbleup import parse_selection, plan_bubbleup, run_bubbleup  # noqa: E402
from apiary.query.engine import run_query  # noqa: E402
from apiary.query.spec import parse_spec  # noqa: E402
from bench.query import ENV, open_store, replayed  # noqa: E402
from bench.timing import interleaved_medians_ms  # noqa: E402

#: Goals from the issue "Investigate like Honeycomb and Jaeger".
BUBBLEUP_GOAL_MS = 1500
OVERHEAD_GOAL = 1.2


def bubbleup_section(store: Any, start: int, runs: int) -> list[str]:
    """A rectangle on the 24 h heatmap of duration_ms: one hour, 500-2000 ms, against the rest of the day, all columns."""
    spec = parse_spec({"calculations": [{"op": "HEATMAP", "column": "duration_ms"}], "start_time": start, "end_time": start + 86_401})
    selection = parse_selection({"start_time": start + 12 * 3600, "end_time": start + 13 * 3600,
                                 "column": "duration_ms", "min": 500, "max": 2000})
    plan = plan_bubbleup(store, ENV, "__all__", spec, selection)

    def engine() -> Any:
        return run_bubbleup(store, ENV, "__all__", spec, selection)

    def heatmap() -> Any:  # the chart the rectangle is drawn on: how long the user already waited, same data, same run
        return run_query(store, ENV, "__all__", spec)

    first = engine()
    sql = replayed(store, engine)
    engine_ms, sql_ms, heatmap_ms = interleaved_medians_ms([engine, sql, heatmap], runs)
    doc = first.data
    top = ", ".join(f"{c['column']} {c['score']:.2f}" for c in doc["columns"][:3])
    return [
        f"BubbleUp: heatmap rectangle (1 h x 500-2000 ms) against 24 h, {len(plan.columns)} columns, "
        f"{len(first.sql)} statements",
        f"  selection {doc['selection_count']:,} spans, baseline {doc['baseline_count']:,} "
        f"({doc['baseline_compared']:,} compared); top: {top}",
        f"  engine {engine_ms:,.0f} ms (goal <= {BUBBLEUP_GOAL_MS:,} ms: {'met' if engine_ms <= BUBBLEUP_GOAL_MS else 'missed'})",
        f"  its SQL replayed {sql_ms:,.0f} ms; ratio {engine_ms / sql_ms:.2f} "
        f"(goal <= {OVERHEAD_GOAL}: {'met' if engine_ms / sql_ms <= OVERHEAD_GOAL else 'missed'})",
        f"  the HEATMAP(duration_ms) query it explains {heatmap_ms:,.0f} ms; BubbleUp / heatmap {engine_ms / heatmap_ms:.2f}",
    ]


#: Named sections, run in this order; another feature adds its own.
SECTIONS: dict[str, Callable[[Any, int, int], list[str]]] = {
    "bubbleup": bubbleup_section,
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
    print(f"{args.spans:,} spans, {args.store}, medians of {args.runs} rounds")
    try:
        for name in args.section or list(SECTIONS):
            t = time.perf_counter()
            for line in SECTIONS[name](store, start_us // 1_000_000, args.runs):
                print(line, flush=True)
            print(f"  ({name}: {time.perf_counter() - t:.0f} s)", file=sys.stderr)
    finally:
        store.close_sync()


if __name__ == "__main__":
    main()
