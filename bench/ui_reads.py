"""The UI's overview reads (``apiary.query.overview``) on each store: home page statistics, recent traces, the
service map's nodes and edges, in ms, against a same-run baseline: one grouped scan of the environment's rows
(``Store.span_counts``), the cheapest read that touches every row the overview reads do.

Spans are written straight into the store (no server): traces of five spans over four services, spread over
the last hour.

    python bench/ui_reads.py --spans 200000 --store both

A benchmark, never a test: it prints figures and gates nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from apiary.model.builder import BatchBuilder  # noqa: E402
from apiary.model.span import SpanBatch  # noqa: E402
from apiary.query import overview  # noqa: E402
from bench.timing import interleaved_medians_ms  # noqa: E402

ENV = "bench"
#: (service, parent index within the trace, duration ms): a page load calling the API, which calls two stores.
SHAPE = [("frontend", None, 200.0), ("api", 0, 120.0), ("postgres", 1, 30.0), ("redis", 1, 2.0), ("api", 1, 10.0)]


def traces(first: int, count: int, now_us: int) -> SpanBatch:
    b = BatchBuilder(count * len(SHAPE))
    row = 0
    for t in range(first, first + count):
        start = now_us - (t * 7919) % 3_500_000_000
        for i, (service, parent, duration) in enumerate(SHAPE):
            b.core["timestamp"][row] = start + i * 1000
            b.core["duration_ms"][row] = duration + t % 13
            b.core["trace.trace_id"][row] = f"{t:032x}"
            b.core["trace.span_id"][row] = f"{t:012x}{i:04x}"
            if parent is not None:
                b.core["trace.parent_id"][row] = f"{t:012x}{parent:04x}"
            b.core["name"][row] = f"{service}-op{i}"
            b.core["service.name"][row] = service
            b.core["error"][row] = service == "postgres" and t % 50 == 0
            b.dataset[row] = service
            row += 1
    return b.build()


def open_store(kind: str, tmp: Path) -> Any:
    if kind == "duckdb":
        from apiary.store.duckdb import DuckDBStore

        return DuckDBStore(tmp / "spans.duckdb")
    from apiary.store.clickhouse import ClickHouseStore

    return ClickHouseStore(f"chdb://{tmp / 'clickhouse'}")


async def fill(store: Any, spans: int) -> None:
    now_us = int(time.time() * 1_000_000)
    per = 2000
    for first in range(0, spans // len(SHAPE), per):
        await store.append(ENV, traces(first, min(per, spans // len(SHAPE) - first), now_us))


def measure(kind: str, spans: int, runs: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(kind, Path(tmp))
        t = time.perf_counter()
        asyncio.run(fill(store, spans))
        load_s = time.perf_counter() - t
        end = datetime.now(timezone.utc) + timedelta(seconds=1)
        start = end - timedelta(hours=1)
        reads = {
            "baseline: span_counts": lambda: store.span_counts(ENV),
            "dataset_stats": lambda: overview.dataset_stats(store, ENV),
            "recent_traces (50)": lambda: overview.recent_traces(store, ENV, 50),
            "service_nodes (1 h)": lambda: overview.service_nodes(store, ENV, start, end),
            "service_edges (1 h)": lambda: overview.service_edges(store, ENV, start, end),
        }
        medians = interleaved_medians_ms(list(reads.values()), runs)
        print(f"{kind}: {spans:,} spans loaded in {load_s:.1f} s; median of {runs}")
        for (name, _), ms in zip(reads.items(), medians):
            print(f"  {name:24} {ms:9.1f} ms  {ms / medians[0]:6.2f}x baseline")
        asyncio.run(store.close())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--spans", type=int, default=200_000)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--store", choices=["duckdb", "chdb", "both"], default="both")
    args = p.parse_args()
    for kind in (["duckdb", "chdb"] if args.store == "both" else [args.store]):
        measure(kind, args.spans, args.runs)


if __name__ == "__main__":
    main()
