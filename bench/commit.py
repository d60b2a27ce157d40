"""DuckDB store writes alone: throughput, CPU per span and latency, per storage layout.

Two steps, each timed on its own: the intake-log append an acknowledged request waits for (one
write and fsync per group), and the bulk load of the same group into DuckDB that follows off the
request path. A load waits for any checkpoint DuckDB runs in it, so the load-latency tail is where
the row group size and the checkpoint threshold show. Each layout writes groups of decoded
synthetic requests (the ingest benchmark's bodies) into a fresh store for a bounded time, from one
thread, as the store's loader does; decode is done beforehand and not timed.

    python bench/commit.py
    python bench/commit.py --layout 122880:64MB --layout 8192:16MB --seconds 25
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import apiary.store.duckdb.store as duckdb_store  # noqa: E402
from apiary.store.bulk_loader import Loaded  # noqa: E402
from apiary.receivers.otlp.traces import decode  # noqa: E402
from bench.synth import make_request  # noqa: E402


def run(layout: str, batches: list, per_commit: int, seconds: float) -> None:
    rows, threshold = layout.split(":")
    duckdb_store.ROW_GROUP_SIZE, duckdb_store.CHECKPOINT_THRESHOLD = int(rows), threshold
    data = Path(tempfile.mkdtemp(prefix="apiary-bench-commit-"))
    store = duckdb_store.DuckDBStore(data / "spans.duckdb")
    try:
        latencies: list[float] = []
        log_cpu = 0.0
        log_latencies: list[float] = []
        spans, i = 0, 0
        t0, c0 = time.perf_counter(), time.process_time()
        while time.perf_counter() - t0 < seconds:
            group = [("bench", batches[(i + k) % len(batches)]) for k in range(per_commit)]
            i += per_commit
            t, c = time.perf_counter(), time.process_time()
            first = store._intake.append([(env, b.arrived_us, b.ipc_stream()) for env, b in group])  # what a request waits for
            log_latencies.append(time.perf_counter() - t)
            log_cpu += time.process_time() - c
            t = time.perf_counter()
            store._load(group, Loaded(first + len(group) - 1))  # the loader thread's own call
            latencies.append(time.perf_counter() - t)
            spans += sum(b.num_rows for _, b in group)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0 - log_cpu
        store.cursor().execute("CHECKPOINT")  # untimed: so the file size below holds every span
    finally:
        store.close_sync()
        size = (data / "spans.duckdb").stat().st_size
        shutil.rmtree(data, ignore_errors=True)
    latencies.sort()
    log_latencies.sort()
    pick = lambda xs, q: xs[min(len(xs) - 1, int(len(xs) * q))] * 1000  # noqa: E731
    print(f"{int(rows):>9,} {threshold:>6} {spans / wall:>10,.0f} {log_cpu / spans * 1e6:>7.1f} "
          f"{pick(log_latencies, 0.5):>7.1f} {pick(log_latencies, 0.99):>7.1f} {cpu / spans * 1e6:>8.1f} "
          f"{pick(latencies, 0.5):>7.0f} {pick(latencies, 0.99):>7.0f} {latencies[-1] * 1000:>7.0f} {size / spans:>7.0f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layout", action="append", help="ROWS:THRESHOLD, e.g. 8192:16MB (repeatable)")
    ap.add_argument("--seconds", type=float, default=25.0, help="per layout (bounded)")
    ap.add_argument("--requests-per-commit", type=int, default=7, help="512-span requests per group commit")
    args = ap.parse_args()
    layouts = args.layout or ["122880:64MB", "32768:64MB", "16384:16MB", "8192:16MB"]
    rng = random.Random(1)
    batches = [decode(make_request(512, rng), False) for _ in range(64)]
    for b in batches:
        b.arrive()  # as the store's append stamps each batch it accepts
    print(f"groups of {args.requests_per_commit * 512:,} spans, {min(args.seconds, 300):.0f} s per layout, one thread")
    print(f"{'':>16} {'':>10} {'-- intake log append --':>23} {'---------- DuckDB load ----------':>33}")
    print(f"{'row group':>9} {'ckpt':>6} {'spans/s':>10} {'CPU us':>7} {'p50 ms':>7} {'p99 ms':>7} "
          f"{'CPU us':>8} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} {'B/span':>7}")
    for layout in layouts:
        run(layout, batches, args.requests_per_commit, min(args.seconds, 300.0))


if __name__ == "__main__":
    main()
