"""Hand-built OTLP requests for tests that need exact control of the bytes."""

from __future__ import annotations

import secrets
import time

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue


def request(trace_id: bytes | None = None, spans: int = 3, service: str = "svc", bad_span_ids: int = 0) -> ExportTraceServiceRequest:
    """One trace of ``spans`` spans; the last ``bad_span_ids`` spans get a 4-byte span id (invalid)."""
    trace_id = trace_id or secrets.token_bytes(16)
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.append(KeyValue(key="service.name", value=AnyValue(string_value=service)))
    ss = rs.scope_spans.add()
    now = time.time_ns()
    for i in range(spans):
        sp = ss.spans.add()
        sp.trace_id = trace_id
        sp.span_id = secrets.token_bytes(4 if i >= spans - bad_span_ids else 8)
        sp.name = f"span-{i}"
        sp.start_time_unix_nano = now + i * 1000
        sp.end_time_unix_nano = now + i * 1000 + 5_000_000
        sp.attributes.append(KeyValue(key="seq", value=AnyValue(int_value=i)))
    return req
