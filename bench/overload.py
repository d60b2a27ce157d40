"""Overload: large bodies on every receiver and slowloris connections at once, for a bounded time.

Printed: the server's peak RSS (its decode workers included) while idle and under the overload; the
answers each receiver gave the large bodies (429 with Retry-After past the byte budget, 413 past a
receiver's size limit); how many slowloris connections the server closed, and when; and the latency
of a well-behaved client (the OTel SDK's usual small export) during the overload against the same
client alone just before it, in the same run -- the ratio is the figure. Goals: peak RSS < 1 GiB
whatever is offered, and the well-behaved client served throughout (no refusals).

All load goes to 127.0.0.1 and stops after ``--duration`` seconds (at most 60).

    python bench/overload.py --duration 30 --large 40 --slow 1200
    python bench/overload.py --duration 15 --large 6 --slow 10 --only "otlp/grpc traces" --envs 3
    python bench/overload.py --duration 20 --slow 10 --only "otlp/grpc traces" --size-mib 3.9 --large 1000 \
        --envs 3 --grpc-own-connections

Each environment may hold only its share of the body budget (``--max-env-inflight-bytes``), so senders
of one environment are refused sooner than senders spread over several (``--envs``), the worst case.
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import http.client
import json
import multiprocessing
import os
import random
import secrets
import selectors
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import grpc  # noqa: E402
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest  # noqa: E402
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue  # noqa: E402

from bench.ingest import tree_rss_kib  # noqa: E402
from bench.synth import make_request  # noqa: E402

MIB = 1024 * 1024
#: The "path" of the receiver reached over OTLP/gRPC rather than HTTP.
GRPC = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


def large_traces(size: int, rng: random.Random) -> bytes:
    one = make_request(512, rng)
    return one * (size // len(one))  # concatenated messages are one message with every resource_spans


def large_logs(size: int) -> bytes:
    req = ExportLogsServiceRequest()
    rl = req.resource_logs.add()
    rl.resource.attributes.append(KeyValue(key="service.name", value=AnyValue(string_value="overload")))
    records = rl.scope_logs.add()
    line = secrets.token_hex(512)
    for _ in range(64):
        records.log_records.add().body.string_value = line
    one = req.SerializeToString()
    return one * (size // len(one))


def large_json(size: int) -> bytes:
    event = {"data": {"name": "overload", "duration_ms": 1.5, "blob": "x" * 1000}}
    one = json.dumps(event)
    n = size // (len(one) + 1)
    return ("[" + ",".join([one] * n) + "]").encode()


def receivers(key: str, size: int, rng: random.Random) -> list[tuple[str, str, dict[str, str], bytes]]:
    """(name, path, headers, body) of one large request per receiver."""
    proto = {"content-type": "application/x-protobuf", "x-honeycomb-team": key}
    traces, logs, events = large_traces(size, rng), large_logs(size), large_json(size)
    return [
        ("otlp traces", "/v1/traces", proto, traces),
        ("otlp logs", "/v1/logs", proto, logs),
        ("honeycomb batch", "/1/batch/overload", {"content-type": "application/json", "x-honeycomb-team": key}, events),
        ("rollbar item", "/api/1/item/", {"content-type": "application/json", "X-Rollbar-Access-Token": key}, events),
        ("cloudwatch logs", "/", {"content-type": "application/x-amz-json-1.1",
                                  "x-amz-target": "Logs_20140328.PutLogEvents"}, events),
        ("xray segments", "/TraceSegments", {"content-type": "application/json"}, events),
        ("otlp/grpc traces", GRPC, {"x-honeycomb-team": key}, traces),
    ]


#: ``APIARY_BENCH_TREE=/path/to/older/tree``: the server (and ``apiary keys``) run from that tree, this script
#: unchanged, so a figure and its "before" come from the same bench.
BENCH_TREE = os.environ.get("APIARY_BENCH_TREE") or None


def apiary_cli(*args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """``python -m apiary ARGS`` from this tree, or from ``APIARY_BENCH_TREE``; its stdout as text."""
    return subprocess.run([sys.executable, "-m", "apiary", *args], check=True, capture_output=True, text=True,
                          cwd=BENCH_TREE, **kwargs)


def start_server(data: Path, port: int, grpc_port: int, extra: list[str]) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "apiary", "serve", "--data", str(data), "--port", str(port), "--xray-port", "0",
           "--otlp-grpc-port", str(grpc_port), *extra]
    server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=BENCH_TREE)
    for _ in range(600):
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            c.request("GET", "/api/health")
            if c.getresponse().status == 200:
                return server
        except OSError:
            time.sleep(0.1)
    server.kill()
    raise SystemExit("server did not start")


def stop_server(server: subprocess.Popen[bytes], data: Path) -> None:
    """Stop the bench's server (SIGTERM, then SIGKILL after 60 s) and remove its data directory."""
    server.terminate()
    try:
        server.wait(60)
    except subprocess.TimeoutExpired:
        server.kill()
    shutil.rmtree(data, ignore_errors=True)


def well_behaved(port: int, key: str, body: bytes, seconds: float, interval: float) -> tuple[list[float], collections.Counter[int]]:
    """Small OTLP exports on one keep-alive connection, one every ``interval`` s: latencies (ms) and statuses."""
    latencies: list[float] = []
    statuses: collections.Counter[int] = collections.Counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        t0 = time.perf_counter()
        try:
            conn.request("POST", "/v1/traces", body, {"content-type": "application/x-protobuf", "x-honeycomb-team": key})
            resp = conn.getresponse()
            resp.read()
            statuses[resp.status] += 1
        except OSError:
            statuses[0] += 1
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        latencies.append((time.perf_counter() - t0) * 1000)
        time.sleep(max(0.0, interval - (time.perf_counter() - t0)))
    conn.close()
    return latencies, statuses


def post_reading_answer(conn: http.client.HTTPConnection, path: str, body: bytes,
                        headers: dict[str, str]) -> http.client.HTTPResponse:
    """POST and read the answer, also when the server answered before reading the body and then ended the
    connection (a refusal, then a lingering close): the send fails, the answer is there, as urllib3 and
    httpx read it."""
    try:
        conn.request("POST", path, body, headers)
    except OSError:
        pass
    resp = conn.getresponse()
    resp.read()
    return resp


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) >= 2 else (values[0] if values else float("nan"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=30.0, help="seconds of overload (at most 60)")
    ap.add_argument("--large", type=int, default=40, help="concurrent senders of large bodies, spread over the receivers")
    ap.add_argument("--size-mib", type=float, default=19.0, help="size of each large body")
    ap.add_argument("--slow", type=int, default=1200, help="slowloris connections")
    ap.add_argument("--interval", type=float, default=0.1, help="seconds between the well-behaved client's exports")
    ap.add_argument("--server-arg", action="append", default=[], help="extra `apiary serve` argument (repeatable)")
    ap.add_argument("--only", default="", help="comma-separated receiver names to flood (default: every one)")
    ap.add_argument("--envs", type=int, default=1,
                    help="environments the large senders are spread over (a key each; the well-behaved client has its "
                         "own beside them when more than one): each environment's share of the body budget then binds "
                         "less, and the server-wide budget more")
    ap.add_argument("--grpc-own-connections", action="store_true",
                    help="each gRPC sender on a connection of its own (by default gRPC shares one between channels "
                         "to the same address)")
    args = ap.parse_args()
    args.duration = min(args.duration, 60.0)

    rng = random.Random(11)
    data = Path(tempfile.mkdtemp(prefix="apiary-overload-"))
    key = apiary_cli("keys", "create", "bench", "--data", str(data)).stdout.strip()
    flood_keys = [key] if args.envs <= 1 else \
        [apiary_cli("keys", "create", f"flood{n}", "--data", str(data)).stdout.strip() for n in range(args.envs)]
    port, grpc_port = _free_port(), _free_port()
    small = make_request(20, rng)
    size = int(args.size_mib * MIB)
    # One list of (name, path, headers, body) per environment; the bodies themselves are shared.
    first = [b for b in receivers(flood_keys[0], size, rng) if not args.only or b[0] in args.only.split(",")]
    by_env = [first] + [[(name, path, {h: (k if v == flood_keys[0] else v) for h, v in headers.items()}, body)
                         for name, path, headers, body in first] for k in flood_keys[1:]]
    bodies = [row for rows in zip(*by_env) for row in rows]
    server = start_server(data, port, grpc_port, args.server_arg)
    try:
        well_behaved(port, key, small, 2.0, args.interval)  # warm-up: columns, decode workers' imports
        idle_rss = tree_rss_kib(server.pid)
        with concurrent.futures.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            solo, solo_status = pool.submit(well_behaved, port, key, small, min(10.0, args.duration / 2),
                                            args.interval).result()

        peak = [idle_rss]
        stop = threading.Event()
        answers: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
        lock = threading.Lock()

        split = [0, 0]  # the server process and its decode workers, at the tree's peak

        def watch() -> None:
            while not stop.is_set():
                total = tree_rss_kib(server.pid)
                if total > peak[0]:
                    main_kib = _rss_kib(server.pid)
                    peak[0], split[:] = total, [main_kib, total - main_kib]
                time.sleep(0.05)

        def flood(i: int) -> None:
            name, path, headers, body = bodies[i % len(bodies)]
            if path == GRPC:
                return flood_grpc(name, headers, body)
            while not stop.is_set():
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
                try:
                    resp = post_reading_answer(conn, path, body, headers)
                    label = f"{resp.status}" + (" +Retry-After" if resp.getheader("retry-after") else "")
                except (OSError, http.client.HTTPException) as exc:
                    label = type(exc).__name__
                finally:
                    conn.close()
                with lock:
                    answers[name][label] += 1

        def flood_grpc(name: str, headers: dict[str, str], body: bytes) -> None:
            own = [("grpc.use_local_subchannel_pool", 1)] if args.grpc_own_connections else []
            with grpc.insecure_channel(f"127.0.0.1:{grpc_port}", options=[
                    ("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1), *own]) as channel:
                export = channel.unary_unary(GRPC)
                while not stop.is_set():
                    try:
                        export(body, metadata=list(headers.items()), timeout=120)
                        label = "OK"
                    except grpc.RpcError as exc:
                        trailers = dict(exc.trailing_metadata() or ())
                        label = exc.code().name + (" +RetryInfo" if "google.rpc.retryinfo-bin" in trailers else "")
                    with lock:
                        answers[name][label] += 1

        closed_at: list[float] = []
        slow_socks: list[socket.socket] = []

        def slowloris() -> None:
            t0 = time.monotonic()
            for _ in range(args.slow):
                try:
                    s = socket.create_connection(("127.0.0.1", port), timeout=5)
                    s.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                    s.setblocking(False)
                    slow_socks.append(s)
                except OSError:
                    break
            live = set(slow_socks)
            sel = selectors.DefaultSelector()  # epoll: select() stops at descriptor 1024
            for s in slow_socks:
                sel.register(s, selectors.EVENT_READ)
            while live and not stop.is_set():
                for event, _ in sel.select(0.5):
                    s = event.fileobj
                    if s not in live:
                        continue
                    try:
                        gone = s.recv(4096) == b""
                    except OSError:
                        gone = True
                    if gone:
                        sel.unregister(s)
                        live.discard(s)
                        closed_at.append(time.monotonic() - t0)
                for s in list(live):
                    try:
                        s.send(b"X")  # another byte of a header line that never ends
                    except BlockingIOError:
                        pass
                    except OSError:
                        sel.unregister(s)
                        live.discard(s)
                        closed_at.append(time.monotonic() - t0)
                time.sleep(1.0)

        threads = [threading.Thread(target=watch, daemon=True), threading.Thread(target=slowloris, daemon=True)]
        threads += [threading.Thread(target=flood, args=(i,), daemon=True) for i in range(args.large)]
        for t in threads:
            t.start()
        # In a process of its own: in this one it would wait for the GIL behind 40 sending threads.
        with concurrent.futures.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            loaded, loaded_status = pool.submit(well_behaved, port, key, small, args.duration, args.interval).result()
        stop.set()
        for t in threads:
            t.join(timeout=130)
        for s in slow_socks:
            s.close()
        health = json.loads(_get(port, "/api/health"))
    finally:
        stop_server(server, data)

    own = ", gRPC senders on connections of their own" if args.grpc_own_connections else ""
    print(f"overload: {args.large} senders of {args.size_mib:g} MiB bodies over {len(first)} receivers and "
          f"{len(flood_keys)} environment(s){own}, "
          f"{args.slow} slowloris connections, {args.duration:g} s; server args {args.server_arg or '(defaults)'}")
    print(f"peak RSS of the server tree: idle {idle_rss / 1024:,.0f} MiB, under overload {peak[0] / 1024:,.0f} MiB "
          f"(goal < 1,024 MiB): server process {split[0] / 1024:,.0f} MiB, decode workers {split[1] / 1024:,.0f} MiB")
    for name, counter in answers.items():
        print(f"  {name:16} " + ", ".join(f"{label} x{n}" for label, n in counter.most_common()))
    print(f"  bodies refused by the budget (server count): {health.get('bodies_refused')}")
    if closed_at:
        print(f"slowloris: {len(closed_at)} of {len(slow_socks)} connections closed by the server, "
              f"median {statistics.median(closed_at):.1f} s, last {max(closed_at):.1f} s after they opened")
    else:
        print(f"slowloris: none of {len(slow_socks)} connections closed by the server")
    print(f"well-behaved client (20-span export every {args.interval:g} s): "
          f"solo p50 {pct(solo, 50):.1f} / p99 {pct(solo, 99):.1f} ms, {dict(solo_status)}; "
          f"under overload p50 {pct(loaded, 50):.1f} / p99 {pct(loaded, 99):.1f} ms, {dict(loaded_status)}; "
          f"p99 ratio {pct(loaded, 99) / pct(solo, 99):.2f}x")


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(port: int, path: str) -> bytes:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", path)
    body = conn.getresponse().read()
    conn.close()
    return body


if __name__ == "__main__":
    main()
