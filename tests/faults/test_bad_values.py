"""Values no column can hold, sent by the real SDKs, on both stores: what is stored is what docs/bad-values.md says.

Spans are built as the OTel SDK's ``ReadableSpan`` (so the times and attributes are exactly what an
instrumented app could hand the exporter) and sent by the SDK's exporter, or encoded by its encoder
when the test reads the OTLP answer (``partial_success``) itself.
"""

from __future__ import annotations

import math
import random
import time
from datetime import datetime, timezone
from typing import Any

import httpx
import libhoney
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.trace import SpanContext, TraceFlags

from tests.server import ApiaryProcess

UINT64_MAX = 2**64 - 1
YEAR_2500_NS = 16_725_225_600 * 10**9
RESOURCE = Resource.create({"service.name": "bad-values"})


def span(name: str, trace_id: int, span_id: int, start: int, end: int, **attributes: Any) -> ReadableSpan:
    ctx = SpanContext(trace_id, span_id, is_remote=False, trace_flags=TraceFlags(1))
    return ReadableSpan(name, ctx, resource=RESOURCE, attributes=attributes, start_time=start, end_time=end)


def new_trace_id() -> int:
    return random.getrandbits(128) | 1


def export(server: ApiaryProcess, spans: list[ReadableSpan]) -> None:
    exporter = OTLPSpanExporter(endpoint=f"{server.url}/v1/traces", headers={"x-honeycomb-team": server.key})
    assert exporter.export(spans) == SpanExportResult.SUCCESS
    exporter.shutdown()


def post(server: ApiaryProcess, spans: list[ReadableSpan]) -> ExportTraceServiceResponse:
    r = httpx.post(f"{server.url}/v1/traces", content=encode_spans(spans).SerializeToString(), timeout=30,
                   headers={"content-type": "application/x-protobuf", "x-honeycomb-team": server.key})
    assert r.status_code == 200, r.text
    return ExportTraceServiceResponse.FromString(r.content)


def trace(server: ApiaryProcess, trace_id: int) -> list[dict[str, Any]]:
    r = httpx.get(f"{server.url}/api/traces/{trace_id:032x}", headers={"x-honeycomb-team": server.key}, timeout=30)
    if r.status_code == 404:
        return []
    assert r.status_code == 200, r.text
    return r.json()["spans"]


def test_nan_and_infinity_attributes_are_stored_as_null(store_apiary: ApiaryProcess) -> None:
    tid, now = new_trace_id(), time.time_ns()
    export(store_apiary, [
        span("nan", tid, 1, now, now + 5_000_000, **{"app.ratio": math.nan, "app.ok": 1.5}),
        span("inf", tid, 2, now, now + 5_000_000, **{"app.ratio": math.inf, "app.neg": -math.inf, "app.ok": 2.5}),
        span("finite", tid, 3, now, now + 5_000_000, **{"app.ratio": 0.25, "app.ok": 3.5}),
    ])
    by_name = {s["name"]: s for s in trace(store_apiary, tid)}
    assert set(by_name) == {"nan", "inf", "finite"}
    assert "app.ratio" not in by_name["nan"] and "app.ratio" not in by_name["inf"] and "app.neg" not in by_name["inf"]
    assert [by_name[n]["app.ok"] for n in ("nan", "inf", "finite")] == [1.5, 2.5, 3.5]
    assert by_name["finite"]["app.ratio"] == 0.25
    # The column still sums to a number: no NaN reached it.
    headers = {"x-honeycomb-team": store_apiary.key}
    q = httpx.post(f"{store_apiary.url}/1/queries/bad-values", headers=headers, timeout=30,
                   json={"calculations": [{"op": "SUM", "column": "app.ratio"}], "time_range": 3600,
                         "filters": [{"column": "trace.trace_id", "op": "=", "value": f"{tid:032x}"}]})
    assert q.status_code == 200, q.text
    r = httpx.post(f"{store_apiary.url}/1/query_results/bad-values", headers=headers, json={"query_id": q.json()["id"]},
                   timeout=30)
    assert r.status_code == 201, r.text
    assert r.json()["data"]["results"][0]["data"]["SUM(app.ratio)"] == 0.25


def test_an_end_before_the_start_gives_duration_zero(store_apiary: ApiaryProcess) -> None:
    tid, now = new_trace_id(), time.time_ns()
    export(store_apiary, [span("backwards", tid, 1, now, now - 3_000_000_000), span("forwards", tid, 2, now, now + 3_000_000)])
    by_name = {s["name"]: s for s in trace(store_apiary, tid)}
    assert by_name["backwards"]["duration_ms"] == 0
    assert by_name["forwards"]["duration_ms"] == 3.0


def test_an_unset_start_takes_the_end_time_or_the_time_received(store_apiary: ApiaryProcess) -> None:
    tid, now = new_trace_id(), time.time_ns()
    export(store_apiary, [span("no-start", tid, 1, 0, now), span("no-times", tid, 2, 0, 0)])
    by_name = {s["name"]: s for s in trace(store_apiary, tid)}
    assert set(by_name) == {"no-start", "no-times"}
    for s in by_name.values():
        assert s["duration_ms"] == 0
        assert not s["timestamp"].startswith("1970")
    assert by_name["no-start"]["timestamp"][:16] == time.strftime("%Y-%m-%dT%H:%M", time.gmtime(now / 1e9))


def test_times_past_2262_are_refused_with_partial_success(store_apiary: ApiaryProcess) -> None:
    tid, now = new_trace_id(), time.time_ns()
    answer = post(store_apiary, [span("year-2500", tid, 1, YEAR_2500_NS, YEAR_2500_NS + 1000),
                                 span("uint64-max", tid, 2, now, UINT64_MAX),
                                 span("fine", tid, 3, now, now + 1000)])
    assert answer.partial_success.rejected_spans == 2
    assert "2262-04-11" in answer.partial_success.error_message
    assert "'year-2500'" in answer.partial_success.error_message
    assert [s["name"] for s in trace(store_apiary, tid)] == ["fine"]


def test_a_span_id_repeated_in_one_request_keeps_the_first(store_apiary: ApiaryProcess) -> None:
    tid, now = new_trace_id(), time.time_ns()
    answer = post(store_apiary, [span("first", tid, 7, now, now + 1000), span("again", tid, 7, now, now + 2000),
                                 span("other", tid, 8, now, now + 1000)])
    assert answer.partial_success.rejected_spans == 1
    assert "appears twice" in answer.partial_success.error_message
    assert sorted(s["name"] for s in trace(store_apiary, tid)) == ["first", "other"]


def test_honeycomb_events_with_nan_huge_numbers_and_out_of_range_times(store_apiary: ApiaryProcess) -> None:
    """libhoney writes NaN and Infinity as bare literals (Python's json.dumps does); they are stored as null."""
    tid = f"{new_trace_id():032x}"
    client = libhoney.Client(writekey=store_apiary.key, dataset="bad-values-hny", api_host=store_apiary.url,
                             block_on_response=True)
    try:
        for fields, created in [
            ({"name": "nan", "duration_ms": math.nan, "app.x": math.inf}, None),
            ({"name": "huge", "duration_ms": 1e308 * 10, "app.big": 123456789012345678901234567890}, None),
            ({"name": "future"}, datetime(2500, 1, 1, tzinfo=timezone.utc)),
            ({"name": "fine", "duration_ms": 4}, None),
        ]:
            ev = client.new_event()
            ev.add({"trace.trace_id": tid, **fields})
            if created is not None:
                ev.created_at = created
            ev.send()
        client.flush()
        answers = [client.responses().get(timeout=10) for _ in range(4)]
    finally:
        client.close()
    assert sorted(a["status_code"] for a in answers) == [202, 202, 202, 400]
    assert any("2262-04-11" in (a.get("error") or "") for a in answers if a["status_code"] == 400)
    by_name = {s["name"]: s for s in trace(store_apiary, int(tid, 16))}
    assert set(by_name) == {"nan", "huge", "fine"}
    assert "duration_ms" not in by_name["nan"] and "app.x" not in by_name["nan"]
    assert "duration_ms" not in by_name["huge"]
    assert by_name["huge"]["app.big"] == float(123456789012345678901234567890)
    assert by_name["fine"]["duration_ms"] == 4


def test_a_single_honeycomb_event_past_2262_is_refused(store_apiary: ApiaryProcess) -> None:
    r = httpx.post(f"{store_apiary.url}/1/events/bad-values-hny", json={"name": "far"}, timeout=30,
                   headers={"X-Honeycomb-Team": store_apiary.key, "X-Honeycomb-Event-Time": "2600-01-01T00:00:00Z"})
    assert r.status_code == 400
    assert "2262-04-11" in r.json()["error"]
