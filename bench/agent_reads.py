"""What an agent pays to read a big trace through MCP, beside the whole trace from the JSON API in the same run.

    python bench/agent_reads.py --spans 20000 --runs 5

Starts ``apiary serve`` (DuckDB, a temporary directory, 127.0.0.1), loads the first ``--spans`` spans of
``bench/critical_trace.py``'s trace (a root, workers back to back, steps under each) over OTLP/HTTP, then
times, in alternation within each round (medians of ``--runs``):

* baseline: ``GET /api/traces/{id}``, the whole trace as JSON (what a tool that hands over a trace would send);
* ``get_trace`` (the summary), ``get_trace_spans`` (a page of 50) and ``critical_path`` (top 20), each a
  tool call over ``/mcp`` through the ``mcp`` SDK's client.

It prints each one's milliseconds and bytes of answer, and both as a ratio to the baseline. The bytes are
what lands in an agent's context; the goal is that reading a trace starts at a few kilobytes whatever its
size, at no more time than fetching it whole.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Awaitable, Callable

import httpx
import httpx2

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import critical_trace  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _body(spans: int) -> bytes:
    """The trace's first ``spans`` spans in one request: parents come before their children, so any prefix is a tree."""
    return critical_trace.requests((int(time.time()) - 600) * 1_000_000_000, per_request=spans)[0]


async def _measure(url: str, key: str, runs: int) -> list[tuple[str, float, int]]:
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client
    
    tid = critical_trace.TRACE_ID
    http = httpx2.AsyncClient(timeout=120, headers={"Authorization": f"Bearer {key}"})
    async with httpx.AsyncClient(timeout=300) as plain, http, \
            Client(streamable_http_client(url + "/mcp", http_client=http)) as client:

        async def whole() -> int:
            r = await plain.get(f"{url}/api/traces/{tid}", headers={"X-Honeycomb-Team": key})
            r.raise_for_status()
            return len(r.content)

        def tool(name: str, args: dict[str, Any]) -> Callable[[], Awaitable[int]]:
            async def run() -> int:
                r = await client.call_tool(name, {"trace_id": tid, **args})
                assert not r.is_error, r.content[0].text
                return len(r.content[0].text.encode())
            return run

        cases = [("baseline: GET /api/traces/{id} (whole trace)", whole),
                 ("get_trace (summary)", tool("get_trace", {})),
                 ("get_trace_spans (a page of 50)", tool("get_trace_spans", {"limit": 50})),
                 ("critical_path (top 20)", tool("critical_path", {"limit": 20}))]
        sizes = [await fn() for _, fn in cases]  # one untimed call each warms caches
        times: list[list[float]] = [[] for _ in cases]
        for _ in range(runs):
            for i, (_, fn) in enumerate(cases):
                t = time.perf_counter()
                await fn()
                times[i].append((time.perf_counter() - t) * 1000)
    return [(name, statistics.median(ts), size) for (name, _), ts, size in zip(cases, times, sizes)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--spans", type=int, default=20_000, help="spans in the trace (at most 100,000)")
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        key = subprocess.run([sys.executable, "-m", "apiary", "keys", "create", "bench", "--data", str(data)],
                             check=True, capture_output=True, text=True).stdout.strip()
        port = _free_port()
        env = {**os.environ, "APIARY_XRAY_PORT": "0", "APIARY_OTLP_GRPC_PORT": "0"}
        proc = subprocess.Popen([sys.executable, "-m", "apiary", "serve", "--data", str(data), "--host", "127.0.0.1",
                                 "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"{url}/api/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise SystemExit("apiary serve did not start")
                time.sleep(0.2)
            r = httpx.post(f"{url}/v1/traces", content=_body(min(args.spans, critical_trace.SPANS)), timeout=120,
                           headers={"Content-Type": "application/x-protobuf", "X-Honeycomb-Team": key})
            r.raise_for_status()
            results = asyncio.run(_measure(url, key, args.runs))
        finally:
            proc.terminate()
            proc.wait(60)
    base_ms, base_bytes = results[0][1], results[0][2]
    print(f"trace of {min(args.spans, critical_trace.SPANS):,} spans, medians of {args.runs} rounds")
    print(f"{'case':48} {'ms':>9} {'x base':>7} {'bytes':>11} {'x base':>8}")
    for name, ms, size in results:
        print(f"{name:48} {ms:9.1f} {ms / base_ms:7.2f} {size:11,} {size / base_bytes:8.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
