"""A known set of traces for the UI tests, as hand-built OTLP requests (exact names, times and durations).

* The Cruddur home-feed trace: the browser's page load (frontend-react-js) calls
  the backend (backend-flask), whose custom ``mock-data`` span calls postgres,
  which fails. Its attribute ``app.note`` is an HTML payload that must be shown as text.
* ``MESSAGE_TRACES`` one-span traces ``GET /api/messages`` in backend-flask over
  the last 30 minutes with known durations and status codes, for query numbers.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

XSS = "<img src=x onerror=alert(1)>"
HOME_TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
MESSAGE_TRACES = 40
#: Message durations: 10 ms + 5 ms * (i % 10); every 8th request fails with HTTP 500.
SLOW_MS = 1500.0


def _kv(key: str, value: object) -> KeyValue:
    if isinstance(value, bool):
        return KeyValue(key=key, value=AnyValue(bool_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    if isinstance(value, float):
        return KeyValue(key=key, value=AnyValue(double_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=str(value)))


@dataclass
class SpanDef:
    service: str
    name: str
    span_id: str
    parent_id: str | None
    start_ms: float  # after the trace's start
    duration_ms: float
    attrs: dict[str, object]
    error: bool = False
    kind: int = Span.SPAN_KIND_INTERNAL


def home_trace() -> list[SpanDef]:
    return [
        SpanDef("frontend-react-js", "HomeFeedPage load", "a000000000000001", None, 0, 200, {"page": "/"}, kind=Span.SPAN_KIND_CLIENT),
        SpanDef("backend-flask", "GET /api/activities/home", "b000000000000002", "a000000000000001", 20, 120,
                {"http.method": "GET", "http.route": "/api/activities/home", "http.status_code": 500}, kind=Span.SPAN_KIND_SERVER),
        SpanDef("backend-flask", "mock-data", "b000000000000003", "b000000000000002", 30, 80,
                {"app.now": "2024-02-01T00:00:00", "app.result_length": 3, "app.note": XSS}),
        SpanDef("postgres", "SELECT activities", "c000000000000004", "b000000000000003", 40, 30,
                {"db.system": "postgresql", "db.statement": "SELECT * FROM activities"}, error=True, kind=Span.SPAN_KIND_SERVER),
        SpanDef("backend-flask", "serialize", "b000000000000005", "b000000000000002", 115, 10, {"app.items": 3}),
    ]


def message_duration(i: int) -> float:
    return SLOW_MS if i == MESSAGE_TRACES - 1 else 10.0 + 5.0 * (i % 10)


def message_status(i: int) -> int:
    return 500 if i % 8 == 7 else 200


def requests(now_ns: int | None = None) -> list[ExportTraceServiceRequest]:
    """One request per service; the home trace starts 2 minutes ago, messages spread over 30 minutes."""
    now_ns = now_ns or time.time_ns()
    by_service: dict[str, ExportTraceServiceRequest] = {}

    def add(service: str, trace_id: str, d: SpanDef, start_ns: int) -> None:
        req = by_service.get(service)
        if req is None:
            req = by_service[service] = ExportTraceServiceRequest()
            rs = req.resource_spans.add()
            rs.resource.attributes.extend([_kv("service.name", service), _kv("telemetry.sdk.language", "python")])
            rs.scope_spans.add().scope.name = "tests.ui"
        sp = req.resource_spans[0].scope_spans[0].spans.add()
        sp.trace_id = bytes.fromhex(trace_id)
        sp.span_id = bytes.fromhex(d.span_id)
        if d.parent_id:
            sp.parent_span_id = bytes.fromhex(d.parent_id)
        sp.name = d.name
        sp.kind = d.kind
        sp.start_time_unix_nano = start_ns + int(d.start_ms * 1e6)
        sp.end_time_unix_nano = sp.start_time_unix_nano + int(d.duration_ms * 1e6)
        sp.attributes.extend(_kv(k, v) for k, v in d.attrs.items())
        if d.error:
            sp.status.code = Status.STATUS_CODE_ERROR
            sp.status.message = "relation does not exist"
            ev = sp.events.add()
            ev.name = "exception"
            ev.time_unix_nano = sp.start_time_unix_nano + 25_000_000
            ev.attributes.extend([_kv("exception.type", "UndefinedTable"), _kv("exception.message", "relation \"activities\" does not exist")])
            link = sp.links.add()
            link.trace_id = bytes.fromhex("0af7651916cd43dd8448eb211c80319c")
            link.span_id = bytes.fromhex("00f067aa0ba902b7")

    home_start = now_ns - 120 * 10**9
    for d in home_trace():
        add(d.service, HOME_TRACE_ID, d, home_start)
    for i in range(MESSAGE_TRACES):
        start = now_ns - (30 * 60 - i * 45) * 10**9
        d = SpanDef("backend-flask", "GET /api/messages", f"d{i:015x}", None, 0, message_duration(i),
                    {"http.method": "GET", "http.route": "/api/messages", "http.status_code": message_status(i),
                     "app.user": f"user{i % 4}"}, error=message_status(i) == 500, kind=Span.SPAN_KIND_SERVER)
        add("backend-flask", message_trace_id(i), d, start)
    return list(by_service.values())


def message_trace_id(i: int) -> str:
    return f"e{i:031x}"


def send(url: str, key: str, now_ns: int | None = None) -> None:
    import httpx

    for req in requests(now_ns):
        r = httpx.post(f"{url}/v1/traces", content=req.SerializeToString(),
                       headers={"content-type": "application/x-protobuf", "x-honeycomb-team": key}, timeout=30)
        r.raise_for_status()
