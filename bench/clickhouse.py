"""Figures for docs/scale-out.md: ingest, trace lookup and a query on ClickHouse (chdb here), DuckDB as the same-run baseline.

    python bench/clickhouse.py --rows 1000000            # chdb in a temporary directory
    APIARY_CLICKHOUSE_URL=clickhouse://127.0.0.1:8123/apiary_bench python bench/clickhouse.py

A benchmark, never a test: it prints figures and gates nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from apiary.model.span import CORE_FIELDS, DATASET_COLUMN, OVERFLOW_COLUMN, SpanBatch  # noqa: E402
from apiary.query.engine import run_query  # noqa: E402
from apiary.query.spec import QuerySpec  # noqa: E402
from bench.timing import median_ms  # noqa: E402

BATCH = 500
ROUTES = np.array(["/api/activities/home", "/api/activities/notifications", "/api/messages", "/api/profile"])


def make_batch(seq: int, start_us: int, rows: int = BATCH) -> SpanBatch:
    rng = np.random.default_rng(seq)
    n = rows
    cols: dict[str, Any] = {}
    # A trace's spans start within two seconds of each other; traces spread over the hour.
    ts = np.repeat(start_us + rng.integers(0, 3_600_000_000, -(-n // 10)), 10)[:n] + rng.integers(0, 2_000_000, n)
    trace_ids = [f"{seq:016x}{i // 10:016x}" for i in range(n)]  # ten spans per trace
    for f in CORE_FIELDS:
        cols[f.name] = pa.nulls(n, f.type)
    cols["timestamp"] = pa.array(ts, pa.timestamp("us", tz="UTC"))
    cols["duration_ms"] = pa.array(rng.exponential(40.0, n))
    cols["trace.trace_id"] = pa.array(trace_ids)
    cols["trace.span_id"] = pa.array([f"{seq:08x}{i:08x}" for i in range(n)])
    cols["name"] = pa.array(ROUTES[rng.integers(0, len(ROUTES), n)])
    cols["service.name"] = pa.array(["backend-flask"] * n)
    cols["span.kind"] = pa.array(["server"] * n)
    cols["status_code"] = pa.array(rng.choice([0, 0, 0, 2], n))
    cols[DATASET_COLUMN] = pa.array(["backend-flask"] * n)
    cols[OVERFLOW_COLUMN] = pa.nulls(n, pa.string())
    cols["http.status_code"] = pa.array(rng.choice([200, 200, 200, 404, 500], n))
    cols["app.user_id"] = pa.array([f"user{u}" for u in rng.integers(0, 1000, n)])
    cols["app.result_length"] = pa.array(rng.integers(0, 100, n))
    return SpanBatch(pa.table(cols))


async def ingest(store: Any, batches: list[SpanBatch], concurrency: int = 32) -> float:
    queue = list(batches)
    started = time.perf_counter()

    async def worker() -> None:
        while queue:
            await store.append("bench", queue.pop())

    await asyncio.gather(*[worker() for _ in range(concurrency)])
    return time.perf_counter() - started


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    args = ap.parse_args()
    from apiary.store.clickhouse import ClickHouseStore
    from apiary.store.duckdb import DuckDBStore

    tmp = Path(tempfile.mkdtemp(prefix="apiary-measure-"))
    url = os.environ.get("APIARY_CLICKHOUSE_URL") or f"chdb://{tmp / 'ch'}"
    start_us = int(datetime.now(timezone.utc).timestamp() * 1e6) - 3_600_000_000
    n_batches = max(1, args.rows // BATCH)
    batches = [make_batch(i, start_us) for i in range(n_batches)]
    rows = n_batches * BATCH
    spec = QuerySpec.model_validate({"calculations": [{"op": "COUNT"}, {"op": "P90", "column": "duration_ms"},
                                                      {"op": "HEATMAP", "column": "duration_ms"}],
                                     "breakdowns": ["name"], "filters": [{"column": "http.status_code", "op": "=", "value": 500}],
                                     "time_range": 7200})
    probe = "0000000000000007" + f"{3:016x}"
    results: dict[str, dict[str, float]] = {}
    for kind in ("duckdb", "clickhouse"):
        store = DuckDBStore(tmp / "spans.duckdb") if kind == "duckdb" else ClickHouseStore(url)
        seconds = asyncio.run(ingest(store, batches))
        r = results[kind] = {"ingest spans/s": rows / seconds}
        r["trace() ms"] = median_ms(lambda: store.trace("bench", probe), 5)
        assert store.trace("bench", probe).num_rows == 10
        r["query ms"] = median_ms(lambda: run_query(store, "bench", "backend-flask", spec), 3)
        if kind == "clickhouse":
            scan = ("SELECT * FROM spans WHERE `trace.trace_id` = {t:String}")
            r["trace by scan ms"] = median_ms(lambda: store.query(scan, {"t": probe}), 5)
            r["round trip (SELECT 1) ms"] = median_ms(lambda: store.query("SELECT 1"), 5)
            # The alternative to group commit: one async insert per request, acknowledged when flushed.
            few = batches[:200]
            t = time.perf_counter()
            for b in few:
                store.client.insert_arrow("spans", store._physical_table("bench2", b, [False]),
                                          settings={"async_insert": 1, "wait_for_async_insert": 1})
            r["async_insert spans/s (200 requests, serial)"] = len(few) * BATCH / (time.perf_counter() - t)
            t = time.perf_counter()
            for b in few:
                store.client.insert_arrow("spans", store._physical_table("bench3", b, [False]))
            r["plain insert per request spans/s (200, serial)"] = len(few) * BATCH / (time.perf_counter() - t)
        store.close_sync()
    print(f"rows={rows} batches of {BATCH}, 32 concurrent appenders; store={url}")
    keys = sorted({k for r in results.values() for k in r})
    print(f"{'':48} {'duckdb':>12} {'clickhouse':>12} {'ratio ch/duck':>14}")
    for k in keys:
        d, c = results["duckdb"].get(k), results["clickhouse"].get(k)
        ratio = f"{c / d:14.2f}" if d and c else ""
        print(f"{k:48} {d if d is not None else float('nan'):12.1f} {c if c is not None else float('nan'):12.1f} {ratio}")


if __name__ == "__main__":
    main()
