"""Memory bounded by bytes in flight: large bodies past the budget get 429 + Retry-After, small ones are served.

Two clients open large uploads and stall (their declared Content-Length is reserved before a byte
is buffered); meanwhile further large bodies, on /v1/traces and /v1/logs, are refused with 429 and
Retry-After, and the OTel SDK's small exports still land.
"""

from __future__ import annotations

import secrets
import socket
import time
from typing import Any

import httpx
from google.rpc import status_pb2
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.sdk.trace.export import SpanExportResult

from tests.hardening.conftest import Start, counts, export_spans
from tests.ingest.otlp_requests import request as trace_request

BUDGET = 8 * 1024 * 1024
LARGE = 3 * 1024 * 1024


def _large_traces() -> bytes:
    req = trace_request(spans=1, service="large")
    req.resource_spans[0].scope_spans[0].spans[0].attributes.append(
        KeyValue(key="blob", value=AnyValue(string_value="x" * 60_000)))
    body = req.SerializeToString()
    while len(body) < LARGE:
        req.resource_spans.append(req.resource_spans[0])
        body = req.SerializeToString()
    return body


def _large_logs() -> bytes:
    req = ExportLogsServiceRequest()
    rl = req.resource_logs.add()
    rl.resource.attributes.append(KeyValue(key="service.name", value=AnyValue(string_value="large")))
    records = rl.scope_logs.add()
    while req.ByteSize() < LARGE:
        records.log_records.add().body.string_value = secrets.token_hex(30_000)
    return req.SerializeToString()


def _stalled_upload(url: str, key: str, length: int) -> socket.socket:
    """A client that declares a large body, sends its first kilobyte, and waits."""
    port = int(url.rsplit(":", 1)[1])
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(f"POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-protobuf\r\n"
              f"x-honeycomb-team: {key}\r\nContent-Length: {length}\r\n\r\n".encode() + b"\0" * 1024)
    return s


def _health(url: str) -> dict[str, Any]:
    return httpx.get(f"{url}/api/health", timeout=30).json()


def _post(url: str, path: str, key: str, body: bytes) -> httpx.Response:
    return httpx.post(f"{url}{path}", content=body, timeout=120,
                      headers={"content-type": "application/x-protobuf", "x-honeycomb-team": key})


def test_large_bodies_past_the_budget_get_429_while_small_clients_are_served(start: Start) -> None:
    served = start("duckdb", {"dev": False}, "--max-inflight-bytes", str(BUDGET), "--max-env-inflight-bytes", str(BUDGET))
    key = served.keys["dev"]
    stalled = [_stalled_upload(served.url, key, LARGE) for _ in range(2)]
    try:
        deadline = time.monotonic() + 30
        while _health(served.url)["body_bytes_in_flight"] < 2 * LARGE and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _health(served.url)["body_bytes_in_flight"] == 2 * LARGE

        for path, body in (("/v1/traces", _large_traces()), ("/v1/logs", _large_logs())):
            r = _post(served.url, path, key, body)
            assert r.status_code == 429, (path, r.status_code, r.text)
            assert int(r.headers["retry-after"]) >= 1
            status = status_pb2.Status()
            status.ParseFromString(r.content)
            assert "APIARY_MAX_INFLIGHT_BYTES" in status.message

        acknowledged = 0
        for _ in range(5):  # the SDK's periodic small exports go on being served
            result, spans = export_spans(served.url, key, "small", _three_spans)
            assert result is SpanExportResult.SUCCESS
            acknowledged += len(spans)
        assert counts(served.url, key).get("small") == acknowledged
    finally:
        for s in stalled:
            s.close()

    deadline = time.monotonic() + 30
    while _health(served.url)["body_bytes_in_flight"] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _health(served.url)["body_bytes_in_flight"] == 0  # given back once those clients left
    assert _post(served.url, "/v1/traces", key, _large_traces()).status_code == 200
    assert _post(served.url, "/v1/logs", key, _large_logs()).status_code == 200


def _three_spans(tracer: Any) -> None:
    with tracer.start_as_current_span("tick"):
        for name in ("a", "b"):
            with tracer.start_as_current_span(name):
                pass


def test_a_body_that_stops_arriving_is_answered_408(start: Start) -> None:
    served = start("duckdb", {"dev": False}, "--body-timeout", "2")
    s = _stalled_upload(served.url, served.keys["dev"], 100_000)
    try:
        s.settimeout(30)
        answer = s.recv(4096)
        assert answer.startswith(b"HTTP/1.1 408 ")
        assert b"x-content-type-options: nosniff" in answer.lower()
    finally:
        s.close()
    assert _health(served.url)["body_bytes_in_flight"] == 0
