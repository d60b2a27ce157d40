"""apiary.testing: how long a test session waits for its server, and for a span after the exporter's flush.

1. Start-up, in a fresh interpreter each time (what a test session pays once): the plugin's in-process
   server (``EmbeddedApiary().start()``, imports included) until its HTTP port answers, beside the
   baseline ``apiary serve`` as a subprocess until ``/api/health`` answers (what tests/server.py does).
   Goal: the plugin's start-up at most 2 s.
2. First span visible after the flush: an OTel SDK (``BatchSpanProcessor`` + OTLP/HTTP exporter) ends a
   span and ``force_flush()`` returns (the export was acknowledged, so committed); then
   ``apiary.span(name=…)`` (Query Data API, then the trace API) returns it. Beside it, the baseline: the
   flush itself (one export round trip). Goal: visible at most 0.5 s after the flush.

    python bench/testing_startup.py --starts 3 --spans 20
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

EMBEDDED = """
import time
t = time.perf_counter()
from apiary.testing.server import EmbeddedApiary
s = EmbeddedApiary().start()
print(time.perf_counter() - t, flush=True)
s.stop()
"""


def embedded_start() -> float:
    out = subprocess.run([sys.executable, "-c", EMBEDDED], capture_output=True, text=True, timeout=120, check=True)
    return float(out.stdout.split()[0])


def subprocess_start() -> float:
    import httpx

    from apiary.testing.server import free_port

    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        started = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "apiary", "serve", "--data", str(Path(tmp) / "data"), "--port",
                                 str(port), "--xray-port", "0", "--otlp-grpc-port", "0", "--decode-workers", "0"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            while True:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=1).status_code == 200:
                        return time.perf_counter() - started
                except httpx.HTTPError:
                    time.sleep(0.01)
                if proc.poll() is not None or time.perf_counter() - started > 60:
                    raise RuntimeError("apiary serve did not start")
        finally:
            proc.terminate()
            proc.wait(30)


def span_visibility(n: int) -> tuple[list[float], list[float]]:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    from apiary.testing import serve

    flushes, visible = [], []
    with serve(name="bench") as telemetry:
        provider = TracerProvider(resource=Resource.create({"service.name": "bench"}))
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(
            endpoint=f"{telemetry.url}/v1/traces", headers={"x-honeycomb-team": telemetry.key})))
        tracer = provider.get_tracer("bench")
        for i in range(n):
            with tracer.start_as_current_span(f"op-{i}"):
                pass
            t0 = time.perf_counter()
            provider.force_flush()
            t1 = time.perf_counter()
            telemetry.span(name=f"op-{i}", timeout=10)
            t2 = time.perf_counter()
            flushes.append(t1 - t0)
            visible.append(t2 - t1)
        provider.shutdown()
    return flushes, visible


def ms(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] * 1000


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--starts", type=int, default=3, help="start-ups of each kind")
    p.add_argument("--spans", type=int, default=20, help="spans flushed and waited for")
    args = p.parse_args()
    os.environ.setdefault("APIARY_OTLP_GRPC_PORT", "0")

    embedded = [embedded_start() for _ in range(args.starts)]
    served = [subprocess_start() for _ in range(args.starts)]
    e, s = statistics.median(embedded), statistics.median(served)
    print(f"start-up, median of {args.starts}: plugin (in-process, imports included) {e:.2f} s; "
          f"baseline apiary serve subprocess {s:.2f} s; ratio {e / s:.2f} (goal <= 2 s: {'met' if e <= 2 else 'NOT met'})")

    flushes, visible = span_visibility(args.spans)
    print(f"first span visible after the flush, {args.spans} spans: p50 {ms(visible, 0.5):.0f} ms, p90 "
          f"{ms(visible, 0.9):.0f} ms, max {max(visible) * 1000:.0f} ms; baseline flush (export round trip) p50 "
          f"{ms(flushes, 0.5):.0f} ms; ratio {ms(visible, 0.5) / ms(flushes, 0.5):.2f} "
          f"(goal <= 500 ms: {'met' if max(visible) <= 0.5 else 'p90 met' if ms(visible, 0.9) <= 500 else 'NOT met'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
