"""OTel SDK metrics in, exact answers out of the Query Data API, on DuckDB and on ClickHouse (chdb).

The numbers a test expects are the ones ``conftest.load`` fed the SDK's instruments.
"""

from __future__ import annotations

import gzip
import json
import time

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.metrics.view import ExponentialBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.metrics.v1.metrics_pb2 import AggregationTemporality, Metric, ResourceMetrics

from tests.metrics.conftest import FAST_MS, SLOW_MS, Known


def by(results: list[dict], key: str) -> dict:
    return {r["data"][key]: r["data"] for r in results}


def test_a_cumulative_counter_gives_its_increase_and_rate_per_series(known: Known) -> None:
    data = known.query({"calculations": [{"op": "INCREASE", "column": "orders"}, {"op": "RATE", "column": "orders"}],
                        "breakdowns": ["route"]})
    rows = by(data["results"], "route")
    assert rows["/a"]["INCREASE(orders)"] == known.expected["orders_a"]
    assert rows["/b"]["INCREASE(orders)"] == known.expected["orders_b"]
    window = known.end - known.start
    assert rows["/b"]["RATE(orders)"] == pytest.approx(known.expected["orders_b"] / window)
    # Per time bucket, the rate is that bucket's increase over its seconds; the buckets add up to the whole.
    per_bucket = [p["data"]["RATE(orders)"] or 0 for p in data["series"] if p["data"]["route"] == "/b"]
    assert sum(per_bucket) * data["granularity"] == pytest.approx(known.expected["orders_b"])


def test_delta_sums_add_up_as_sent(known: Known) -> None:
    data = known.query({"calculations": [{"op": "SUM", "column": "charges"}, {"op": "INCREASE", "column": "charges"}],
                        "breakdowns": ["card"]}, "payments")
    rows = by(data["results"], "card")
    assert rows["visa"]["SUM(charges)"] == known.expected["charges_visa"]
    assert rows["visa"]["INCREASE(charges)"] == known.expected["charges_visa"]
    assert rows["amex"]["INCREASE(charges)"] == known.expected["charges_amex"]


def test_an_up_down_counter_is_a_level_not_a_rate(known: Known) -> None:
    data = known.query({"calculations": [{"op": "RATE", "column": "in_flight"}, {"op": "MIN", "column": "in_flight"},
                                         {"op": "MAX", "column": "in_flight"}]})
    row = data["results"][0]["data"]
    assert row["RATE(in_flight)"] is None
    assert (row["MIN(in_flight)"], row["MAX(in_flight)"]) == (known.expected["in_flight"], 3)


def test_an_observable_gauge_keeps_its_values(known: Known) -> None:
    data = known.query({"calculations": [{"op": "AVG", "column": "temperature"}, {"op": "MAX", "column": "temperature"}],
                        "breakdowns": ["room"], "filters": [{"column": "temperature", "op": "exists"}]})
    rows = by(data["results"], "room")
    assert rows["a"]["AVG(temperature)"] == 21.5
    assert rows["b"]["MAX(temperature)"] == 19.0


@pytest.mark.parametrize("dataset,metric,count", [("checkout", "latency", "latency_count"),
                                                  ("payments", "charge_ms", "charge_ms_count")])
def test_histogram_percentiles_come_from_merged_buckets(known: Known, dataset: str, metric: str, count: str) -> None:
    calcs = [{"op": "HISTOGRAM_P50", "column": metric}, {"op": "HISTOGRAM_P99", "column": metric},
             {"op": "INCREASE", "column": f"{metric}.count"}, {"op": "MAX", "column": f"{metric}.max"}]
    row = known.query({"calculations": calcs}, dataset)["results"][0]["data"]
    # Cumulative points are not added up as they stand: the count grew to 100, not 50 + 100 + 100 ...
    assert row[f"INCREASE({metric}.count)"] == known.expected[count]
    assert 0 < row[f"HISTOGRAM_P50({metric})"] <= 5  # FAST_MS falls in the SDK's (0, 5] bucket
    assert 250 < row[f"HISTOGRAM_P99({metric})"] <= 500  # SLOW_MS in (250, 500]
    assert row[f"MAX({metric}.max)"] == SLOW_MS
    assert FAST_MS < SLOW_MS


def test_histogram_percentile_splits_by_an_attribute_and_over_time(known: Known) -> None:
    data = known.query({"calculations": [{"op": "HISTOGRAM_P90", "column": "latency"}], "breakdowns": ["route"],
                        "filters": [{"column": "latency.buckets", "op": "exists"}]})
    rows = by(data["results"], "route")
    assert set(rows) == {"/a", "/b"}
    # /a: 45 fast, 2 MID_MS, 5 slow -> the 47th of 52 values is a MID_MS one; /b: 45 fast, 5 slow.
    assert 50 < rows["/a"]["HISTOGRAM_P90(latency)"] <= 75
    assert 0 < rows["/b"]["HISTOGRAM_P90(latency)"] <= 5
    points = [p["data"]["HISTOGRAM_P90(latency)"] for p in data["series"] if p["data"]["route"] == "/b"]
    assert any(v is not None for v in points) and all(v is None or 0 < v <= 5 for v in points)


def test_a_window_that_starts_mid_series_counts_only_what_grew_inside_it(known: Known) -> None:
    """The first point inside the window is the baseline; a bucket first filled after it counts in full."""
    data = known.query({"start_time": known.after_first_export, "breakdowns": ["route"],
                        "calculations": [{"op": "INCREASE", "column": "latency.count"},
                                         {"op": "HISTOGRAM_P50", "column": "latency"}],
                        "filters": [{"column": "route", "op": "=", "value": "/a"}]})
    row = data["results"][0]["data"]
    assert row["INCREASE(latency.count)"] == 2
    assert 50 < row["HISTOGRAM_P50(latency)"] <= 75  # MID_MS's bucket: the 50 earlier values are outside the window


def test_a_counter_reset_gives_no_negative_rate(known: Known) -> None:
    data = known.query({"calculations": [{"op": "INCREASE", "column": "jobs"}, {"op": "RATE", "column": "jobs"}],
                        "granularity": 1}, "worker")
    assert data["results"][0]["data"]["INCREASE(jobs)"] == known.expected["jobs"]
    rates = [p["data"]["RATE(jobs)"] for p in data["series"] if p["data"]["RATE(jobs)"] is not None]
    assert rates and min(rates) >= 0


def test_instruments_are_listed_with_their_metadata(known: Known) -> None:
    data = known.query({"breakdowns": ["meta.metric", "meta.metric.type", "meta.metric.unit", "meta.metric.description",
                                       "meta.temporality", "meta.monotonic"],
                        "filters": [{"column": "meta.annotation_type", "op": "=", "value": "instrument"}]})
    instruments = {r["data"]["meta.metric"]: r["data"] for r in data["results"]}
    assert instruments["orders"]["meta.metric.type"] == "sum"
    assert instruments["orders"]["meta.monotonic"] is True
    assert instruments["orders"]["meta.temporality"] == "cumulative"
    assert instruments["orders"]["meta.metric.description"] == "orders placed"
    assert instruments["in_flight"]["meta.monotonic"] is False
    assert instruments["latency"]["meta.metric.type"] == "histogram"
    assert instruments["latency"]["meta.metric.unit"] == "ms"
    assert instruments["temperature"]["meta.metric.type"] == "gauge"


def test_an_exemplar_links_a_point_to_its_trace(known: Known) -> None:
    data = known.query({"breakdowns": ["exemplar.trace_id", "meta.metric"],
                        "filters": [{"column": "meta.annotation_type", "op": "=", "value": "exemplar"},
                                    {"column": "exemplar.trace_id", "op": "exists"}]})
    linked = {(r["data"]["exemplar.trace_id"], r["data"]["meta.metric"]) for r in data["results"]}
    assert (known.trace_id, "latency") in linked
    trace = httpx.get(f"{known.server.url}/api/traces/{known.trace_id}", headers=known.headers(), timeout=30)
    assert trace.status_code == 200, trace.text


def test_metric_rows_are_marked_apart_from_spans(known: Known) -> None:
    data = known.query({"breakdowns": ["meta.signal_type"]})
    signals = {r["data"]["meta.signal_type"] for r in data["results"]}
    assert signals == {"metric", "trace"}


def _post(known: Known, body: bytes, ctype: str = "application/x-protobuf", key: str | None = None) -> httpx.Response:
    return httpx.post(f"{known.server.url}/v1/metrics", content=body, timeout=30,
                      headers={"content-type": ctype, "x-honeycomb-team": known.server.key if key is None else key})


def test_bad_input_is_refused_and_changes_nothing(known: Known) -> None:
    before = known.rows("payments")
    bad = _post(known, b"\x0a\xff\xff\xff\xff\x0f")
    assert bad.status_code == 400 and b"ExportMetricsServiceRequest" in bad.content
    bad_json = _post(known, b'{"resourceMetrics": [', "application/json")
    assert bad_json.status_code == 400 and "not valid JSON" in bad_json.json()["message"]
    unknown = _post(known, ExportMetricsServiceRequest().SerializeToString(), key="not-a-key")
    assert unknown.status_code == 401
    assert known.rows("payments") == before


def test_points_that_cannot_be_stored_are_reported_as_partial_success(known: Known) -> None:
    req = ExportMetricsServiceRequest(resource_metrics=[ResourceMetrics()])
    rm = req.resource_metrics[0]
    rm.resource.attributes.add(key="service.name").value.string_value = "payments"
    metric: Metric = rm.scope_metrics.add().metrics.add(name="refunds")
    metric.histogram.aggregation_temporality = AggregationTemporality.AGGREGATION_TEMPORALITY_DELTA
    ok = metric.histogram.data_points.add(time_unix_nano=known.start * 10**9 + 1, count=1, bucket_counts=[1, 0],
                                          explicit_bounds=[10.0])
    ok.sum = 2.0
    metric.histogram.data_points.add(time_unix_nano=known.start * 10**9 + 1, count=1, bucket_counts=[1, 0, 0],
                                     explicit_bounds=[10.0])
    r = _post(known, req.SerializeToString())
    assert r.status_code == 200
    resp = ExportMetricsServiceResponse.FromString(r.content)
    assert resp.partial_success.rejected_data_points == 1
    assert "bucket_counts" in resp.partial_success.error_message


def test_otlp_json_with_gzip_and_hex_exemplar_ids(known: Known) -> None:
    now_ns = (known.end - 3) * 10**9
    doc = {"resourceMetrics": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "browser"}}]},
        "scopeMetrics": [{"scope": {"name": "web"}, "metrics": [{
            "name": "clicks", "unit": "{click}",
            "sum": {"aggregationTemporality": 1, "isMonotonic": True, "dataPoints": [{
                "asInt": "6", "startTimeUnixNano": str(now_ns - 10**9), "timeUnixNano": str(now_ns),
                "attributes": [{"key": "button", "value": {"stringValue": "buy"}}],
                "exemplars": [{"asInt": "1", "timeUnixNano": str(now_ns), "traceId": "5b8efff798038103d269b633813fc60c",
                               "spanId": "eee19b7ec3c1b174"}]}]}}]}]}]}
    body = gzip.compress(json.dumps(doc).encode())
    r = httpx.post(f"{known.server.url}/v1/metrics", content=body, timeout=30,
                   headers={"content-type": "application/json", "content-encoding": "gzip",
                            "x-honeycomb-team": known.server.key})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json"), r.text
    assert known.query({"calculations": [{"op": "SUM", "column": "clicks"}]}, "browser")["results"][0]["data"] == {"SUM(clicks)": 6}
    ex = known.query({"breakdowns": ["exemplar.trace_id", "exemplar.span_id"],
                      "filters": [{"column": "meta.annotation_type", "op": "=", "value": "exemplar"}]}, "browser")
    assert ex["results"][0]["data"]["exemplar.trace_id"] == "5b8efff798038103d269b633813fc60c"
    assert ex["results"][0]["data"]["exemplar.span_id"] == "eee19b7ec3c1b174"


def test_a_large_sdk_export_goes_through_the_decode_workers(known: Known) -> None:
    """600 series in one export: a body past the inline-decode threshold (16 KiB), so a decode worker parses it."""
    exporter = OTLPMetricExporter(endpoint=f"{known.server.url}/v1/metrics", headers={"x-honeycomb-team": known.server.key})
    copy = InMemoryMetricReader()
    meter_provider = MeterProvider(resource=Resource.create({"service.name": "fleet"}), metric_readers=[
        PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000), copy])
    beats = meter_provider.get_meter("fleet").create_counter("heartbeats")
    for i in range(600):
        beats.add(i % 7 + 1, {"device": f"d{i:04d}", "firmware": f"v{i % 13}"})
    assert len(encode_metrics(copy.get_metrics_data()).SerializeToString()) > 16 * 1024  # what the exporter sends too
    assert meter_provider.force_flush()
    meter_provider.shutdown()
    row = known.query({"calculations": [{"op": "INCREASE", "column": "heartbeats"},
                                        {"op": "COUNT_DISTINCT", "column": "device"}],
                       "end_time": int(time.time()) + 2}, "fleet")["results"][0]["data"]
    assert row["INCREASE(heartbeats)"] == sum(i % 7 + 1 for i in range(600))
    assert row["COUNT_DISTINCT(device)"] == pytest.approx(600, rel=0.05)  # DuckDB's is HyperLogLog, approximate


def test_an_exponential_histogram_and_a_summary(known: Known) -> None:
    """The SDK's exponential histogram (through a View), and a summary as a Prometheus bridge sends one."""
    exporter = OTLPMetricExporter(endpoint=f"{known.server.url}/v1/metrics", headers={"x-honeycomb-team": known.server.key})
    meter_provider = MeterProvider(
        resource=Resource.create({"service.name": "uploads"}),
        metric_readers=[PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)],
        views=[View(instrument_name="upload_kb", aggregation=ExponentialBucketHistogramAggregation())])
    sizes = meter_provider.get_meter("uploads").create_histogram("upload_kb", unit="KiBy")
    values = [100.0] * 80 + [5000.0] * 20
    for v in values:
        sizes.record(v)
    meter_provider.shutdown()

    req = ExportMetricsServiceRequest()
    rm = req.resource_metrics.add()
    rm.resource.attributes.add(key="service.name").value.string_value = "uploads"
    summary = rm.scope_metrics.add().metrics.add(name="rpc_seconds").summary
    point = summary.data_points.add(time_unix_nano=time.time_ns(), count=10, sum=2.5)
    point.quantile_values.add(quantile=0.5, value=0.2)
    point.quantile_values.add(quantile=0.99, value=0.9)
    assert _post(known, req.SerializeToString()).status_code == 200

    calcs = [{"op": "HISTOGRAM_P50", "column": "upload_kb"}, {"op": "HISTOGRAM_P99", "column": "upload_kb"},
             {"op": "INCREASE", "column": "upload_kb.count"}, {"op": "MAX", "column": "rpc_seconds.p99"},
             {"op": "SUM", "column": "rpc_seconds.count"}]
    row = known.query({"calculations": calcs, "end_time": int(time.time()) + 2}, "uploads")["results"][0]["data"]
    # The SDK picks the finest scale that fits 160 buckets: each bucket is well under 10 % wide here.
    assert row["HISTOGRAM_P50(upload_kb)"] == pytest.approx(100.0, rel=0.1)
    assert row["HISTOGRAM_P99(upload_kb)"] == pytest.approx(5000.0, rel=0.1)
    assert row["INCREASE(upload_kb.count)"] == len(values)
    assert (row["MAX(rpc_seconds.p99)"], row["SUM(rpc_seconds.count)"]) == (0.9, 10)


def test_metric_operators_on_the_wrong_column_are_refused_with_the_reason(known: Known) -> None:
    for calc, reason in (({"op": "HISTOGRAM_P99", "column": "orders"}, "'orders' is not a histogram metric"),
                         ({"op": "RATE", "column": "route"}, "needs a numeric column")):
        r = httpx.post(f"{known.server.url}/1/queries/checkout", headers=known.headers(), timeout=30,
                       json={"start_time": known.start, "end_time": known.end, "calculations": [calc]})
        assert r.status_code == 400 and reason in r.text, r.text
