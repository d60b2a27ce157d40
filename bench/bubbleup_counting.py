"""BubbleUp's counting of the compared rows, before and after wave 6, in the same rounds as its own SQL.

    python bench/bubbleup_counting.py --spans 10000000 --data <bench/investigate.py's store> --runs 7

The case is bench/investigate.py's (a 1 h x 500-2000 ms rectangle on the 24 h heatmap against the rest of the
day, all columns). Four things are timed in turn within every round: the statements the engine sends, replayed
(its SQL); the engine counting each column by an Acero grouping on (side, value), as it did before (one thread);
the engine counting each column whole and over the selection, the baseline by difference, on one thread; and the
engine as it is (the same, on a thread per core). Each is printed as a ratio to its SQL: what is left above 1 is
the engine's own work, most of it this counting. The three engines' answers are checked to be the same first.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.query import ENV, open_store, replayed  # noqa: E402

import pyarrow as pa  # noqa: E402

import apiary.query.bubbleup as bubbleup  # noqa: E402
from apiary.query.spec import parse_spec  # noqa: E402
from bench.timing import interleaved_medians_ms  # noqa: E402

Counts = list[tuple[dict[Any, int], dict[Any, int]]]


def grouped(keys: pa.Table, facets: int) -> Counts:
    """The counting before wave 6: an Acero grouping on (side, value) per column."""
    out: Counts = []
    for k in range(facets):
        counted = keys.select(["_sel", f"k{k}"]).group_by(["_sel", f"k{k}"], use_threads=False).aggregate(
            [([], "count_all")])
        sel: dict[Any, int] = {}
        base: dict[Any, int] = {}
        for side, key, n in zip(counted.column("_sel").to_pylist(), counted.column(f"k{k}").to_pylist(),
                                counted.column("count_all").to_pylist()):
            (sel if side else base)[key] = int(n)
        out.append((sel, base))
    return out


def one_thread(keys: pa.Table, facets: int) -> Counts:
    """Today's counting (whole and selection, the baseline by difference) on the calling thread alone."""
    selected = keys.filter(keys.column("_sel").cast(pa.bool_()))
    out: Counts = []
    for k in range(facets):
        whole, sel = bubbleup._value_counts(keys.column(f"k{k}")), bubbleup._value_counts(selected.column(f"k{k}"))
        out.append((sel, {key: n - sel.get(key, 0) for key, n in whole.items() if n > sel.get(key, 0)}))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spans", type=int, default=10_000_000)
    ap.add_argument("--data", type=Path, default=Path("/tmp/apiary-bench-query"))
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--store", choices=["duckdb", "clickhouse"], default="duckdb")
    args = ap.parse_args()
    store, start_us = open_store("duckdb", args.data, args.spans, None)
    if args.store == "clickhouse":
        store.close_sync()
        store, start_us = open_store("clickhouse", args.data, args.spans, start_us)
    start = start_us // 1_000_000
    spec = parse_spec({"calculations": [{"op": "HEATMAP", "column": "duration_ms"}],
                       "start_time": start, "end_time": start + 86_401})
    selection = bubbleup.parse_selection({"start_time": start + 12 * 3600, "end_time": start + 13 * 3600,
                                          "column": "duration_ms", "min": 500, "max": 2000})
    threaded = bubbleup._arrow_counts

    def engine(count: Callable[[pa.Table, int], Counts]) -> Callable[[], Any]:
        def run() -> Any:
            bubbleup._arrow_counts = count
            try:
                return bubbleup.run_bubbleup(store, ENV, "__all__", spec, selection)
            finally:
                bubbleup._arrow_counts = threaded
        return run

    try:
        cases = {"its SQL replayed": replayed(store, engine(threaded)), "before: Acero grouping per column": engine(grouped),
                 "now, on one thread": engine(one_thread), "now (a thread per core)": engine(threaded)}
        answers = [f().data for f in list(cases.values())[1:]]
        assert answers[0] == answers[1] == answers[2], "the three countings disagree"
        medians = dict(zip(cases, interleaved_medians_ms(list(cases.values()), args.runs)))
        print(f"{store.count(ENV):,} spans, {args.store}, BubbleUp over 30 columns, medians of {args.runs} rounds "
              f"(the same answer from all three)")
        for label, ms in medians.items():
            print(f"  {label:36} {ms:8,.0f} ms  / its SQL {ms / medians['its SQL replayed']:.2f}")
    finally:
        store.close_sync()


if __name__ == "__main__":
    main()
