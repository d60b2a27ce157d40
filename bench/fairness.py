"""Fairness between environments: one floods with 100,000-attribute spans, another ingests and reads.

The calm environment sends a small OTLP export (20 spans) and then reads (``/api/datasets`` counts,
then a Honeycomb COUNT query), in a loop, first alone and then while ``--flooders`` threads of the
flooding environment post 100,000-attribute spans (new keys in each) as fast as they are answered.
Printed: the calm environment's ingest and read p50/p99 alone and while flooded, the ratios (goal
p99 <= 2x), whether every read held every acknowledged span, the flood's answers, and the cores the
server (its process, and its decode workers) kept busy in each phase.

    python bench/fairness.py --duration 60 --flooders 2
    python bench/fairness.py --duration 60 --flooders 2 --store clickhouse   # ClickHouse in-process (chdb)
    python bench/fairness.py --duration 60 --flooders 0 --store clickhouse   # the control: no flood at all
    python bench/fairness.py --duration 60 --pairs 3   # three pairs in turn, p99s pooled (one pair's ratio varies a lot)
    APIARY_BENCH_TREE=/path/to/older/tree python bench/fairness.py ...     # that tree's server, this script
    python bench/fairness.py --duration 10 --flood-only   # what an answer to the flood costs the server

``--store clickhouse`` serves from ClickHouse: ``APIARY_CLICKHOUSE_URL`` when set, else chdb in the
bench's temporary directory.

Phases of 60 s, not 20: on each MergeTree table, ClickHouse's periodic cleanup after merges (the table
setting ``cleanup_delay_period``, 30 s) holds that table's inserts for 40-80 ms; with merges stopped it
does not. A pair of 20 s phases after a fresh start puts the first cleanup in the second phase only, and
that alone made the second phase's p99 1.5-1.75 x the first's with no flood at all (``--flooders 0``);
60 s phases hold about two cleanups each.
"""

from __future__ import annotations

import argparse
import collections
import http.client
import json
import os
import random
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest  # noqa: E402
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue  # noqa: E402

from bench.ingest import tree_cpu_s  # noqa: E402
from bench.overload import BENCH_TREE, apiary_cli, pct, post_reading_answer, start_server, stop_server  # noqa: E402
from bench.synth import make_request  # noqa: E402


def wide_span(prefix: str, attributes: int) -> bytes:
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.append(KeyValue(key="service.name", value=AnyValue(string_value="flood")))
    span = rs.scope_spans.add().spans.add()
    span.trace_id = random.randbytes(16)
    span.span_id = random.randbytes(8)
    span.name = "wide"
    span.start_time_unix_nano = time.time_ns()
    span.end_time_unix_nano = span.start_time_unix_nano + 1_000_000
    for i in range(attributes):
        span.attributes.append(KeyValue(key=f"{prefix}.{i}", value=AnyValue(int_value=i)))
    return req.SerializeToString()


def keys(data: Path, env: str, store: str, ingest_only: bool = False) -> str:
    args = ["keys", "create", env, "--data", str(data), "--store", store]
    return apiary_cli(*args, *(["--ingest-only"] if ingest_only else [])).stdout.strip()


class Calm:
    """The calm environment's loop: ingest, then read, each timed; reads checked against what was acknowledged."""

    def __init__(self, port: int, key: str) -> None:
        self.port, self.key = port, key
        self.acknowledged = 0
        self.incomplete = 0
        self.parts: list[tuple[float, float, float]] = []
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)

    def _call(self, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> tuple[int, bytes, float]:
        t0 = time.perf_counter()
        self.conn.request(method, path, body, {"x-honeycomb-team": self.key, **headers})
        resp = self.conn.getresponse()
        data = resp.read()
        return resp.status, data, (time.perf_counter() - t0) * 1000

    def run(self, seconds: float, bodies: list[bytes], spans: int) -> tuple[list[float], list[float], list[int]]:
        ingest, read, statuses = [], [], []
        end = time.monotonic() + seconds
        i = 0
        while time.monotonic() < end:
            status, _, ms = self._call("POST", "/v1/traces", bodies[i % len(bodies)], {"content-type": "application/x-protobuf"})
            i += 1
            statuses.append(status)
            ingest.append(ms)
            if status == 200:
                self.acknowledged += spans
            status, data, ms_datasets = self._call("GET", "/api/datasets", None, {})
            seen = sum(d["count"] for d in json.loads(data)["datasets"]) if status == 200 else -1
            self.incomplete += seen != self.acknowledged
            spec = json.dumps({"calculations": [{"op": "COUNT"}], "time_range": 7200}).encode()
            status, data, ms_create = self._call("POST", "/1/queries/__all__", spec, {"content-type": "application/json"})
            qid = json.loads(data)["id"]
            status, data, ms_run = self._call("POST", "/1/query_results/__all__", json.dumps({"query_id": qid}).encode(),
                                              {"content-type": "application/json"})
            read.append(ms_datasets + ms_create + ms_run)
            self.parts.append((ms_datasets, ms_create, ms_run))
        return ingest, read, statuses


class Flood:
    """``flooders`` threads posting wide spans, sending again at once after a 429 (or after its Retry-After)."""

    def __init__(self, port: int, key: str, bodies: list[bytes], flooders: int, wait_retry_after: bool) -> None:
        self.port, self.key, self.bodies, self.wait_retry_after = port, key, bodies, wait_retry_after
        self.answers: collections.Counter[int | str] = collections.Counter()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(n, flooders), daemon=True) for n in range(flooders)]

    def start(self) -> None:
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=300)

    def _run(self, n: int, step: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=300)
        i = n
        while not self._stop.is_set():
            try:
                resp = post_reading_answer(conn, "/v1/traces", self.bodies[i % len(self.bodies)],
                                           {"content-type": "application/x-protobuf", "x-honeycomb-team": self.key})
            except (OSError, http.client.HTTPException):
                self.answers["connection error"] += 1
                conn.close()  # and the next request opens a new connection
                continue
            self.answers[resp.status] += 1
            i += step
            if self.wait_retry_after and resp.status == 429:
                self._stop.wait(float(resp.getheader("retry-after") or 1))


def flood_only(args: argparse.Namespace, port: int, key: str, bodies: list[bytes], server_pid: int) -> None:
    """``--flood-only``: what each answer to the flood costs the server, with no calm environment beside it."""
    flood = Flood(port, key, bodies, args.flooders, args.flood_retry_after)
    flood.start()
    time.sleep(1.0)
    answered, cpu_start, t_start = sum(flood.answers.values()), tree_cpu_s(server_pid), time.monotonic()
    time.sleep(args.duration)
    answered, (cpu, workers) = sum(flood.answers.values()) - answered, _cpu_per_s(server_pid, cpu_start, t_start)
    flood.stop()
    seconds = time.monotonic() - t_start
    print(f"flood only ({args.store} store{', tree ' + BENCH_TREE if BENCH_TREE else ''}): {args.flooders} threads, "
          f"{args.duration:g} s, {len(bodies[0]) / 1e6:.1f} MB bodies: {answered / args.duration:,.0f} answers/s "
          f"{dict(flood.answers)}; server CPU {cpu:.2f} cores (decode workers {workers:.2f}), "
          f"{cpu * seconds / max(answered, 1) * 1000:.2f} ms of its process per answer")


class Phases:
    """The calm loop's figures over every phase of one kind (alone, or flooded), phase by phase."""

    def __init__(self) -> None:
        self.ingest: list[list[float]] = []
        self.read: list[list[float]] = []
        self.statuses: collections.Counter[int] = collections.Counter()
        self.parts: list[tuple[float, float, float]] = []
        self.incomplete = 0
        self._cpu: list[tuple[float, float]] = []

    def run(self, calm: Calm, server_pid: int, seconds: float, bodies: list[bytes]) -> None:
        incomplete, calm.parts = calm.incomplete, []
        cpu_start, t_start = tree_cpu_s(server_pid), time.monotonic()
        ingest, read, statuses = calm.run(seconds, bodies, 20)
        self._cpu.append(_cpu_per_s(server_pid, cpu_start, t_start))
        self.ingest.append(ingest)
        self.read.append(read)
        self.statuses.update(statuses)
        self.parts += calm.parts
        self.incomplete += calm.incomplete - incomplete

    @property
    def cpu(self) -> tuple[float, float]:
        """Cores busy (the server's process, its decode workers), averaged over the phases."""
        return (statistics.fmean(c[0] for c in self._cpu), statistics.fmean(c[1] for c in self._cpu))


def _cpu_per_s(pid: int, start: tuple[float, float], since: float) -> tuple[float, float]:
    """CPU seconds per second since ``since`` of the server process and of its decode workers."""
    now, seconds = tree_cpu_s(pid), time.monotonic() - since
    return (now[0] - start[0]) / seconds, (now[1] - start[1]) / seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=60.0, help="seconds alone, then as many flooded (each at most 60)")
    ap.add_argument("--flooders", type=int, default=2, help="threads posting 100,000-attribute spans")
    ap.add_argument("--pairs", type=int, default=1,
                    help="phases alone and flooded, in turn, this many times: p99s pooled over them, and each pair's ratios")
    ap.add_argument("--attributes", type=int, default=100_000)
    ap.add_argument("--server-arg", action="append", default=[], help="extra `apiary serve` argument (repeatable)")
    ap.add_argument("--store", choices=("duckdb", "clickhouse"), default="duckdb")
    ap.add_argument("--flood-only", action="store_true",
                    help="no calm environment: print the flood's answers/s and the server's CPU per answer")
    ap.add_argument("--flood-retry-after", action="store_true",
                    help="flooders wait the Retry-After of a 429, as the OTLP spec asks of exporters (default: they "
                         "send again at once, as an attacker would)")
    args = ap.parse_args()
    args.duration = min(args.duration, 60.0)

    data = Path(tempfile.mkdtemp(prefix="apiary-fairness-"))
    store = "duckdb" if args.store == "duckdb" else os.environ.get("APIARY_CLICKHOUSE_URL") or f"chdb://{data / 'ch'}"
    calm_key, flood_key = keys(data, "calm", store), keys(data, "flood", store, ingest_only=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    rng = random.Random(5)
    small = [make_request(20, rng) for _ in range(8)]
    wide = [wide_span(f"f{n}", args.attributes) for n in range(16)]
    server = start_server(data, port, 0, ["--store", store, *args.server_arg])  # no gRPC: flood and reads are HTTP
    try:
        if args.flood_only:
            flood_only(args, port, flood_key, wide, server.pid)
            return
        calm = Calm(port, calm_key)
        calm.run(3.0, small, 20)  # warm-up: the calm environment's columns, the workers' imports
        alone, flooded, answers = Phases(), Phases(), collections.Counter()
        for n in range(args.pairs):
            if n:
                time.sleep(3.0)  # the flood's last accepted batch is loaded before the next phase alone
            alone.run(calm, server.pid, args.duration, small)
            flood = Flood(port, flood_key, wide, args.flooders, args.flood_retry_after)
            flood.start()
            time.sleep(1.0)
            flooded.run(calm, server.pid, args.duration, small)
            flood.stop()
            answers.update(flood.answers)
    finally:
        stop_server(server, data)

    print(f"fairness ({args.store} store{', tree ' + BENCH_TREE if BENCH_TREE else ''}): calm environment alone {args.duration:g} s, then {args.duration:g} s while {args.flooders} threads "
          f"{'(' + str(args.pairs) + ' such pairs in turn) ' if args.pairs > 1 else ''}"
          f"post {args.attributes:,}-attribute spans ({len(wide[0]) / 1e6:.1f} MB each) from another environment"
          + (", waiting each 429's Retry-After" if args.flood_retry_after else ", sending again at once after a 429"))
    if args.pairs > 1:
        for n in range(args.pairs):
            print(f"  pair {n + 1}: p99 ratio ingest {pct(flooded.ingest[n], 99) / pct(alone.ingest[n], 99):.2f}x, "
                  f"read {pct(flooded.read[n], 99) / pct(alone.read[n], 99):.2f}x")
        print(f"  all {args.pairs} pairs pooled:")
    for name, solo, hit in (("ingest (20 spans)", sum(alone.ingest, []), sum(flooded.ingest, [])),
                            ("read (datasets + COUNT query)", sum(alone.read, []), sum(flooded.read, []))):
        print(f"  {name:30} alone p50 {pct(solo, 50):7.1f} / p99 {pct(solo, 99):7.1f} ms ({len(solo)} rounds); "
              f"flooded p50 {pct(hit, 50):7.1f} / p99 {pct(hit, 99):7.1f} ms ({len(hit)} rounds); "
              f"p99 ratio {pct(hit, 99) / pct(solo, 99):.2f}x (goal <= 2x)")
    print(f"  calm answers alone {dict(alone.statuses)}, flooded {dict(flooded.statuses)}; "
          f"reads missing acknowledged spans: {alone.incomplete} alone, {flooded.incomplete} flooded")
    print(f"  flood answers: {dict(answers)}")
    print(f"  server CPU (cores busy), its process / its decode workers: alone {alone.cpu[0]:.2f} / {alone.cpu[1]:.2f}, "
          f"flooded {flooded.cpu[0]:.2f} / {flooded.cpu[1]:.2f}")
    for name, parts in (("alone", alone.parts), ("flooded", flooded.parts)):
        medians = [statistics.median(p[i] for p in parts) for i in range(3)] if parts else []
        print(f"  read medians {name}: " + ", ".join(f"{n} {m:.1f} ms" for n, m in
                                                   zip(("/api/datasets", "POST /1/queries", "POST /1/query_results"), medians)))


if __name__ == "__main__":
    main()
