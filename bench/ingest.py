"""OTLP/HTTP ingest throughput against a real `apiary serve`, beside the raw decode rate.

Client processes post pre-built ExportTraceServiceRequest bodies (512 spans,
~10 attributes, 3 services) over keep-alive connections on loopback for a
bounded time. Printed: acknowledged (durably committed) spans/s, request
latency p50/p99, 429/503 answers, and the server's peak RSS (its decode
workers included) -- next to the single-process protobuf parse rate and
parse-and-flatten rate of the same bodies measured in this run. The ratio
acknowledged / parse-and-flatten is the figure. ``--rate`` offers a fixed
load instead, for the latency at a given rate.

    python bench/ingest.py --duration 60 --clients 4
    python bench/ingest.py --duration 60 --clients 4 --rate 30000
    python bench/ingest.py --duration 60 --clients 4 --at-baseline

``--protocol grpc`` loads the same server over OTLP/HTTP and over OTLP/gRPC (the TraceService on its
own port, one channel per connection) in turns -- HTTP, gRPC, gRPC, HTTP, each ``--duration`` in all --
and prints gRPC's rate as a ratio to HTTP's and to the same baseline:

    python bench/ingest.py --protocol grpc --duration 20 --clients 4
    python bench/ingest.py --protocol grpc --duration 20 --clients 4 --at-baseline

``--signal metrics`` sends ExportMetricsServiceRequest bodies instead (512 data points, a quarter of them
16-bucket histograms; ``bench/synth.py``) to ``POST /v1/metrics`` or ``MetricsService/Export`` and counts
data points; ``--signal both`` runs the span load and then the metrics load, each on a fresh server, and
prints data points/s against spans/s of the same run (per protocol, with ``--protocol grpc``):

    python bench/ingest.py --signal both --duration 20 --clients 4
    python bench/ingest.py --signal both --protocol grpc --duration 20 --clients 4
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing as mp
import os
import random
import shutil
import signal as signals
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.synth import make_metrics_request, make_request  # noqa: E402
from apiary.receivers.otlp import metrics as otlp_metrics  # noqa: E402
from apiary.receivers.otlp.traces import decode, parse_protobuf  # noqa: E402

#: Per signal: the OTLP/HTTP path, the OTLP/gRPC method, and what its items are called.
PATHS = {"traces": "/v1/traces", "metrics": "/v1/metrics"}
EXPORTS = {"traces": "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
           "metrics": "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"}
UNITS = {"traces": "spans", "metrics": "data points"}


def make_body(signal: str, items: int, rng: random.Random, histogram_share: float) -> bytes:
    if signal == "metrics":
        return make_metrics_request(items, rng, histogram_share=histogram_share)
    return make_request(items, rng)


def baseline(bodies: list[bytes], spans: int, seconds: float, signal: str = "traces") -> tuple[float, float]:
    """One process's parse rate and parse-and-flatten rate of ``bodies``, items/s."""
    def rate(fn) -> float:  # noqa: ANN001
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            for b in bodies:
                fn(b)
                n += spans
        return n / (time.perf_counter() - t0)

    if signal == "metrics":
        return rate(lambda b: otlp_metrics.parse(b, False)), rate(lambda b: otlp_metrics.decode(b, False))
    return rate(parse_protobuf), rate(lambda b: decode(b, False))


class HttpSender:
    """One keep-alive OTLP/HTTP connection: ``send`` is True when acknowledged, else the seconds to back off."""

    def __init__(self, port: int, key: str, signal: str = "traces") -> None:
        self.port, self.headers = port, {"content-type": "application/x-protobuf", "x-honeycomb-team": key}
        self.path = PATHS[signal]
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def send(self, body: bytes) -> bool | float:
        try:
            self.conn.request("POST", self.path, body, self.headers)
            resp = self.conn.getresponse()
            resp.read()
        except (OSError, http.client.HTTPException):
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            raise ConnectionError from None
        return True if resp.status == 200 else float(resp.getheader("Retry-After") or 1)


class GrpcSender:
    """One gRPC channel (one HTTP/2 connection) calling the signal's ``Export`` with the prebuilt bytes."""

    def __init__(self, port: int, key: str, signal: str = "traces") -> None:
        import grpc

        self.grpc = grpc
        self.channel = grpc.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.use_local_subchannel_pool", 1)])
        self.export = self.channel.unary_unary(EXPORTS[signal])  # bytes in, bytes out
        self.metadata = (("x-honeycomb-team", key),)

    def send(self, body: bytes) -> bool | float:
        try:
            self.export(body, metadata=self.metadata, timeout=30)
        except self.grpc.RpcError as exc:
            if exc.code() in (self.grpc.StatusCode.RESOURCE_EXHAUSTED, self.grpc.StatusCode.UNAVAILABLE):
                return 1.0
            raise ConnectionError(str(exc)) from None
        return True


def client(protocol: str, signal: str, histogram_share: float, port: int, key: str, seed: int, spans: int,
           seconds: float, connections: int, interval: float,
           ready: "mp.Queue[int]", go: "mp.Event", out: "mp.Queue[tuple[int, int, list[float], float]]") -> None:
    """One client process with ``connections`` keep-alive connections, each waiting for its answer.

    With ``interval`` > 0 each connection sends on a fixed schedule (one request per interval) and
    a request's latency counts from its scheduled time, so time spent behind schedule is not hidden.
    Bodies are built before ``go``, so building them is neither in the measured window nor in the
    client CPU reported back.
    """
    rng = random.Random(seed)
    bodies = [make_body(signal, spans, rng, histogram_share) for _ in range(16)]
    totals = [0, 0]
    latencies: list[float] = []
    lock = threading.Lock()
    ready.put(seed)
    go.wait()
    cpu0 = time.process_time()
    end = time.monotonic() + seconds

    def run(offset: int) -> None:
        sender = (GrpcSender if protocol == "grpc" else HttpSender)(port, key, signal)
        ok = refused = 0
        mine: list[float] = []
        i = offset
        due = time.perf_counter() + interval * offset / max(connections, 1)
        while time.monotonic() < end:
            body = bodies[i % len(bodies)]
            i += 1
            t0 = time.perf_counter()
            if interval:
                if due > t0:
                    time.sleep(due - t0)
                t0, due = due, due + interval
            try:
                answer = sender.send(body)
            except ConnectionError:
                continue
            mine.append(time.perf_counter() - t0)
            if answer is True:
                ok += spans
            else:
                refused += 1
                time.sleep(min(answer, 1.0) * 0.1)
        with lock:
            totals[0] += ok
            totals[1] += refused
            latencies.extend(mine)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.put((totals[0], totals[1], latencies, time.process_time() - cpu0))


def process_tree(pid: int) -> Iterator[int]:
    """A process and all its descendants (the decode workers), parent first."""
    stack = [pid]
    while stack:
        p = stack.pop()
        yield p
        try:
            for task in Path(f"/proc/{p}/task").iterdir():
                stack.extend(int(c) for c in (task / "children").read_text().split())
        except (FileNotFoundError, ProcessLookupError):
            continue


def tree_rss_kib(pid: int) -> int:
    """RSS of a process and all its descendants."""
    total = 0
    for p in process_tree(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def tree_cpu_s(pid: int) -> tuple[float, float]:
    """CPU seconds (user + system) of a process itself and of all its descendants."""
    tick = os.sysconf("SC_CLK_TCK")
    own = children = 0.0
    for p in process_tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        cpu = (int(fields[11]) + int(fields[12])) / tick
        if p == pid:
            own += cpu
        else:
            children += cpu
    return own, children


@dataclass
class Phase:
    """One protocol's load: what was acknowledged and refused, the latencies, and the CPU it cost."""

    protocol: str
    acked: int
    refused: int
    latencies: list[float]
    elapsed: float
    server_cpu: float
    workers_cpu: float
    clients_cpu: float
    peak_rss_kib: int

    @classmethod
    def merge(cls, turns: list["Phase"]) -> "Phase":
        return cls(turns[0].protocol, sum(t.acked for t in turns), sum(t.refused for t in turns),
                   [x for t in turns for x in t.latencies], sum(t.elapsed for t in turns),
                   sum(t.server_cpu for t in turns), sum(t.workers_cpu for t in turns),
                   sum(t.clients_cpu for t in turns), max(t.peak_rss_kib for t in turns))

    @property
    def rate(self) -> float:
        return self.acked / self.elapsed

    def p(self, q: float) -> float:
        lat = sorted(self.latencies)
        return lat[max(int(len(lat) * q) - 1, 0)] * 1000 if lat else float("nan")


def load(protocol: str, signal: str, port: int, key: str, server_pid: int, args: argparse.Namespace,
         interval: float) -> Phase:
    peak = [0]
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], tree_rss_kib(server_pid))
            time.sleep(0.25)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    q: mp.Queue = mp.Queue()
    ready: mp.Queue = mp.Queue()
    go = mp.Event()
    procs = [mp.Process(target=client, args=(protocol, signal, args.histogram_share, port, key, i, args.spans,
                                             args.duration, args.connections, interval, ready, go, q))
             for i in range(args.clients)]
    for p in procs:
        p.start()
    for _ in procs:
        ready.get(timeout=120)
    t0 = time.perf_counter()
    cpu0 = tree_cpu_s(server_pid)
    go.set()
    results = [q.get(timeout=args.duration + 120) for _ in procs]
    elapsed = time.perf_counter() - t0
    cpu1 = tree_cpu_s(server_pid)
    for p in procs:
        p.join()
    stop.set()
    watcher.join()
    return Phase(protocol, sum(r[0] for r in results), sum(r[1] for r in results), [x for r in results for x in r[2]],
                 elapsed, cpu1[0] - cpu0[0], cpu1[1] - cpu0[1], sum(r[3] for r in results), peak[0])


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=20.0, help="seconds of load per protocol and signal (bounded)")
    ap.add_argument("--clients", type=int, default=4, help="client processes")
    ap.add_argument("--connections", type=int, default=4, help="concurrent connections per client process")
    ap.add_argument("--spans", type=int, default=512, help="spans (or metric data points) per request")
    ap.add_argument("--decode-workers", type=int, default=None)
    ap.add_argument("--rate", type=float, default=0.0,
                    help="offered spans (or data points)/s over all connections, on a fixed schedule "
                         "(default: as fast as answers come)")
    ap.add_argument("--at-baseline", action="store_true",
                    help="offer the parse+flatten rate measured just before the load: the issue's 'p99 at that rate'")
    ap.add_argument("--protocol", choices=["http", "grpc"], default="http",
                    help="http: OTLP/HTTP alone; grpc: OTLP/HTTP, then OTLP/gRPC, on the same server in the same run")
    ap.add_argument("--signal", choices=["traces", "metrics", "both"], default="traces",
                    help="what the clients send: OTLP spans, OTLP metric data points, or one load of each in turn")
    ap.add_argument("--histogram-share", type=float, default=0.25, help="share of metric data points that are histograms")
    args = ap.parse_args()
    args.duration = min(args.duration, 300.0)
    protocols = ["http", "grpc"] if args.protocol == "grpc" else ["http"]
    signal_list = ["traces", "metrics"] if args.signal == "both" else [args.signal]
    rates = {signal: run(signal, protocols, args) for signal in signal_list}
    if len(rates) == 2:
        names = {"http": "OTLP/HTTP", "grpc": "OTLP/gRPC"}
        for protocol in protocols:
            spans, points = rates["traces"][protocol], rates["metrics"][protocol]
            print(f"== same run, {names[protocol]}: {points:,.0f} data points/s against {spans:,.0f} spans/s "
                  f"acknowledged ({points / spans:.2f}x)")


def run(signal: str, protocols: list[str], args: argparse.Namespace) -> dict[str, float]:
    """One signal's load on a fresh server, every protocol in turn; prints its figures, returns each one's rate."""
    unit = UNITS[signal]
    rng = random.Random(7)
    bodies = [make_body(signal, args.spans, rng, args.histogram_share) for _ in range(16)]
    before = baseline(bodies, args.spans, 3.0, signal)
    rate_offered = before[1] if args.at_baseline else args.rate

    data = Path(tempfile.mkdtemp(prefix="apiary-bench-"))
    key = subprocess.run([sys.executable, "-m", "apiary", "keys", "create", "bench", "--data", str(data)],
                         check=True, capture_output=True, text=True).stdout.strip()
    port, grpc_port = free_port(), free_port()
    cmd = [sys.executable, "-m", "apiary", "serve", "--data", str(data), "--port", str(port),
           "--otlp-grpc-port", str(grpc_port if "grpc" in protocols else 0)]
    if args.decode_workers is not None:
        cmd += ["--decode-workers", str(args.decode_workers)]
    server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    phases: list[Phase] = []
    try:
        for _ in range(300):
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
                c.request("GET", "/api/health")
                if c.getresponse().status == 200:
                    break
            except OSError:
                time.sleep(0.1)
        # Warm-up, untimed: the first requests add the attribute columns and start the decode
        # workers' imports, which took the first ~0.5 s of a run past 250 ms for every connection.
        for protocol in protocols:
            warm = (GrpcSender(grpc_port, key, signal) if protocol == "grpc" else HttpSender(port, key, signal))
            for body in bodies:
                assert warm.send(body) is True, f"the {protocol} warm-up was refused"
        interval = args.clients * args.connections * args.spans / rate_offered if rate_offered else 0.0
        # The two protocols take turns (HTTP, gRPC, gRPC, HTTP), half their time each turn: this machine's
        # speed drifts within a run, and neither protocol should have all the fast (or slow) minutes.
        order = protocols + protocols[::-1] if len(protocols) > 1 else protocols
        turn = argparse.Namespace(**{**vars(args), "duration": args.duration / (len(order) // len(protocols))})
        turns = [load(p, signal, grpc_port if p == "grpc" else port, key, server.pid, turn, interval) for p in order]
        phases = [Phase.merge([t for t in turns if t.protocol == p]) for p in protocols]
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        c.request("GET", "/api/health")
        health = __import__("json").loads(c.getresponse().read())
    finally:
        server.send_signal(signals.SIGTERM)
        server.wait(60)
        shutil.rmtree(data, ignore_errors=True)

    # Measured again once the load is over: this machine's single-core speed drifts (26,056 before and
    # 40,410 after in one run here), so the ratio uses the mean of the two readings and prints both.
    after = baseline(bodies, args.spans, 3.0, signal)
    parse_rate, flatten_rate = (before[0] + after[0]) / 2, (before[1] + after[1]) / 2
    offered = f", offered {rate_offered:,.0f} {unit}/s on a fixed schedule" if rate_offered else ""
    print(f"== {signal} (POST {PATHS[signal]}{', ' + EXPORTS[signal] if 'grpc' in protocols else ''})")
    print(f"machine: {os.cpu_count()} cores; {args.clients} client processes x {args.connections} connections, "
          f"{args.spans} {unit}/request, {args.duration:.0f} s per protocol{offered}")
    print(f"baseline, one process: parse {parse_rate:,.0f} {unit}/s; parse+flatten {flatten_rate:,.0f} {unit}/s "
          f"(mean of {before[1]:,.0f} before the load and {after[1]:,.0f} after)")
    names = {"http": "OTLP/HTTP", "grpc": "OTLP/gRPC"}
    for ph in phases:
        versus = f", {ph.rate / phases[0].rate:.2f}x OTLP/HTTP" if ph is not phases[0] else ""
        print(f"{names[ph.protocol]}: acknowledged {ph.rate:,.0f} {unit}/s ({ph.rate / flatten_rate:.2f}x parse+flatten, "
              f"{ph.rate / parse_rate:.2f}x parse{versus})")
        print(f"    latency: p50 {ph.p(0.5):.1f} ms, p99 {ph.p(0.99):.1f} ms over {len(ph.latencies)} requests; "
              f"refused (429/503, RESOURCE_EXHAUSTED/UNAVAILABLE): {ph.refused}")
        print(f"    peak RSS (server + decode workers): {ph.peak_rss_kib / 1024:.0f} MiB")
        if ph.acked:
            print(f"    CPU per acknowledged {unit[:-1]}: server {ph.server_cpu * 1e6 / ph.acked:.1f} us, decode workers "
                  f"{ph.workers_cpu * 1e6 / ph.acked:.1f} us (one process's parse+flatten: {1e6 / flatten_rate:.1f} us); "
                  f"the load's clients {ph.clients_cpu * 1e6 / ph.acked:.1f} us of the same cores")
    if health.get("commits"):
        print(f"group commit: {health['commits']} intake-log appends, {health['committed_rows'] / health['commits']:,.0f} rows each")
        if health.get("loads"):
            print(f"bulk load: {health['loads']} DuckDB transactions, {health['loaded_rows'] / health['loads']:,.0f} rows each")
    return {ph.protocol: ph.rate for ph in phases}


if __name__ == "__main__":
    main()
