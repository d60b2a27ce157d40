"""What other environments' columns cost one environment's loads: the span table's width.

DuckDB's insert and commit do work per column of the table, not per column of the batch, so a small
batch costs more in a wide table. Each step here has more flooding environments send wide spans
(each granted up to ``--env-columns`` typed columns), then times the calm environment's 20-span
export made visible to a read (append, then a read that has it loaded) and the fetch of one of its traces, against the same before
any flood, and prints the width of the table the calm environment's spans go into. On DuckDB each
environment has tables of its own, so the calm one's stays narrow; so has it on ClickHouse (``--store chdb``)
since schema version 3 (a store without ``span_table``, from before, has one ``spans`` table that every
flooding environment widens).

    python bench/table_width.py --rounds 40
    python bench/table_width.py --rounds 40 --store chdb
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from apiary.receivers.otlp.traces import SpanLimits, decode  # noqa: E402
from apiary.store import read_scope  # noqa: E402
from apiary.store.duckdb import DuckDBStore  # noqa: E402
from bench.fairness import wide_span  # noqa: E402
from bench.synth import make_request  # noqa: E402


def calm_width(store: Any) -> int:
    """Columns of the table the calm environment's spans go into (its own view on DuckDB, read acting for it)."""
    if store.dialect == "duckdb":
        def described() -> int:
            read_scope.act_for("calm")
            return store.query("SELECT count(*) AS n FROM (DESCRIBE spans)").column(0)[0].as_py()
        return contextvars.copy_context().run(described)
    table = store.span_table("calm") if hasattr(store, "span_table") else "spans"
    return store.query("SELECT count() AS n FROM system.columns WHERE database = currentDatabase() "
                       "AND table = {t:String}", {"t": table}).column(0)[0].as_py()


async def calm_rounds(store: Any, batches: list, rounds: int) -> list[float]:
    times = []
    for i in range(rounds):
        t0 = time.perf_counter()
        await store.append("calm", batches[i % len(batches)])
        await asyncio.to_thread(store.datasets, "calm")  # a read of the calm environment: its batch is loaded
        times.append((time.perf_counter() - t0) * 1000)
    return times


def trace_fetches(store: Any, trace_ids: list[str], rounds: int) -> list[float]:
    """Times (ms) of fetching the calm environment's traces, as the trace view does."""
    times = []
    for i in range(rounds):
        t0 = time.perf_counter()
        store.trace("calm", trace_ids[i % len(trace_ids)])
        times.append((time.perf_counter() - t0) * 1000)
    return times


async def main_async(args: argparse.Namespace) -> None:
    rng = random.Random(3)
    limits = SpanLimits(1000, 65535)
    calm = [decode(make_request(20, rng), False, limits) for _ in range(8)]
    data = Path(tempfile.mkdtemp(prefix="apiary-bench-width-"))
    if args.store == "chdb":
        from apiary.store.clickhouse import ClickHouseStore
        store: Any = ClickHouseStore(f"chdb://{data / 'chdb'}", max_env_columns=args.env_columns)
    else:
        store = DuckDBStore(data / "spans.duckdb", max_env_columns=args.env_columns)
    try:
        await calm_rounds(store, calm, 5)  # the calm environment's own columns
        base = await calm_rounds(store, calm, args.rounds)
        trace_ids = [t for t in calm[0].table.column("trace.trace_id").unique().to_pylist() if t][:8]
        base_trace = await asyncio.to_thread(trace_fetches, store, trace_ids, args.rounds)
        print(f"table width ({args.store}): the calm environment's 20-span export until a read sees it, "
              f"{args.rounds} rounds per step")
        print(f"  before any flood, {calm_width(store)} columns: p50 {statistics.median(base):6.1f} ms; "
              f"trace fetch p50 {statistics.median(base_trace):6.1f} ms")
        for flooders in range(1, args.flooders + 1):
            env = f"flood{flooders}"
            for n in range(args.wide_spans):  # one at a time: an environment may queue about one such span
                await store.append(env, decode(wide_span(f"{env}.{n}", args.attributes), False, limits))
                await asyncio.to_thread(store.datasets, env)
            times = await calm_rounds(store, calm, args.rounds)
            traces = await asyncio.to_thread(trace_fetches, store, trace_ids, args.rounds)
            print(f"  after {flooders} flooding environment(s), calm's table {calm_width(store)} columns: "
                  f"p50 {statistics.median(times):6.1f} ms ({statistics.median(times) / statistics.median(base):.2f}x before); "
                  f"trace fetch p50 {statistics.median(traces):6.1f} ms "
                  f"({statistics.median(traces) / statistics.median(base_trace):.2f}x before)")
    finally:
        await store.close()
        shutil.rmtree(data, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=40)
    ap.add_argument("--flooders", type=int, default=4)
    ap.add_argument("--wide-spans", type=int, default=2, help="wide spans each flooding environment sends")
    ap.add_argument("--attributes", type=int, default=1000)
    ap.add_argument("--env-columns", type=int, default=250, help="typed columns an environment may take")
    ap.add_argument("--store", choices=["duckdb", "chdb"], default="duckdb", help="chdb: ClickHouse in-process")
    asyncio.run(main_async(ap.parse_args()))


if __name__ == "__main__":
    main()
