"""The descendant trace search ("an error under route3") before and after a change, in one process.

Usage: ``python bench/descendant_before_after.py --data DIR --baseline TREE [--spans N] [--runs R]``

A child process imports the baseline tree's ``apiary`` (``APIARY_BENCH_TREE``, as ``bench/query.py``'s
``--baseline`` does), runs the search once on the DuckDB store in ``DIR`` and records the statements it sent
and its answer. This process then checks that this tree gives the same answer and times, interleaved in every
round (the machine's speed drifts within a minute, so runs made one after the other do not compare): the
baseline's statements replayed, this tree's statements replayed, and this tree's whole engine.
"""

from __future__ import annotations

import argparse
import os
import pickle
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.query import ENV, open_store, replayed  # noqa: E402  (first: it puts APIARY_BENCH_TREE's apiary in front)
from bench.timing import interleaved_medians_ms  # noqa: E402
from apiary.query.trace_search import search_traces  # noqa: E402


def descendant(start_s: int) -> dict[str, Any]:
    window = {"start_time": start_s, "end_time": start_s + 86_401}
    return {**window, "spans": {"a": {"name": "GET /api/route3"}, "e": {"error": True}}, "match": "e under a"}


def record(data: Path, spans: int, out: Path) -> None:
    """In the baseline's process: its statements (text, parameters) and its answer, pickled to ``out``."""
    store, start_us = open_store("duckdb", data, spans, None)
    issued: list[tuple[str, Any]] = []
    raw = store.query

    def recording(text: str, params: Any = None) -> Any:
        issued.append((text, params))
        return raw(text, params)
    store.query = recording
    try:
        answer = search_traces(store, ENV, descendant(start_us // 1_000_000)).data
    finally:
        store.close_sync()
    out.write_bytes(pickle.dumps((issued, answer)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True, help="bench/query.py's store directory")
    ap.add_argument("--baseline", type=Path, required=True, help="a tree (an export) holding the code before")
    ap.add_argument("--spans", type=int, default=10_000_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--record", type=Path, help=argparse.SUPPRESS)  # the child's part
    args = ap.parse_args()
    if args.record:
        record(args.data, args.spans, args.record)
        return
    with tempfile.TemporaryDirectory() as tmp:
        recorded = Path(tmp) / "baseline.pickle"
        subprocess.run([sys.executable, __file__, "--data", str(args.data), "--baseline", str(args.baseline),
                        "--spans", str(args.spans), "--record", str(recorded)],
                       env={**os.environ, "APIARY_BENCH_TREE": str(args.baseline.resolve())}, check=True)
        before, before_answer = pickle.loads(recorded.read_bytes())
    store, start_us = open_store("duckdb", args.data, args.spans, None)
    try:
        doc = descendant(start_us // 1_000_000)
        answer = search_traces(store, ENV, doc).data
        same = answer["matched"] == before_answer["matched"] and answer["traces"] == before_answer["traces"]
        print(f"{args.spans:,} spans, DuckDB, medians of {args.runs} interleaved rounds; "
              f"{answer['matched']:,} traces matched, the same answer before and after: {same}")

        def engine() -> Any:
            return search_traces(store, ENV, doc)

        def before_sql() -> Any:
            return [store.query(text, params) for text, params in before]

        b, a, e = interleaved_medians_ms([before_sql, replayed(store, engine), engine], args.runs)
        print(f"  before, its SQL {b:,.0f} ms ({len(before)} statements); after, its SQL {a:,.0f} ms "
              f"({a / b:.2f} x); after, the whole engine {e:,.0f} ms ({e / b:.2f} x the SQL before)")
    finally:
        store.close_sync()


if __name__ == "__main__":
    main()
