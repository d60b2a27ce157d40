"""Sample rates weigh query answers as Honeycomb weighs them, on both stores.

Honeycomb's "Sampled Data in Honeycomb" (How Honeycomb Adjusts for Sample Rate): an event kept 1 in N
carries N; COUNT counts N for it, SUM and AVG weigh its value by N, percentiles and heatmaps too;
COUNT_DISTINCT, MIN and MAX do not. The events arrive the three ways a rate travels: libhoney's
``samplerate`` in the batch API, ``X-Honeycomb-Samplerate`` on the single-event API, and OTel's
``SampleRate`` span attribute. ``SAMPLE_RATE()`` (Honeycomb's event metadata function) reads the same rate
in calculated fields.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any

import httpx
import libhoney
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from tests.query.conftest import run_spec
from tests.stores import StoreServer, Tenant

T0 = int(time.time()) - 600


TENANTS = 4


@pytest.fixture(scope="module")
def sampled(store_server: StoreServer) -> Tenant:
    """One environment holding every dataset below, sent once for the module."""
    t = store_server.take()
    _libhoney(t, "doc-example", [({"duration_ms": 200}, 10), ({"duration_ms": 1100}, 10)])
    _libhoney(t, "mixed", [({"duration_ms": 10, "bytes": 1, "route": "/a"}, 1),
                           ({"duration_ms": 20, "bytes": 2, "route": "/a"}, 3),
                           ({"duration_ms": 30, "bytes": 3, "route": "/b"}, None),
                           ({"duration_ms": 40, "bytes": 4, "route": "/b"}, 5)])
    _libhoney(t, "unsampled", [({"duration_ms": 7}, None), ({"duration_ms": 8}, None)])
    for fields, rate in [({"duration_ms": 50}, "4"), ({"duration_ms": 10}, None)]:
        headers = {"X-Honeycomb-Team": t.key, "X-Honeycomb-Event-Time": str(T0 + 5)}
        if rate:
            headers["X-Honeycomb-Samplerate"] = rate
        assert httpx.post(f"{t.url}/1/events/single", json=fields, headers=headers).status_code == 200
    provider = TracerProvider(resource=Resource.create({"service.name": "otel-sampled"}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{t.url}/v1/traces",
                                                                     headers={"x-honeycomb-team": t.key})))
    tracer = provider.get_tracer("tests.sample_rate")
    for ms, attrs in [(100, {"SampleRate": 5}), (300, {})]:
        start = (T0 + 10) * 1_000_000_000
        tracer.start_span("work", attributes=attrs, start_time=start).end(end_time=start + ms * 1_000_000)
    provider.shutdown()
    return t


def _libhoney(t: Tenant, dataset: str, events: list[tuple[dict[str, Any], int | None]]) -> None:
    client = libhoney.Client(writekey=t.key, dataset=dataset, api_host=t.url, block_on_response=True)
    try:
        for fields, rate in events:
            ev = client.new_event(data=fields)
            ev.created_at = datetime.fromtimestamp(T0 + 1, timezone.utc)  # sent as the event's time
            if rate is not None:
                ev.sample_rate = rate
            ev.send_presampled()  # already sampled by us: libhoney must not drop it
        client.flush()
        assert [client.responses().get(timeout=10)["status_code"] for _ in events] == [202] * len(events)
    finally:
        client.close()


def query(t: Tenant, dataset: str, spec: dict[str, Any]) -> dict[str, Any]:
    res = run_spec(t.url, t.key, dataset, spec, start_time=T0 - 60, end_time=T0 + 60)
    assert res.status_code == 201, res.text
    return res.json()["data"]


def row(t: Tenant, dataset: str, *calcs: dict[str, Any]) -> dict[str, Any]:
    (result,) = query(t, dataset, {"calculations": list(calcs)})["results"]
    return result["data"]


def test_the_documented_example_count_and_avg(sampled: Tenant) -> None:
    """The docs' own table: two traces kept 1 in 10, 200 and 1100 ms -> COUNT 20, AVG 650."""
    r = row(sampled, "doc-example", {"op": "COUNT"}, {"op": "AVG", "column": "duration_ms"})
    assert r == {"COUNT": 20, "AVG(duration_ms)": 650.0}


def test_count_sum_avg_percentiles_weighted_min_max_distinct_not(sampled: Tenant) -> None:
    # As if sent unsampled: 10, 20 x3, 30, 40 x5 (bytes 1, 2 x3, 3, 4 x5).
    r = row(sampled, "mixed", {"op": "COUNT"}, {"op": "SUM", "column": "duration_ms"}, {"op": "SUM", "column": "bytes"},
            {"op": "AVG", "column": "duration_ms"}, {"op": "P50", "column": "duration_ms"},
            {"op": "P10", "column": "duration_ms"}, {"op": "MIN", "column": "duration_ms"},
            {"op": "MAX", "column": "duration_ms"}, {"op": "COUNT_DISTINCT", "column": "duration_ms"})
    assert r["COUNT"] == 10
    assert r["SUM(duration_ms)"] == 300
    assert r["SUM(bytes)"] == 30
    assert r["AVG(duration_ms)"] == pytest.approx(30.0)
    assert r["P50(duration_ms)"] == pytest.approx(35.0)  # ranks 4 and 5 of the ten: 30 and 40
    assert r["P10(duration_ms)"] == pytest.approx(19.0)  # rank 0.9: between 10 and 20
    assert (r["MIN(duration_ms)"], r["MAX(duration_ms)"], r["COUNT_DISTINCT(duration_ms)"]) == (10, 40, 4)


def test_weighted_per_group_and_in_the_time_series(sampled: Tenant) -> None:
    data = query(sampled, "mixed", {"calculations": [{"op": "COUNT"}, {"op": "P50", "column": "duration_ms"}],
                                    "breakdowns": ["route"], "orders": [{"column": "route"}]})
    assert [r["data"] for r in data["results"]] == [
        {"route": "/a", "COUNT": 4, "P50(duration_ms)": 20.0},  # 10, 20, 20, 20
        {"route": "/b", "COUNT": 6, "P50(duration_ms)": 40.0},  # 30, 40 x5
    ]
    per_route: dict[str, int] = {}
    for point in data["series"]:
        per_route[point["data"]["route"]] = per_route.get(point["data"]["route"], 0) + point["data"]["COUNT"]
    assert per_route == {"/a": 4, "/b": 6}


def test_having_and_heatmap_use_the_weighted_counts(sampled: Tenant) -> None:
    data = query(sampled, "mixed", {"calculations": [{"op": "COUNT"}], "breakdowns": ["route"],
                                    "havings": [{"calculate_op": "COUNT", "op": ">", "value": 5}]})
    assert [r["data"] for r in data["results"]] == [{"route": "/b", "COUNT": 6}]
    heat = query(sampled, "mixed", {"calculations": [{"op": "HEATMAP", "column": "duration_ms"}]})
    assert sum(heat["results"][0]["data"]["HEATMAP(duration_ms)"]) == 10


def test_single_event_header_rate(sampled: Tenant) -> None:
    assert row(sampled, "single", {"op": "COUNT"}, {"op": "AVG", "column": "duration_ms"}) == {
        "COUNT": 5, "AVG(duration_ms)": pytest.approx(42.0)}  # (50 x 4 + 10) / 5


def test_otel_sample_rate_attribute(sampled: Tenant) -> None:
    r = row(sampled, "otel-sampled", {"op": "COUNT"}, {"op": "AVG", "column": "duration_ms"},
            {"op": "SUM", "column": "duration_ms"})
    assert r["COUNT"] == 6
    assert r["SUM(duration_ms)"] == pytest.approx(800.0)  # 100 x 5 + 300
    assert r["AVG(duration_ms)"] == pytest.approx(800.0 / 6)


def test_sample_rate_function_reads_each_event_s_rate_and_1_without_one(sampled: Tenant) -> None:
    rate = {"name": "rate", "expression": "SAMPLE_RATE()"}
    data = query(sampled, "mixed", {"calculated_fields": [rate], "breakdowns": ["bytes", "rate"],
                                    "calculations": [{"op": "COUNT"}]})
    assert {r["data"]["bytes"]: r["data"]["rate"] for r in data["results"]} == {1: 1, 2: 3, 3: 1, 4: 5}
    # Honeycomb's example, events that stand for at least 3 each, in WHERE: counted with their weight (3 + 5).
    heavy = {"name": "heavy", "expression": "GTE(SAMPLE_RATE(), 3)"}
    data = query(sampled, "mixed", {"calculated_fields": [heavy], "filters": [{"column": "heavy", "op": "=", "value": True}],
                                    "calculations": [{"op": "COUNT"}]})
    assert [r["data"] for r in data["results"]] == [{"COUNT": 8}]
    data = query(sampled, "unsampled", {"calculated_fields": [rate], "breakdowns": ["rate"], "calculations": [{"op": "COUNT"}]})
    assert [r["data"] for r in data["results"]] == [{"rate": 1, "COUNT": 2}]  # a dataset no rate ever reached


def test_a_bad_header_rate_is_refused_and_stores_nothing(sampled: Tenant) -> None:
    for bad in ("ten", "0", "-3"):
        r = httpx.post(f"{sampled.url}/1/events/refused", json={"duration_ms": 1},
                       headers={"X-Honeycomb-Team": sampled.key, "X-Honeycomb-Samplerate": bad})
        assert r.status_code == 400 and "X-Honeycomb-Samplerate" in r.json()["error"]
    doc = httpx.get(f"{sampled.url}/api/datasets", headers={"X-Honeycomb-Team": sampled.key}).json()
    names = {d["name"] for d in doc["datasets"]}
    assert "refused" not in names
