"""Time from navigation to a rendered page in headless Chromium: a 10,000-span trace and a 24 h heatmap.

Starts a real `apiary serve` on a free loopback port, ingests one N-span trace
(several services, a deep and wide tree) and M spans spread over the last 24
hours, then loads each page R times in Debian's Chromium via Playwright. The
figure is the page's own ``performance.now()`` when it finished drawing
(navigation start = 0), median of R; the baseline, measured in the same run,
is the same page for a 1-span trace and a 1-hour heatmap.

    python bench/ui.py --trace-spans 10000 --heatmap-spans 1000000
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest  # noqa: E402
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue  # noqa: E402

SERVICES = ("frontend-react-js", "backend-flask", "worker", "postgres", "redis")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run"]


def big_trace_requests(spans: int, seed: int = 7, per_request: int = 2000) -> tuple[str, list[bytes]]:
    """One trace of ``spans`` spans: each span's parent is one of the previous 50 (a deep, wide tree), 5 services."""
    rng = random.Random(seed)
    trace_id = rng.randbytes(16)
    now = time.time_ns() - 60 * 10**9
    ids = [rng.randbytes(8) for _ in range(spans)]
    starts = [now]
    ends = [now + 5 * 10**9]
    bodies = []
    req = ExportTraceServiceRequest()
    by_service: dict[str, object] = {}
    for i in range(spans):
        if i and i % per_request == 0:
            bodies.append(req.SerializeToString())
            req, by_service = ExportTraceServiceRequest(), {}
        service = SERVICES[0] if i == 0 else SERVICES[rng.randrange(len(SERVICES))]
        ss = by_service.get(service)
        if ss is None:
            rs = req.resource_spans.add()
            rs.resource.attributes.append(KeyValue(key="service.name", value=AnyValue(string_value=service)))
            ss = by_service[service] = rs.scope_spans.add()
        sp = ss.spans.add()  # type: ignore[attr-defined]
        sp.trace_id = trace_id
        sp.span_id = ids[i]
        sp.name = f"op-{i % 97}"
        if i:
            p = rng.randrange(max(0, i - 50), i)
            sp.parent_span_id = ids[p]
            start = starts[p] + rng.randrange(0, max(1, (ends[p] - starts[p]) // 2))
            end = start + rng.randrange(1, max(2, (ends[p] - start)))
        else:
            start, end = starts[0], ends[0]
        if i:
            starts.append(start)
            ends.append(end)
        sp.start_time_unix_nano = start
        sp.end_time_unix_nano = end
        sp.attributes.append(KeyValue(key="seq", value=AnyValue(int_value=i)))
        if rng.random() < 0.01:
            sp.status.code = 2
    bodies.append(req.SerializeToString())
    return trace_id.hex(), bodies


def post_all(url: str, key: str, bodies: list[bytes], workers: int = 4) -> None:
    import httpx

    def post(body: bytes) -> None:
        for _ in range(50):
            r = httpx.post(f"{url}/v1/traces", content=body, timeout=60,
                           headers={"content-type": "application/x-protobuf", "x-honeycomb-team": key})
            if r.status_code in (429, 503):
                time.sleep(0.2)
                continue
            r.raise_for_status()
            return

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(post, bodies))


def spread_requests(spans: int, seconds: int, per_request: int = 1000, seed: int = 3):  # noqa: ANN201
    from bench.synth import make_request

    rng = random.Random(seed)
    now = time.time_ns()
    for _ in range(max(1, spans // per_request)):
        yield make_request(per_request, rng, now_ns=now - rng.randrange(0, seconds * 10**9))


def measure(page, url: str, selector: str, runs: int) -> float:  # noqa: ANN001
    times = []
    for _ in range(runs):
        page.goto("about:blank")
        page.goto(url)
        page.wait_for_selector(selector, timeout=60_000)
        times.append(page.evaluate("window.apiaryRenderedAt"))
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trace-spans", type=int, default=10_000)
    ap.add_argument("--heatmap-spans", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()

    from playwright.sync_api import sync_playwright

    from tests.server import ApiaryProcess, create_key

    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        key = create_key(data_dir, "dev")
        proc = ApiaryProcess(data_dir, key=key, env={"APIARY_XRAY_PORT": "0"}).start()
        try:
            trace_id, bodies = big_trace_requests(args.trace_spans)
            small_id, small = big_trace_requests(1, seed=11)
            post_all(proc.url, key, bodies + small)
            t0 = time.perf_counter()
            post_all(proc.url, key, list(spread_requests(args.heatmap_spans, 86400)))
            print(f"ingested {args.heatmap_spans:,} spans over 24 h in {time.perf_counter() - t0:.1f} s")

            def heat_url(seconds: int) -> str:
                spec = {"calculations": [{"op": "HEATMAP", "column": "duration_ms"}], "time_range": seconds}
                return f"{proc.url}/query?" + urllib.parse.urlencode({"dataset": "__all__", "q": json.dumps(spec)})

            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1400, "height": 900})
                sel = "body[data-rendered]"
                base_trace = measure(page, f"{proc.url}/trace/{small_id}", sel, args.runs)
                big = measure(page, f"{proc.url}/trace/{trace_id}", sel, args.runs)
                rows = page.locator(".wf-row").count()
                base_heat = measure(page, heat_url(3600), sel, args.runs)
                heat = measure(page, heat_url(86400), sel, args.runs)
                browser.close()
            print(f"trace view, {args.trace_spans:,} spans: {big:.0f} ms to rendered (baseline 1-span trace {base_trace:.0f} ms, "
                  f"ratio {big / base_trace:.1f}x; {rows} row elements in the DOM)")
            print(f"heatmap, 24 h over {args.heatmap_spans:,} spans: {heat:.0f} ms to rendered (baseline 1 h heatmap {base_heat:.0f} ms, "
                  f"ratio {heat / base_heat:.1f}x)")
            print(f"goal < 1500 ms: trace {'met' if big < 1500 else 'missed'}, heatmap {'met' if heat < 1500 else 'missed'}")
        finally:
            proc.stop()


if __name__ == "__main__":
    main()
