"""A server per store (DuckDB, and ClickHouse through chdb), loaded once with known metrics from the OTel SDK.

Every instrument is fed known values through the real ``MeterProvider`` and
the OTLP/HTTP metric exporter, exported at moments the test chooses
(``force_flush``), so each answer the Query Data API gives can be worked out
by hand: ``Known`` keeps those expected numbers beside the server.
"""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import Counter, Histogram, MeterProvider, UpDownCounter
from opentelemetry.sdk.metrics.export import AggregationTemporality, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from tests.clickhouse.conftest import clickhouse_url, drop_database
from tests.server import ApiaryProcess, create_key

STORES = ["duckdb", "chdb"]
DELTA = {Counter: AggregationTemporality.DELTA, Histogram: AggregationTemporality.DELTA,
         UpDownCounter: AggregationTemporality.DELTA}
#: 90 fast requests and 10 slow ones: the SDK's default buckets put them in (0, 5] and (250, 500] ms.
FAST_MS, SLOW_MS = 3.0, 300.0
#: Recorded in the last export only, into the (50, 75] bucket.
MID_MS = 60.0


@dataclass
class Known:
    server: ApiaryProcess
    start: int
    end: int = 0
    trace_id: str = ""
    after_first_export: int = 0
    expected: dict[str, Any] = field(default_factory=dict)

    def headers(self) -> dict[str, str]:
        return {"X-Honeycomb-Team": self.server.key}

    def query(self, spec: dict[str, Any], dataset: str = "checkout") -> dict[str, Any]:
        """Create and run a query through the Query Data API, as Honeycomb's clients do; return ``data``."""
        full = {"start_time": self.start, "end_time": self.end, **spec}
        r = httpx.post(f"{self.server.url}/1/queries/{dataset}", json=full, headers=self.headers(), timeout=60)
        assert r.status_code == 200, r.text
        res = httpx.post(f"{self.server.url}/1/query_results/{dataset}", json={"query_id": r.json()["id"]},
                         headers=self.headers(), timeout=60)
        assert res.status_code == 201, res.text
        return res.json()["data"]

    def rows(self, dataset: str = "checkout") -> int:
        return self.query({"calculations": [{"op": "COUNT"}]}, dataset)["results"][0]["data"]["COUNT"]


def provider(server: ApiaryProcess, service: str, temporality: dict[type, AggregationTemporality] | None = None,
             instance: str | None = None) -> MeterProvider:
    exporter = OTLPMetricExporter(endpoint=f"{server.url}/v1/metrics", headers={"x-honeycomb-team": server.key},
                                  preferred_temporality=temporality)
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    attrs = {"service.name": service, **({"service.instance.id": instance} if instance else {})}
    return MeterProvider(resource=Resource.create(attrs), metric_readers=[reader])


def load(server: ApiaryProcess) -> Known:
    known = Known(server, start=int(time.time()) - 1)
    spans = TracerProvider(resource=Resource.create({"service.name": "checkout"}))
    spans.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(
        endpoint=f"{server.url}/v1/traces", headers={"x-honeycomb-team": server.key})))
    tracer = spans.get_tracer("checkout")

    # Cumulative (the SDK's default): counters, an up-down counter, a histogram, an observable gauge.
    cumulative = provider(server, "checkout")
    meter = cumulative.get_meter("checkout")
    orders = meter.create_counter("orders", unit="{order}", description="orders placed")
    in_flight = meter.create_up_down_counter("in_flight", unit="{request}", description="requests in progress")
    latency = meter.create_histogram("latency", unit="ms", description="request latency")

    def temperatures(options: CallbackOptions) -> list[Observation]:
        return [Observation(21.5, {"room": "a"}), Observation(19.0, {"room": "b"})]

    meter.create_observable_gauge("temperature", [temperatures], unit="Cel", description="room temperature")
    orders.add(5, {"route": "/a"})
    orders.add(3, {"route": "/b"})
    in_flight.add(3)
    for _ in range(45):
        latency.record(FAST_MS, {"route": "/a"})
    for _ in range(5):
        latency.record(SLOW_MS, {"route": "/a"})
    cumulative.force_flush()
    time.sleep(1.1)
    known.after_first_export = int(time.time())
    orders.add(2, {"route": "/a"})
    in_flight.add(-1)
    for _ in range(45):
        latency.record(FAST_MS, {"route": "/b"})
    with tracer.start_as_current_span("slow checkout") as span:
        for _ in range(5):
            latency.record(SLOW_MS, {"route": "/b"})
        known.trace_id = f"{span.get_span_context().trace_id:032x}"
    cumulative.force_flush()
    time.sleep(1.1)
    orders.add(10, {"route": "/b"})
    for _ in range(2):  # a bucket of the /a series that was empty until now
        latency.record(MID_MS, {"route": "/a"})
    cumulative.force_flush()
    known.expected.update(orders_a=7, orders_b=13, in_flight=2, latency_count=102)

    # Delta temporality: each export carries only what happened since the previous one.
    delta = provider(server, "payments", DELTA)
    dmeter = delta.get_meter("payments")
    charges = dmeter.create_counter("charges", unit="{charge}")
    charge_ms = dmeter.create_histogram("charge_ms", unit="ms")
    charges.add(4, {"card": "visa"})
    for _ in range(9):
        charge_ms.record(FAST_MS)
    delta.force_flush()
    time.sleep(1.1)
    charges.add(6, {"card": "visa"})
    charges.add(1, {"card": "amex"})
    charge_ms.record(SLOW_MS)
    delta.force_flush()
    known.expected.update(charges_visa=10, charges_amex=1, charge_ms_count=10)

    # A process that restarts: same service instance, a new start time, its counter back near zero.
    for run, added in enumerate((7, 4)):
        worker = provider(server, "worker", instance="worker-1")
        jobs = worker.get_meter("worker").create_counter("jobs")
        jobs.add(added, {"queue": "mail"})
        worker.force_flush()
        time.sleep(1.1)
        jobs.add(1, {"queue": "mail"})
        worker.force_flush()
        worker.shutdown()
        time.sleep(1.1)
    known.expected.update(jobs=7 + 1 + 4 + 1)

    for p in (cumulative, delta):
        p.shutdown()
    spans.shutdown()
    known.end = int(time.time()) + 2
    return known


@pytest.fixture(scope="module", params=STORES)
def known(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Known]:
    root: Path = tmp_path_factory.mktemp(f"metrics-{request.param}")
    url = clickhouse_url(root) if request.param == "chdb" else None
    if url:  # the key first: chdb lets one process at a time open its directory
        key = subprocess.run([sys.executable, "-m", "apiary", "keys", "create", "dev", "--store", url],
                             check=True, capture_output=True, text=True).stdout.strip()
        server = ApiaryProcess(root / "data", key=key, extra_args=["--store", url])
    else:
        server = ApiaryProcess(root / "data", key=create_key(root / "data"))
    server.start(timeout=60)
    try:
        yield load(server)
    finally:
        server.stop()
        if url:
            drop_database(url)
