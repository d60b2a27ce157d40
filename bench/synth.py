"""Synthetic OTLP requests shaped like a real service's: shared by the benchmarks."""

from __future__ import annotations

import random
import time

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

SERVICES = ("backend-flask", "frontend-react-js", "worker")
ROUTES = tuple(f"/api/route{i}" for i in range(20))


def _kv(key: str, value: object) -> KeyValue:
    if isinstance(value, bool):
        return KeyValue(key=key, value=AnyValue(bool_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    if isinstance(value, float):
        return KeyValue(key=key, value=AnyValue(double_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=str(value)))


def make_request(spans: int, rng: random.Random, service: str | None = None, now_ns: int | None = None) -> bytes:
    """One ExportTraceServiceRequest of ``spans`` spans, ~10 attributes each, traces of 8 spans."""
    now_ns = now_ns or time.time_ns()
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    svc = service or rng.choice(SERVICES)
    for k, v in (("service.name", svc), ("telemetry.sdk.language", "python"), ("host.name", "bench-host")):
        rs.resource.attributes.append(_kv(k, v))
    ss = rs.scope_spans.add()
    ss.scope.name = "opentelemetry.instrumentation.flask"
    ss.scope.version = "0.66b1"
    trace_id = b""
    root = b""
    for i in range(spans):
        if i % 8 == 0:
            trace_id = rng.randbytes(16)
            root = b""
        sp = ss.spans.add()
        sp.trace_id = trace_id
        sp.span_id = rng.randbytes(8)
        if root:
            sp.parent_span_id = root
        else:
            root = sp.span_id
        route = rng.choice(ROUTES)
        sp.name = f"GET {route}"
        sp.kind = Span.SPAN_KIND_SERVER if not sp.parent_span_id else Span.SPAN_KIND_INTERNAL
        dur = int(rng.lognormvariate(16, 1.0))
        sp.start_time_unix_nano = now_ns - rng.randrange(0, 10**9)
        sp.end_time_unix_nano = sp.start_time_unix_nano + dur
        status = 500 if rng.random() < 0.02 else 200
        if status == 500:
            sp.status.code = 2
        sp.attributes.extend([
            _kv("http.method", "GET"), _kv("http.route", route), _kv("http.status_code", status),
            _kv("http.scheme", "http"), _kv("http.target", route), _kv("net.peer.ip", "127.0.0.1"),
            _kv("http.user_agent", "bench/1.0"), _kv("app.user_id", f"user{rng.randrange(1000)}"),
            _kv("app.result_length", rng.randrange(50)), _kv("http.flavor", "1.1"),
        ])
    return req.SerializeToString()
