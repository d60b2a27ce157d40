"""Comparing two runs (``apiary runs compare``) beside the queries a user would otherwise run by hand, same data, same run.

    python bench/runs.py --spans 500000                  # DuckDB, a fresh store under a temporary directory
    python bench/runs.py --spans 500000 --store clickhouse

Loads bench/query.py's synthetic spans (3 services, 20 routes, ~10 attributes) over 24 h, the first half tagged
``apiary.run = A``, the second ``apiary.run = B`` with one route 40 ms slower. Then times, in alternating rounds
(``bench.timing.interleaved_medians_ms``):

* compare: ``compare_runs`` (two breakdown queries and a BubbleUp, planned and shaped; no HTTP);
* its SQL: the statements it issued, replayed on the store: the ratio is the engine's own overhead;
* by hand: what the comparison replaces, the Honeycomb query a user would run per run (COUNT, P50/P90/P99 by
  ``service.name``, ``name``, WHERE ``apiary.run = X``), twice: the yardstick that moves with the machine's load.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from apiary.model.span import SpanBatch  # noqa: E402
from apiary.query.engine import run_query  # noqa: E402
from apiary.query.runs import compare_runs  # noqa: E402
from apiary.query.spec import parse_spec  # noqa: E402
from apiary.store.duckdb import DuckDBStore  # noqa: E402
from bench.query import CHUNK, DAY_US, ENV, make_chunk, replayed  # noqa: E402
from bench.timing import interleaved_medians_ms  # noqa: E402

SLOWED_ROUTE = "GET /api/route3"
DELAY_MS = 40.0


def tagged_chunk(rng: np.random.Generator, first: int, n: int, total: int, start_us: int) -> pa.Table:
    """bench/query.py's spans, the first half of the day run A, the second run B with one route slower."""
    t = make_chunk(rng, first, n, total, start_us)
    in_b = pa.array(np.arange(first, first + n) >= total // 2)
    slowed = pc.and_(in_b, pc.equal(t.column("name"), SLOWED_ROUTE))
    duration = pc.if_else(slowed, pc.add(t.column("duration_ms"), DELAY_MS), t.column("duration_ms"))
    t = t.set_column(t.schema.get_field_index("duration_ms"), "duration_ms", duration)
    return t.append_column("apiary.run", pc.if_else(in_b, "B", "A"))


def load(store: Any, total: int, start_us: int) -> None:
    rng = np.random.default_rng(42)
    for first in range(0, total, CHUNK):
        asyncio.run(store.append(ENV, SpanBatch(tagged_chunk(rng, first, min(CHUNK, total - first), total, start_us))))
    if store.dialect == "duckdb":
        store.query("CHECKPOINT")


def open_store(kind: str, data: Path) -> Any:
    if kind == "duckdb":
        return DuckDBStore(data / "spans.duckdb")
    from apiary.store.clickhouse.store import ClickHouseStore

    return ClickHouseStore(f"chdb://{data / 'chdb'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spans", type=int, default=500_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--store", choices=["duckdb", "clickhouse"], default="duckdb")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="apiary-bench-runs-") as tmp:
        store = open_store(args.store, Path(tmp))
        now = int(time.time())
        start_us = (now - 86_400 - 60) * 1_000_000
        t = time.perf_counter()
        load(store, args.spans, start_us)
        print(f"{args.spans:,} spans loaded into {args.store} in {time.perf_counter() - t:.1f} s", file=sys.stderr)

        def compare() -> Any:
            return compare_runs(store, ENV, "A", "B", now=now)

        def by_hand() -> Any:
            for run in ("A", "B"):
                spec = parse_spec({"calculations": [{"op": "COUNT"}, *({"op": p, "column": "duration_ms"} for p in ("P50", "P90", "P99"))],
                                   "filters": [{"column": "apiary.run", "op": "=", "value": run}],
                                   "breakdowns": ["service.name", "name"], "limit": 10_000,
                                   "start_time": start_us // 1_000_000, "end_time": start_us // 1_000_000 + DAY_US // 1_000_000 + 1})
                run_query(store, ENV, "__all__", spec, disable_series=True)

        doc = compare()
        top = doc["spans"][0]
        sql = replayed(store, compare)
        engine_ms, sql_ms, hand_ms = interleaved_medians_ms([compare, sql, by_hand], args.runs)
        print(f"{args.spans:,} spans on {args.store}, runs A and B of {args.spans // 2:,} spans each; median of {args.runs} rounds")
        print(f"  first row: {top['service']}: {top['name']}  p50 {top['change']['p50_ms']:+.1f} ms  score {top['score']:.3f}")
        print(f"  compare            {engine_ms:9,.0f} ms")
        print(f"  its SQL replayed   {sql_ms:9,.0f} ms   compare / its SQL  {engine_ms / sql_ms:5.2f}")
        print(f"  two queries by hand{hand_ms:9,.0f} ms   compare / by hand  {engine_ms / hand_ms:5.2f}")
        store.close_sync()


if __name__ == "__main__":
    main()
