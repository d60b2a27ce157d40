"""X-Ray: segments/s over the daemon's UDP port (none dropped), and GetTraceSummaries latency -- beside moto.

Phases, each bounded:

1. UDP: segment datagrams (a segment with two subsegments, annotations,
   metadata, http) sent at ``--rate`` per second for ``--udp-seconds``; the
   figure is segments stored per second until the daemon has stored all it
   received, with the daemon's received / stored / malformed / dropped counts
   (sent - received = lost in the kernel).
2. Fill: PutTraceSegments (500 documents a call) up to ``--total`` segments.
3. GetTraceSummaries over the whole window, no filter, with
   ``service("svc-3") AND http.status >= 500``, ``service("svc-3") { fault }``, a root-cause block (`ROOT_CAUSE`,
   also timed beside ``service("svc-3") { fault }`` alone) and a response-time root cause (`RESPONSE_TIME`),
   GetServiceGraph and GetTimeSeriesServiceStatistics (``service("svc-3")``, per minute), ``--calls`` each,
   every server in turn within each round: medians. Then GetInsightSummaries of the Default group (insights
   enabled) over the hour beside GetServiceGraph over it: the detector reads six hours more and every window.
   The same calls against ``moto_server`` (X-Ray mocked in memory, started
   here), loaded with ``--moto-segments`` of the same documents (moto keeps
   everything in Python objects; a million would take most of an hour; 0 skips it).
   With ``--baseline DIR`` (an earlier Apiary's source tree, e.g. exported with
   ``git archive <commit> | tar -x -C DIR``), the same calls against that tree's
   server too, on the same store as this tree's, loaded with the same documents: a ratio
   against it (a call the earlier tree does not serve on that store prints its error).

``--store chdb`` runs this tree's server on ClickHouse's engine in-process.

    python bench/xray.py --total 1000000 --rate 20000 --udp-seconds 10
    mkdir ../apiary-before && git archive 19c0b83 | tar -x -C ../apiary-before   # an earlier tree
    python bench/xray.py --store chdb --total 3000 --udp-seconds 0 --moto-segments 0 --calls 5 --baseline ../apiary-before
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import boto3  # noqa: E402
import httpx  # noqa: E402
from botocore.config import Config  # noqa: E402

from bench.timing import interleaved_medians_ms  # noqa: E402
from tests.server import ApiaryProcess, create_key, free_port  # noqa: E402

HEADER = b'{"format": "json", "version": 1}\n'


def segment(rng: random.Random, now: float) -> dict[str, Any]:
    start = now - rng.random() * 3000
    tid = f"1-{int(start):08x}-{rng.getrandbits(96):024x}"
    status = 500 if rng.random() < 0.02 else 200
    dur = rng.random() * 0.3
    sid = f"{rng.getrandbits(64):016x}"
    return {
        "trace_id": tid, "id": sid, "name": f"svc-{rng.randrange(8)}", "start_time": start, "end_time": start + 0.002 + dur,
        "fault": status == 500, "annotations": {"user_handle": f"user{rng.randrange(1000)}", "n": rng.randrange(100)},
        "metadata": {"default": {"size": rng.randrange(10_000)}},
        "http": {"request": {"method": "GET", "url": f"http://backend/api/items/{rng.randrange(100)}",
                             "user_agent": "bench"}, "response": {"status": status}},
        "aws": {"xray": {"sdk": "X-Ray for Python", "sdk_version": "2.15.0"}},
        "subsegments": [{"id": f"{rng.getrandbits(64):016x}", "name": n, "start_time": start + 0.001,
                         "end_time": start + 0.001 + dur / 2, "namespace": "remote"} for n in ("postgres", "mock-data")],
    }


#: A root-cause keyword block with the enumerated-list keywords: the path of every fault climbed to its entry point.
ROOT_CAUSE = 'rootcause.fault.service { last and name = "svc-3" and index = 0 }'
#: A response-time root cause: the end of each trace's slowest path (its calls take as long: the lower span id wins).
RESPONSE_TIME = 'rootcause.responsetime.service { last and name = "postgres" }'


def client(url: str, key: str) -> Any:
    return boto3.client("xray", endpoint_url=url, region_name="us-east-1", aws_access_key_id=key,
                        aws_secret_access_key=key, config=Config(retries={"max_attempts": 2}))


def daemon_stats(apiary: ApiaryProcess) -> dict[str, int]:
    return httpx.get(f"{apiary.url}/api/xray/daemon", headers={"x-honeycomb-team": apiary.key}).json()


def udp_phase(apiary: ApiaryProcess, port: int, rate: int, seconds: float, rng: random.Random) -> tuple[int, float]:
    now = time.time()
    payloads = [HEADER + json.dumps(segment(rng, now)).encode() for _ in range(min(int(rate * seconds), 200_000))]
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sent = 0
    t0 = time.perf_counter()
    tick = 0.01
    per_tick = max(1, int(rate * tick))
    while sent < len(payloads):
        for p in payloads[sent:sent + per_tick]:
            sock.sendto(p, ("127.0.0.1", port))
        sent = min(sent + per_tick, len(payloads))
        ahead = t0 + sent / rate - time.perf_counter()
        if ahead > 0:
            time.sleep(ahead)
    send_s = time.perf_counter() - t0
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        st = daemon_stats(apiary)
        if st["stored"] + st["dropped"] + st["malformed"] >= st["received"] and (st["received"] >= sent or time.monotonic() > deadline - 55):
            break
        time.sleep(0.05)
    total_s = time.perf_counter() - t0
    st = daemon_stats(apiary)
    print(f"UDP   sent {sent} segments in {send_s:.1f}s (offered {rate}/s); daemon received {st['received']}, "
          f"stored {st['stored']}, malformed {st['malformed']}, dropped {st['dropped']}, lost in kernel {sent - st['received']}")
    print(f"UDP   {st['stored'] / total_s:,.0f} segments/s stored (3 spans each), all stored after {total_s:.1f}s")
    return st["stored"], total_s


def fill(xray: Any, count: int, rng: random.Random, label: str) -> float:
    now = time.time()
    t0 = time.perf_counter()
    done = 0
    while done < count:
        n = min(500, count - done)
        answer = xray.put_trace_segments(TraceSegmentDocuments=[json.dumps(segment(rng, now)) for _ in range(n)])
        assert not answer.get("UnprocessedTraceSegments"), answer["UnprocessedTraceSegments"][:1]
        done += n
    took = time.perf_counter() - t0
    print(f"fill  {label}: PutTraceSegments {count} segments in {took:.1f}s ({count / took:,.0f}/s)")
    return took


def summaries(xray: Any, expression: str | None) -> int:
    """One GetTraceSummaries over the last hour: how many traces matched."""
    now = time.time()
    kw: dict[str, Any] = {"StartTime": now - 3600, "EndTime": now + 60}
    if expression:
        kw["FilterExpression"] = expression
    page = xray.get_trace_summaries(**kw)
    return page.get("TracesProcessedCount") or len(page["TraceSummaries"])


def service_graph(xray: Any) -> int:
    """One GetServiceGraph over the last hour: how many nodes."""
    now = time.time()
    return len(xray.get_service_graph(StartTime=now - 3600, EndTime=now + 60)["Services"])


def time_series(xray: Any) -> int:
    """One GetTimeSeriesServiceStatistics of svc-3 over the last hour, per minute: how many minutes."""
    now = time.time()
    return len(xray.get_time_series_service_statistics(StartTime=now - 3600, EndTime=now + 60,
                                                       EntitySelectorExpression='service("svc-3")')
               ["TimeSeriesServiceStatistics"])


def insight_summaries(xray: Any, show: bool = False) -> int:
    """One GetInsightSummaries of the Default group over the last hour: how many insights (each shown if asked:
    the bench's faults are steady, so any insight is a false alarm worth reading)."""
    now = time.time()
    found = xray.get_insight_summaries(GroupName="Default", StartTime=now - 3600, EndTime=now + 60)["InsightSummaries"]
    for insight in found if show else []:
        events = xray.get_insight_events(InsightId=insight["InsightId"])["InsightEvents"]
        print(f"insight {insight['State']} {insight['Summary']} | {' | '.join(e['Summary'] for e in events)}")
    return len(found)


def baseline_server(tree: Path, data: Path, store_url: str | None = None) -> tuple[ApiaryProcess, str]:
    """An earlier Apiary's server (its own source tree first on the path), on DuckDB or at ``store_url``."""
    # PYTHONSAFEPATH: ``python -m`` would otherwise put the working directory first on the path, and run from this
    # tree's root the "earlier" server would import this tree's apiary.
    env = {"PYTHONPATH": str(tree), "PYTHONSAFEPATH": "1"}
    store = ["--store", store_url] if store_url else []
    key = subprocess.run([sys.executable, "-m", "apiary", "keys", "create", "dev", "--data", str(data), *store],
                         check=True, capture_output=True, text=True, env={**os.environ, **env}).stdout.strip()
    return ApiaryProcess(data, key=key, env=env, extra_args=store).start(timeout=120), key


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", type=int, default=20000, help="UDP segments offered per second")
    ap.add_argument("--udp-seconds", type=float, default=5, help="0 skips the UDP phase")
    ap.add_argument("--total", type=int, default=200_000, help="segments in Apiary before timing GetTraceSummaries")
    ap.add_argument("--moto-segments", type=int, default=20_000, help="0 skips moto")
    ap.add_argument("--calls", type=int, default=20)
    ap.add_argument("--store", choices=("duckdb", "chdb"), default="duckdb", help="this tree's server's store")
    ap.add_argument("--baseline", type=Path, help="an earlier Apiary source tree to time beside this one (on the same store)")
    args = ap.parse_args()
    rng = random.Random(42)
    expressions = [None, 'service("svc-3") AND http.status >= 500', 'service("svc-3") { fault }', ROOT_CAUSE,
                   RESPONSE_TIME]
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        udp_port = free_port()
        extra = ["--xray-port", str(udp_port)]
        if args.store == "chdb":
            from apiary.store.clickhouse import ClickHouseMeta, connect

            url = f"chdb://{tmp}/clickhouse"
            ch = connect(url)
            key = ClickHouseMeta(ch).create_key("dev")
            ch.close()
            extra += ["--store", url]
        else:
            key = create_key(data, "dev")
        apiary = ApiaryProcess(data, key=key, extra_args=extra).start(timeout=120)
        base = None
        moto = None
        try:
            stored = udp_phase(apiary, udp_port, args.rate, args.udp_seconds, rng)[0] if args.udp_seconds > 0 else 0
            xray = client(apiary.url, key)
            if args.total > stored:
                fill(xray, args.total - stored, rng, f"apiary ({args.store})")
            held = max(args.total, stored)
            others: list[tuple[str, Any, int]] = []
            if args.baseline:
                base_url = f"chdb://{tmp}/baseline-clickhouse" if args.store == "chdb" else None
                base, base_key = baseline_server(args.baseline, Path(tmp) / "baseline", base_url)
                others.append((f"baseline ({args.store})", client(base.url, base_key), held))
                fill(others[-1][1], held, random.Random(42), f"baseline ({args.store})")
            if args.moto_segments:
                moto_port = free_port()
                moto = subprocess.Popen([sys.executable, "-m", "moto.server", "-p", str(moto_port)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                for _ in range(100):
                    try:
                        httpx.get(f"http://127.0.0.1:{moto_port}/moto-api/", timeout=1)
                        break
                    except httpx.HTTPError:
                        time.sleep(0.1)
                others.append(("moto", client(f"http://127.0.0.1:{moto_port}", "testing"), args.moto_segments))
                fill(others[-1][1], args.moto_segments, random.Random(42), "moto")
            calls: list[tuple[str, Callable[[Any], int]]] = [
                (f"GetTraceSummaries {expr or '(no filter)'}", lambda x, e=expr: summaries(x, e)) for expr in expressions]
            calls.append(("GetServiceGraph", service_graph))
            calls.append(("GetTimeSeriesServiceStatistics service(\"svc-3\") per minute", time_series))
            servers = [(f"apiary ({args.store})", xray, held)] + others
            for label, call in calls:
                usable, line = [], label
                for name, x, size in servers:
                    try:
                        usable.append((name, x, size, call(x)))
                    except Exception as exc:  # noqa: BLE001 - moto (or an earlier Apiary) does not serve every call
                        line += f" | {name}: {str(exc).split(': ')[-1][:80]}"
                # In turn within every round: this machine's speed drifts too much for one server after the other.
                medians = interleaved_medians_ms([lambda x=x: call(x) for _, x, _, _ in usable], args.calls)
                ours = medians[0] if usable and usable[0][1] is xray else None
                for (name, _, size, n), ms in zip(usable, medians):
                    line += f" | {name} p50 {ms:.1f} ms over {size} segments ({n} found)"
                    if ours is not None and name != servers[0][0]:
                        line += f", apiary/{name.split()[0]} {ours / ms:.2f}x"
                print(line, flush=True)
            # Moto and earlier trees do not serve it: the time series beside the graph statement it reuses.
            graph_ms, series_ms = interleaved_medians_ms([lambda: service_graph(xray), lambda: time_series(xray)],
                                                         args.calls)
            print(f"GetTimeSeriesServiceStatistics p50 {series_ms:.1f} ms | GetServiceGraph p50 {graph_ms:.1f} ms | "
                  f"on apiary ({args.store}) over {held} segments: series/graph {series_ms / graph_ms:.2f}x", flush=True)
            # A root cause's path is climbed span by span (a recursive statement): beside the one-level block.
            block_ms, path_ms = interleaved_medians_ms([lambda: summaries(xray, 'service("svc-3") { fault }'),
                                                        lambda: summaries(xray, ROOT_CAUSE)], args.calls)
            print(f"GetTraceSummaries {ROOT_CAUSE} p50 {path_ms:.1f} ms | service(\"svc-3\") {{ fault }} p50 "
                  f"{block_ms:.1f} ms | on apiary ({args.store}) over {held} segments: root cause/block "
                  f"{path_ms / block_ms:.2f}x", flush=True)
            # Insights are found at read time from the spans: beside the service graph of the same hour.
            xray.update_group(GroupName="Default", InsightsConfiguration={"InsightsEnabled": True})
            found = insight_summaries(xray, show=True)
            graph_ms, insight_ms = interleaved_medians_ms([lambda: service_graph(xray), lambda: insight_summaries(xray)],
                                                          args.calls)
            print(f"GetInsightSummaries p50 {insight_ms:.1f} ms ({found} insights) | GetServiceGraph p50 "
                  f"{graph_ms:.1f} ms | on apiary ({args.store}) over {held} segments: insights/graph "
                  f"{insight_ms / graph_ms:.2f}x", flush=True)
        finally:
            if moto is not None:
                moto.terminate()
                moto.wait(10)
            if base is not None:
                base.stop()
            apiary.stop()


if __name__ == "__main__":
    main()
