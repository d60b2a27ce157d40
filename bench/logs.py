"""CloudWatch Logs: PutLogEvents events/s (10,000-event batches) and FilterLogEvents latency, Apiary beside moto_server.

Every server runs on this machine, on loopback, driven by the same boto3 calls:
Apiary on each store of --stores (DuckDB; ClickHouse through chdb, its engine in the server process),
optionally Apiary as of an earlier commit (--baseline-rev) or from an earlier source tree
(--baseline DIR, e.g. made with ``git archive 19c0b83 | tar -x -C DIR``) on each of the same stores,
and moto. With a baseline, all servers run at once and are called in turn within every round (each
PutLogEvents batch goes to each server in turn; each filter round calls each server in turn), as
this machine's speed drifts too much for one server after the other; without one, as before.
    python bench/logs.py [--events 10000000] [--moto-events 1000000] [--filters 5] [--stores duckdb,chdb]
                         [--baseline-rev HEAD~1 | --baseline ../apiary-before]

Prints the N used. moto keeps events in Python lists and scans them per filter call, so it
is given at most --moto-events of the same events; the ratio compares unequal N in moto's favour.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

import boto3
import httpx
from botocore.config import Config

ROOT = Path(__file__).resolve().parent.parent
BATCH = 10_000
PATTERNS = {"term": "ERROR", "json": '{ $.level = "ERROR" && $.latency > 900 }', "space": "[ip, method, path, status = 5*, ms]"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait(url: str, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(300):
        if proc.poll() is not None:
            raise SystemExit(f"{url} exited with {proc.returncode}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not start")


def batches(n: int, start_ms: int) -> list[list[dict[str, object]]]:
    out, batch = [], []
    for i in range(n):
        k = i % 3
        if k == 0:
            msg = json.dumps({"level": "ERROR" if i % 7 == 0 else "INFO", "latency": i % 1000, "path": f"/a/{i % 50}"})
        elif k == 1:
            msg = f"10.0.{i % 256}.{i % 200} GET /p/{i % 97} {[200, 404, 500, 503][i % 4]} {i % 800}"
        else:
            msg = f"{'ERROR' if i % 11 == 0 else 'INFO'} handled request {i} in {i % 300} ms"
        batch.append({"timestamp": start_ms + i // 10, "message": msg})
        if len(batch) == BATCH:
            out.append(batch)
            batch = []
    if batch:
        out.append(batch)
    return out


def run(name: str, client: object, data: list[list[dict[str, object]]], filters: int) -> dict[str, float]:
    c = client  # type: ignore[assignment]
    c.create_log_group(logGroupName="bench")
    c.create_log_stream(logGroupName="bench", logStreamName="s")
    t0 = time.perf_counter()
    for b in data:
        c.put_log_events(logGroupName="bench", logStreamName="s", logEvents=b)
    put_s = time.perf_counter() - t0
    n = sum(len(b) for b in data)
    out = {"put_events_per_s": n / put_s}
    for kind, pattern in PATTERNS.items():
        times = []
        for _ in range(filters):
            t = time.perf_counter()
            r = c.filter_log_events(logGroupName="bench", filterPattern=pattern, limit=100)
            times.append((time.perf_counter() - t) * 1000)
            assert r["events"], f"{name}: {kind} pattern matched nothing"
        out[f"filter_{kind}_ms"] = statistics.median(times)
    return out


def run_interleaved(servers: list[tuple[str, object, list[list[dict[str, object]]]]], filters: int) -> dict[str, dict[str, float]]:
    """``run`` for several servers at once: every batch and every filter round goes to each server in turn."""
    put_s = {name: 0.0 for name, _, _ in servers}
    for name, c, _ in servers:
        c.create_log_group(logGroupName="bench")  # type: ignore[attr-defined]
        c.create_log_stream(logGroupName="bench", logStreamName="s")  # type: ignore[attr-defined]
    for i in range(max(len(data) for _, _, data in servers)):
        for name, c, data in servers:
            if i < len(data):
                t = time.perf_counter()
                c.put_log_events(logGroupName="bench", logStreamName="s", logEvents=data[i])  # type: ignore[attr-defined]
                put_s[name] += time.perf_counter() - t
    out = {name: {"put_events_per_s": sum(len(b) for b in data) / put_s[name]} for name, _, data in servers}
    for kind, pattern in PATTERNS.items():
        times: dict[str, list[float]] = {name: [] for name, _, _ in servers}
        for _ in range(filters):
            for name, c, _ in servers:
                t = time.perf_counter()
                r = c.filter_log_events(logGroupName="bench", filterPattern=pattern, limit=100)  # type: ignore[attr-defined]
                times[name].append((time.perf_counter() - t) * 1000)
                assert r["events"], f"{name}: {kind} pattern matched nothing"
        for name in times:
            out[name][f"filter_{kind}_ms"] = statistics.median(times[name])
    return out


@contextlib.contextmanager
def apiary_server(tmp: Path, store: str, source: Path = ROOT) -> Iterator[object]:
    """``apiary serve`` on ``store`` (``duckdb`` or ``chdb``) from the code in ``source``; yields a boto3 logs client."""
    data_dir = tmp / f"data-{store}-{source.name}"
    store_args = ["--store", f"chdb://{tmp / f'chdb-{source.name}'}"] if store == "chdb" else []
    env = {**os.environ, "PYTHONPATH": str(source), "APIARY_XRAY_PORT": "0"}
    key = subprocess.run([sys.executable, "-m", "apiary", "keys", "create", "bench", "--data", str(data_dir), *store_args],
                         check=True, capture_output=True, text=True, cwd=source, env=env).stdout.strip()
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "apiary", "serve", "--data", str(data_dir), "--port", str(port),
                             *store_args], cwd=source, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait(f"http://127.0.0.1:{port}/api/health", proc)
        yield boto3.session.Session().client("logs", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                                             aws_access_key_id=key, aws_secret_access_key=key, config=CFG)
    finally:
        proc.terminate()
        proc.wait(60)


def checkout(rev: str, tmp: Path) -> Path:
    """The ``apiary`` package as of ``rev``, unpacked under ``tmp`` (run with the same installed dependencies)."""
    dest = tmp / f"rev-{rev.replace('/', '_').replace('~', '_')}"
    dest.mkdir()
    archive = subprocess.run(["git", "archive", rev, "apiary"], cwd=ROOT, check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


CFG = Config(retries={"max_attempts": 1}, read_timeout=600)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--moto-events", type=int, default=1_000_000,
                    help="events given to moto (at most --events): it scans Python lists, 10 M would take most of an hour")
    ap.add_argument("--filters", type=int, default=5, help="FilterLogEvents calls per pattern (median reported)")
    ap.add_argument("--stores", default="duckdb,chdb", help="Apiary's stores to measure, comma-separated")
    ap.add_argument("--baseline-rev", default="", help="also measure Apiary as of this git revision, on DuckDB")
    ap.add_argument("--baseline", type=Path, help="an earlier Apiary source tree: measure it on each store too, interleaved")
    args = ap.parse_args()
    start_ms = int(time.time() * 1000) - 3_600_000
    data = batches(args.events, start_ms)
    moto_n = min(args.moto_events, args.events)
    print(f"N = {args.events:,} events for Apiary, {moto_n:,} for moto, in PutLogEvents calls of up to {BATCH:,}; "
          f"FilterLogEvents limit=100, median of {args.filters} calls per pattern")
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        runs = [(f"apiary {store}", store, ROOT) for store in args.stores.split(",") if store]
        if args.baseline_rev:
            runs.append((f"{args.baseline_rev} duckdb", "duckdb", checkout(args.baseline_rev, tmp)))
        if args.baseline:
            stores = [store for store in args.stores.split(",") if store]
            runs += [(f"before {store}", store, args.baseline.resolve()) for store in stores]
            with contextlib.ExitStack() as stack:
                servers = [(name, stack.enter_context(apiary_server(tmp, store, source)), data)
                           for name, store, source in runs]
                results = run_interleaved(servers, args.filters)
            for store in stores:
                now, before = results[f"apiary {store}"], results[f"before {store}"]
                print(f"{store}: now/before " + ", ".join(
                    f"{k} {(now[k] / before[k] if k.startswith('put') else before[k] / now[k]):.2f}x" for k in now)
                    + " (> 1: this tree faster)")
        for name, store, source in ([] if args.baseline else runs):
            with apiary_server(tmp, store, source) as client:
                results[name] = run(name, client, data, args.filters)
        moto_port = free_port()
        moto_proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-p", str(moto_port)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait(f"http://127.0.0.1:{moto_port}/", moto_proc)
            moto = boto3.session.Session().client("logs", endpoint_url=f"http://127.0.0.1:{moto_port}",
                                                  region_name="us-east-1", aws_access_key_id="testing",
                                                  aws_secret_access_key="testing", config=CFG)
            m = run("moto", moto, data[:-(-moto_n // BATCH)], args.filters)
        finally:
            moto_proc.terminate()
            moto_proc.wait(30)
    names = list(results)
    print(f"{'':22}" + "".join(f"{n:>18}" for n in names) + f"{'moto_server':>14}  ratio to moto (> 1: Apiary faster)")
    for k in m:
        ratios = [results[n][k] / m[k] if k.startswith("put") else m[k] / results[n][k] for n in names]
        print(f"{k:22}" + "".join(f"{results[n][k]:18.1f}" for n in names) + f"{m[k]:14.1f}  "
              + "  ".join(f"{r:.1f}x" for r in ratios))


if __name__ == "__main__":
    main()
