"""Bad input gets the protocol's own clear error and leaves the store as it was."""

from __future__ import annotations

import gzip
import json

import httpx
import pytest
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from apiary.server.decoding import INLINE_BELOW_BYTES
from tests.ingest.otlp_requests import request
from tests.ingest.shared_server import environment as apiary, module_server  # noqa: F401 - fixtures
from tests.server import ApiaryProcess, create_key

PB = {"content-type": "application/x-protobuf"}


def counts(apiary: ApiaryProcess) -> dict[str, int]:
    r = httpx.get(f"{apiary.url}/api/datasets", headers={"x-honeycomb-team": apiary.key})
    assert r.status_code == 200
    return {d["name"]: d["count"] for d in r.json()["datasets"]}


def post(apiary: ApiaryProcess, body: bytes, headers: dict[str, str] | None = None, key: str | None = None) -> httpx.Response:
    h = {**PB, "x-honeycomb-team": apiary.key if key is None else key, **(headers or {})}
    return httpx.post(f"{apiary.url}/v1/traces", content=body, headers=h, timeout=60)


def status_message(r: httpx.Response) -> str:
    if r.headers["content-type"].startswith("application/json"):
        return r.json()["message"]
    st = status_pb2.Status()
    st.ParseFromString(r.content)
    return st.message


@pytest.fixture
def seeded(apiary: ApiaryProcess) -> dict[str, int]:
    assert post(apiary, request(spans=5).SerializeToString()).status_code == 200
    before = counts(apiary)
    assert before == {"svc": 5}
    return before


def test_truncated_protobuf(apiary: ApiaryProcess, seeded: dict[str, int]) -> None:
    body = request(spans=50, service="other").SerializeToString()
    r = post(apiary, body[: len(body) // 2])
    assert r.status_code == 400
    assert "protobuf" in status_message(r)
    assert counts(apiary) == seeded


def test_malformed_json(apiary: ApiaryProcess, seeded: dict[str, int]) -> None:
    r = post(apiary, b'{"resourceSpans": [', {"content-type": "application/json"})
    assert r.status_code == 400 and "JSON" in status_message(r)
    r = post(apiary, json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz"}]}]}]}).encode(),
             {"content-type": "application/json"})
    assert r.status_code == 400 and "hex" in status_message(r)
    assert counts(apiary) == seeded


def test_wrong_content_type(apiary: ApiaryProcess, seeded: dict[str, int]) -> None:
    r = post(apiary, request().SerializeToString(), {"content-type": "text/plain"})
    assert r.status_code == 415
    assert "application/x-protobuf" in status_message(r)
    assert counts(apiary) == seeded


def test_gzip_bomb(apiary: ApiaryProcess, seeded: dict[str, int]) -> None:
    bomb = gzip.compress(b"\0" * (200 * 1024 * 1024), compresslevel=9)
    assert len(bomb) < 1024 * 1024
    r = post(apiary, bomb, {"content-encoding": "gzip"})
    assert r.status_code == 413
    assert "limit" in status_message(r)
    assert counts(apiary) == seeded


def test_gzip_body_is_accepted(apiary: ApiaryProcess, seeded: dict[str, int]) -> None:
    r = post(apiary, gzip.compress(request(spans=4, service="zipped").SerializeToString()), {"content-encoding": "gzip"})
    assert r.status_code == 200
    assert counts(apiary) == {**seeded, "zipped": 4}


def test_fifty_megabyte_body(apiary: ApiaryProcess, seeded: dict[str, int]) -> None:
    r = post(apiary, b"\x0a" * (50 * 1024 * 1024))
    assert r.status_code == 413
    assert counts(apiary) == seeded


def test_unknown_and_missing_key(apiary: ApiaryProcess, seeded: dict[str, int]) -> None:
    body = request(service="intruder").SerializeToString()
    r = post(apiary, body, key="not-a-key")
    assert r.status_code == 401
    assert "x-honeycomb-team" in status_message(r)
    r = httpx.post(f"{apiary.url}/v1/traces", content=body, headers=PB)
    assert r.status_code == 401 and "missing" in status_message(r)
    assert counts(apiary) == seeded


def test_another_environments_key_sees_nothing(apiary: ApiaryProcess, seeded: dict[str, int]) -> None:
    trace_id = bytes.fromhex("11" * 16)
    assert post(apiary, request(trace_id=trace_id, service="private").SerializeToString()).status_code == 200
    other = create_key(apiary.data_dir, "staging")  # while the server runs
    h = {"x-honeycomb-team": other}
    assert httpx.get(f"{apiary.url}/api/traces/{trace_id.hex()}", headers=h).status_code == 404
    assert httpx.get(f"{apiary.url}/1/columns/private", headers=h).status_code == 404
    assert httpx.get(f"{apiary.url}/api/datasets", headers=h).json()["datasets"] == []
    assert httpx.get(f"{apiary.url}/api/traces/{trace_id.hex()}", headers={"x-honeycomb-team": apiary.key}).status_code == 200


def test_ingest_only_key_cannot_read(apiary: ApiaryProcess) -> None:
    writer = create_key(apiary.data_dir, "dev", ingest_only=True)
    assert post(apiary, request(service="w").SerializeToString(), key=writer).status_code == 200
    r = httpx.get(f"{apiary.url}/api/datasets", headers={"x-honeycomb-team": writer})
    assert r.status_code == 403 and "--ingest-only" in r.json()["error"]


def test_partial_success_rejects_only_invalid_spans(apiary: ApiaryProcess, seeded: dict[str, int]) -> None:
    r = post(apiary, request(spans=6, service="partial", bad_span_ids=2).SerializeToString())
    assert r.status_code == 200
    resp = ExportTraceServiceResponse()
    resp.ParseFromString(r.content)
    assert resp.partial_success.rejected_spans == 2
    assert "span_id" in resp.partial_success.error_message
    assert counts(apiary) == {**seeded, "partial": 4}


def test_large_request_through_the_decode_workers_keeps_every_span_and_the_rejections(
        apiary: ApiaryProcess, seeded: dict[str, int]) -> None:
    trace_id = bytes.fromhex("22" * 16)
    body = request(trace_id=trace_id, spans=600, service="bulk", bad_span_ids=3).SerializeToString()
    assert len(body) > INLINE_BELOW_BYTES  # decoded in a worker process and sent back, not inline
    r = post(apiary, body)
    assert r.status_code == 200
    resp = ExportTraceServiceResponse()
    resp.ParseFromString(r.content)
    assert resp.partial_success.rejected_spans == 3 and "span_id" in resp.partial_success.error_message
    assert counts(apiary) == {**seeded, "bulk": 597}
    spans = httpx.get(f"{apiary.url}/api/traces/{trace_id.hex()}", headers={"x-honeycomb-team": apiary.key}).json()["spans"]
    assert sorted(s["seq"] for s in spans) == list(range(597))  # an int attribute, still an int
    assert {s["service.name"] for s in spans} == {"bulk"} and all(s["duration_ms"] == 5.0 for s in spans)


def test_json_partial_success_and_enum_names(apiary: ApiaryProcess) -> None:
    doc = {"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "js"}}]},
                              "scopeSpans": [{"scope": {"name": "manual"}, "spans": [
                                  {"traceId": "5759e988bd862e3fe1be46a994272793", "spanId": "53995c3f42cd8ad8", "name": "ok",
                                   "kind": "SPAN_KIND_CLIENT", "startTimeUnixNano": "1700000000000000000",
                                   "endTimeUnixNano": "1700000000250000000", "status": {"code": 2, "message": "boom"},
                                   "attributes": [{"key": "http.status_code", "value": {"intValue": "503"}}]},
                                  {"traceId": "5759e988bd862e3fe1be46a994272793", "spanId": "", "name": "no id"}]}]}]}
    r = post(apiary, json.dumps(doc).encode(), {"content-type": "application/json"})
    assert r.status_code == 200
    assert r.json()["partialSuccess"]["rejectedSpans"] == "1"
    (span,) = httpx.get(f"{apiary.url}/api/traces/1-5759e988-bd862e3fe1be46a994272793",
                        headers={"x-honeycomb-team": apiary.key}).json()["spans"]
    assert span["span.kind"] == "client"
    assert span["duration_ms"] == 250.0
    assert span["error"] is True and span["status_message"] == "boom"
    assert span["http.status_code"] == 503
