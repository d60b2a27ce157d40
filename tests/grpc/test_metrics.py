"""The SDK's gRPC metric exporter lands metrics that read back exactly as the OTLP/HTTP exporter's, on both stores.

The same instruments, fed the same values at the same moments, are exported once through
``opentelemetry.exporter.otlp.proto.grpc.metric_exporter.OTLPMetricExporter`` (to the MetricsService on the
gRPC port) and once through the OTLP/HTTP exporter (``POST /v1/metrics``), each into a dataset of its own;
the columns, their types and the Query Data API's answers must be the same, and the answers the ones the
values give by hand.
"""

from __future__ import annotations

import time
from typing import Any, Iterator

import grpc
import httpx
import pytest
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as GrpcMetricExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as HttpMetricExporter
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.metrics.v1.metrics_pb2 import AggregationTemporality
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricExporter, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

from tests.grpc.conftest import STORES, GrpcApiary, start_grpc_apiary, stop_grpc_apiary

METRICS_EXPORT = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"
FAST_MS, SLOW_MS = 3.0, 300.0  # the SDK's default buckets put them in (0, 5] and (250, 500]


def record(exporter: MetricExporter, service: str) -> str:
    """Two exports of a cumulative counter, an up-down counter, a histogram and a gauge; the exemplar's trace id."""
    meters = MeterProvider(resource=Resource.create({"service.name": service, "host.cores": 2}),
                           metric_readers=[PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)])
    meter = meters.get_meter("checkout", "1.2.3")
    orders = meter.create_counter("orders", unit="{order}", description="orders placed")
    in_flight = meter.create_up_down_counter("in_flight", unit="{request}")
    latency = meter.create_histogram("latency", unit="ms", description="request latency")

    def temperatures(options: CallbackOptions) -> list[Observation]:
        return [Observation(21.5, {"room": "a"})]

    meter.create_observable_gauge("temperature", [temperatures], unit="Cel")
    orders.add(5, {"route": "/a"})
    orders.add(3, {"route": "/b"})
    in_flight.add(3)
    for _ in range(45):
        latency.record(FAST_MS, {"route": "/a"})
    assert meters.force_flush()
    time.sleep(1.1)
    orders.add(2, {"route": "/a"})
    orders.add(10, {"route": "/b"})
    in_flight.add(-1)
    with TracerProvider().get_tracer("checkout").start_as_current_span("slow checkout") as span:
        for _ in range(5):  # recorded inside a sampled span: the SDK attaches it as an exemplar
            latency.record(SLOW_MS, {"route": "/a"})
        trace_id = f"{span.get_span_context().trace_id:032x}"
    assert meters.force_flush()
    meters.shutdown()
    return trace_id


class Loaded:
    """A server holding the same metrics sent over gRPC (dataset ``checkout-grpc``) and HTTP (``checkout-http``)."""

    def __init__(self, server: GrpcApiary) -> None:
        self.server = server
        self.start = int(time.time()) - 1
        headers = {"x-honeycomb-team": server.key}
        self.grpc_trace = record(GrpcMetricExporter(endpoint=server.grpc_endpoint, headers=headers), "checkout-grpc")
        self.http_trace = record(HttpMetricExporter(endpoint=f"{server.url}/v1/metrics", headers=headers),
                                 "checkout-http")
        self.end = int(time.time()) + 2

    def query(self, dataset: str, spec: dict[str, Any], key: str | None = None) -> dict[str, Any]:
        """Create and run a query through the Query Data API, as Honeycomb's clients do; return ``data``."""
        headers = {"x-honeycomb-team": key or self.server.key}
        full = {"start_time": self.start, "end_time": self.end, **spec}
        r = httpx.post(f"{self.server.url}/1/queries/{dataset}", json=full, headers=headers, timeout=60)
        assert r.status_code == 200, r.text
        res = httpx.post(f"{self.server.url}/1/query_results/{dataset}", json={"query_id": r.json()["id"]},
                         headers=headers, timeout=60)
        assert res.status_code == 201, res.text
        return res.json()["data"]

    def results(self, dataset: str, spec: dict[str, Any]) -> list[dict[str, Any]]:
        rows = [r["data"] for r in self.query(dataset, spec)["results"]]
        return sorted(rows, key=repr)

    def rows(self, key: str | None = None) -> int:
        """Every row of every dataset the key sees: spans, metric points, exemplars, instruments."""
        data = self.query("__all__", {"calculations": [{"op": "COUNT"}], "start_time": 0,
                                      "end_time": int(time.time()) + 3600}, key)
        return sum(r["data"]["COUNT"] for r in data["results"])  # an environment with no rows has no result

    def columns(self, dataset: str) -> dict[str, str]:
        r = self.server.get(f"/1/columns/{dataset}")
        assert r.status_code == 200, r.text
        return {c["key_name"]: c["type"] for c in r.json()}


@pytest.fixture(scope="module", params=STORES)
def loaded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loaded]:
    proc, url = start_grpc_apiary(tmp_path_factory.mktemp(request.param), request.param)
    try:
        yield Loaded(proc)
    finally:
        stop_grpc_apiary(proc, url)


def test_same_columns_and_types_as_over_http(loaded: Loaded) -> None:
    over_grpc = loaded.columns("checkout-grpc")
    assert over_grpc == loaded.columns("checkout-http")
    assert over_grpc["orders"] == "integer" and over_grpc["in_flight"] == "integer"
    assert over_grpc["temperature"] == "float" and over_grpc["latency.count"] == "integer"
    assert over_grpc["latency.sum"] == "float" and over_grpc["latency.buckets"] == "string"
    assert over_grpc["host.cores"] == "integer" and over_grpc["exemplar.trace_id"] == "string"


def test_counter_increase_and_rate_match_http(loaded: Loaded) -> None:
    spec = {"calculations": [{"op": "INCREASE", "column": "orders"}, {"op": "RATE", "column": "orders"}],
            "breakdowns": ["route"], "filters": [{"column": "orders", "op": "exists"}]}
    over_grpc = loaded.results("checkout-grpc", spec)
    assert over_grpc == loaded.results("checkout-http", spec)
    rows = {r["route"]: r for r in over_grpc}
    assert (rows["/a"]["INCREASE(orders)"], rows["/b"]["INCREASE(orders)"]) == (7, 13)
    assert rows["/b"]["RATE(orders)"] == pytest.approx(13 / (loaded.end - loaded.start))


def test_histogram_percentiles_match_http(loaded: Loaded) -> None:
    spec = {"calculations": [{"op": "HISTOGRAM_P50", "column": "latency"}, {"op": "HISTOGRAM_P99", "column": "latency"},
                             {"op": "INCREASE", "column": "latency.count"}, {"op": "MAX", "column": "latency.max"}],
            "filters": [{"column": "latency.buckets", "op": "exists"}]}
    (row,) = loaded.results("checkout-grpc", spec)
    assert [row] == loaded.results("checkout-http", spec)
    assert row["INCREASE(latency.count)"] == 50
    assert 0 < row["HISTOGRAM_P50(latency)"] <= 5
    assert 250 < row["HISTOGRAM_P99(latency)"] <= 500
    assert row["MAX(latency.max)"] == SLOW_MS


def test_levels_instruments_and_exemplars_match_http(loaded: Loaded) -> None:
    levels = {"calculations": [{"op": "MIN", "column": "in_flight"}, {"op": "MAX", "column": "in_flight"},
                               {"op": "RATE", "column": "in_flight"}, {"op": "AVG", "column": "temperature"}]}
    (row,) = loaded.results("checkout-grpc", levels)
    assert [row] == loaded.results("checkout-http", levels)
    assert row == {"MIN(in_flight)": 2, "MAX(in_flight)": 3, "RATE(in_flight)": None, "AVG(temperature)": 21.5}

    instruments = {"breakdowns": ["meta.metric", "meta.metric.type", "meta.metric.unit", "meta.metric.description",
                                  "meta.temporality", "meta.monotonic", "library.name", "library.version"],
                   "filters": [{"column": "meta.annotation_type", "op": "=", "value": "instrument"}]}
    over_grpc = loaded.results("checkout-grpc", instruments)
    assert over_grpc == loaded.results("checkout-http", instruments)
    by_name = {r["meta.metric"]: r for r in over_grpc}
    assert set(by_name) == {"orders", "in_flight", "latency", "temperature"}
    assert by_name["orders"]["meta.metric.description"] == "orders placed" and by_name["orders"]["meta.monotonic"] is True
    assert by_name["latency"]["meta.metric.type"] == "histogram" and by_name["latency"]["library.version"] == "1.2.3"

    exemplars = {"breakdowns": ["exemplar.trace_id", "meta.metric"],
                 "filters": [{"column": "meta.annotation_type", "op": "=", "value": "exemplar"},
                             {"column": "exemplar.trace_id", "op": "exists"}]}
    assert {r["exemplar.trace_id"] for r in loaded.results("checkout-grpc", exemplars)} == {loaded.grpc_trace}
    assert {r["exemplar.trace_id"] for r in loaded.results("checkout-http", exemplars)} == {loaded.http_trace}


def _metrics_request(service: str) -> bytes:
    """A valid one-point export: if a refusal were skipped, it would be stored."""
    req = ExportMetricsServiceRequest()
    rm = req.resource_metrics.add()
    rm.resource.attributes.add(key="service.name").value.string_value = service
    metric = rm.scope_metrics.add().metrics.add(name="intrusions")
    metric.gauge.data_points.add(time_unix_nano=time.time_ns(), as_int=1)
    for _ in range(40):  # large enough that half of it is still a well-framed start of a message
        metric.gauge.data_points.add(time_unix_nano=time.time_ns(), as_int=2).attributes.add(
            key="padding").value.string_value = "x" * 20
    return req.SerializeToString()


def test_bad_input_to_the_metrics_service_changes_nothing(loaded: Loaded) -> None:
    server = loaded.server
    before = loaded.rows()
    assert before > 0  # the metric rows loaded above are counted
    staging_before = loaded.rows(server.keys["staging"])
    with grpc.insecure_channel(server.grpc_target) as channel:
        export = channel.unary_unary(METRICS_EXPORT, response_deserializer=ExportMetricsServiceResponse.FromString)
        body = _metrics_request("bad-input")

        with pytest.raises(grpc.RpcError) as truncated:
            export(body[: len(body) // 2], metadata=[("x-honeycomb-team", server.key)], timeout=60)
        assert truncated.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "not a valid ExportMetricsServiceRequest protobuf" in truncated.value.details()

        with pytest.raises(grpc.RpcError) as unknown:
            export(body, metadata=[("x-honeycomb-team", "not-a-key")], timeout=60)
        assert unknown.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert "unknown API key in the x-honeycomb-team header" in unknown.value.details()

        with pytest.raises(grpc.RpcError) as missing:
            export(body, timeout=60)
        assert missing.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert "OTEL_EXPORTER_OTLP_HEADERS=x-honeycomb-team=" in missing.value.details()

    assert loaded.rows() == before
    assert loaded.rows(server.keys["staging"]) == staging_before
    assert "bad-input" not in server.counts()


def test_points_that_cannot_be_stored_are_partial_success_over_grpc_too(loaded: Loaded) -> None:
    """A histogram point whose bucket counts do not fit its bounds is refused alone; its sibling is stored."""
    req = ExportMetricsServiceRequest()
    rm = req.resource_metrics.add()
    rm.resource.attributes.add(key="service.name").value.string_value = "refunds-grpc"
    histogram = rm.scope_metrics.add().metrics.add(name="refund_ms", unit="ms").histogram
    histogram.aggregation_temporality = AggregationTemporality.AGGREGATION_TEMPORALITY_DELTA
    at = (loaded.start + 1) * 10**9
    histogram.data_points.add(time_unix_nano=at, count=3, sum=12.0, bucket_counts=[2, 1], explicit_bounds=[5.0])
    histogram.data_points.add(time_unix_nano=at, count=1, bucket_counts=[1, 0, 0], explicit_bounds=[5.0])
    with grpc.insecure_channel(loaded.server.grpc_target) as channel:
        export = channel.unary_unary(METRICS_EXPORT, response_deserializer=ExportMetricsServiceResponse.FromString)
        resp = export(req.SerializeToString(), metadata=[("x-honeycomb-team", loaded.server.key)],
                      compression=grpc.Compression.Gzip, timeout=60)
    assert resp.partial_success.rejected_data_points == 1
    assert "bucket_counts" in resp.partial_success.error_message
    row = loaded.results("refunds-grpc", {"calculations": [{"op": "SUM", "column": "refund_ms.count"},
                                                           {"op": "SUM", "column": "refund_ms.sum"}]})
    assert row == [{"SUM(refund_ms.count)": 3, "SUM(refund_ms.sum)": 12.0}]
