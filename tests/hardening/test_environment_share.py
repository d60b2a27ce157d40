"""Each environment's share of intake: one environment's flood is refused before its bodies are read or decoded,
and another environment goes on being served, over OTLP/HTTP, OTLP/gRPC and Honeycomb's batch API alike.

Two stories, on both stores:

* Bytes: the flooding environment holds a large upload open (its declared Content-Length is reserved at
  once). Its next bodies, on any receiver, are refused with 429 + Retry-After (gRPC RESOURCE_EXHAUSTED with
  RetryInfo) naming the per-environment bound, while the calm environment's bodies of the same size, sent
  by the OTel SDK's HTTP and gRPC exporters, are acknowledged and stored.
* The loader: wide spans (1,000 new attribute keys each) sent together use up the environment's share of
  the loader; once the store refuses one, that environment's requests are refused for the Retry-After it
  was given without being read: a body that is not OTLP at all gets 429, not the 400 decoding it would
  give. The calm environment is not held off.
"""

from __future__ import annotations

import concurrent.futures
import random
import time
from typing import Any, Iterator

import grpc
import httpx
import pytest
from google.rpc import status_pb2
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from apiary.store.load_shares import COSTLY_RETRY_AFTER_S
from tests.grpc.conftest import STORES, TRACE_EXPORT, GrpcApiary, start_grpc_apiary, stop_grpc_apiary
from tests.grpc.test_bad_input import retry_delay
from tests.grpc.test_byte_budget import large_request  # about 1.5 MiB: over the 1 MiB of a small body
from tests.hardening.test_body_budget import _stalled_upload
from tests.ingest.otlp_requests import request

MIB = 1024 * 1024
BUDGET = 16 * MIB  # so each environment's share is 8 MiB, and a large body may use 7 of it
HELD = 6 * MIB + MIB // 2


@pytest.fixture(params=STORES)
def server(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[GrpcApiary]:
    proc, url = start_grpc_apiary(tmp_path, request.param, envs=("flood", "calm"),
                                  env={"APIARY_MAX_INFLIGHT_BYTES": str(BUDGET)})
    try:
        yield proc
    finally:
        stop_grpc_apiary(proc, url)


def _health(server: GrpcApiary) -> dict[str, Any]:
    return httpx.get(f"{server.url}/api/health", timeout=30).json()


def _post(server: GrpcApiary, key: str, body: bytes, path: str = "/v1/traces",
          ctype: str = "application/x-protobuf") -> httpx.Response:
    return httpx.post(f"{server.url}{path}", content=body, timeout=120,
                      headers={"content-type": ctype, "x-honeycomb-team": key})


def _grpc_export(server: GrpcApiary, key: str, body: bytes) -> grpc.RpcError | None:
    with grpc.insecure_channel(server.grpc_target) as channel:
        try:
            channel.unary_unary(TRACE_EXPORT)(body, metadata=[("x-honeycomb-team", key)], timeout=120)
        except grpc.RpcError as exc:
            return exc
    return None


def _status_message(r: httpx.Response) -> str:
    status = status_pb2.Status()
    status.ParseFromString(r.content)
    return status.message


def _sdk_export(exporter: Any, service: str, spans: int) -> SpanExportResult:
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("share")
    for i in range(spans):
        with tracer.start_as_current_span(f"op-{i}") as span:
            span.set_attribute("payload", "y" * 1500)  # 600 of these: a body over 1 MiB, like the flood's
    provider.shutdown()
    try:
        return exporter.export(list(memory.get_finished_spans()))
    finally:
        exporter.shutdown()


def test_an_environment_past_its_share_of_body_bytes_is_refused_while_another_is_served(server: GrpcApiary) -> None:
    flood, calm = server.keys["flood"], server.keys["calm"]
    stalled = _stalled_upload(server.url, flood, HELD)
    try:
        deadline = time.monotonic() + 30
        while _health(server)["body_bytes_in_flight"] < HELD and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _health(server)["body_bytes_in_flight"] == HELD

        r = _post(server, flood, large_request("flood"))
        assert r.status_code == 429, r.text
        assert int(r.headers["retry-after"]) >= 1
        assert "APIARY_MAX_ENV_INFLIGHT_BYTES" in _status_message(r)
        error = _grpc_export(server, flood, large_request("flood"))
        assert error is not None and error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, error
        assert "APIARY_MAX_ENV_INFLIGHT_BYTES" in error.details()
        assert min(retry_delay(error)) >= 1
        events = b"[" + b",".join([b'{"data": {"name": "e", "blob": "%s"}}' % (b"z" * 1000)] * 1100) + b"]"
        r = _post(server, flood, events, "/1/batch/flood-events", "application/json")
        assert r.status_code == 429 and "APIARY_MAX_ENV_INFLIGHT_BYTES" in r.json()["error"], r.text

        # The other environment's bodies of the same size are read, decoded and stored meanwhile.
        assert _post(server, calm, large_request("calm-raw")).status_code == 200
        assert _grpc_export(server, calm, large_request("calm-raw")) is None
        assert _post(server, calm, events, "/1/batch/calm-events", "application/json").status_code == 200
        headers = {"x-honeycomb-team": calm}
        assert _sdk_export(HttpSpanExporter(endpoint=f"{server.url}/v1/traces", headers=headers, timeout=60),
                           "calm-http", 600) is SpanExportResult.SUCCESS
        assert _sdk_export(GrpcSpanExporter(endpoint=server.grpc_endpoint, headers=headers, timeout=60),
                           "calm-grpc", 600) is SpanExportResult.SUCCESS
        assert server.counts(calm) == {"calm-raw": 2400, "calm-events": 1100, "calm-http": 600, "calm-grpc": 600}
        assert server.counts(flood) == {}
    finally:
        stalled.close()

    deadline = time.monotonic() + 30
    while _health(server)["body_bytes_in_flight"] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _post(server, flood, large_request("flood")).status_code == 200  # its share is given back with the upload
    assert server.counts(flood) == {"flood": 1200}


def _wide(n: int) -> bytes:
    """One span with 1,000 attribute keys never seen before: costly to load (a column each, up to the caps)."""
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.append(KeyValue(key="service.name", value=AnyValue(string_value="wide")))
    span = rs.scope_spans.add().spans.add()
    span.trace_id, span.span_id, span.name = random.randbytes(16), random.randbytes(8), "wide"
    span.start_time_unix_nano = time.time_ns()
    span.end_time_unix_nano = span.start_time_unix_nano + 1_000_000
    for i in range(1000):
        span.attributes.append(KeyValue(key=f"w{n}.{i}", value=AnyValue(int_value=i)))
    return req.SerializeToString()


LOADER_SHARE = "share of the loader"


def test_an_environment_past_its_loader_share_is_refused_before_its_bodies_are_decoded(server: GrpcApiary) -> None:
    flood, calm = server.keys["flood"], server.keys["calm"]
    not_otlp = b"this is not an OTLP message " * 1000  # decoded, it would be a 400
    assert _post(server, calm, not_otlp).status_code == 400
    held_off: tuple[httpx.Response, grpc.RpcError | None] | None = None
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        for attempt in range(6):
            futures = [pool.submit(_post, server, flood, _wide(attempt * 100 + n)) for n in range(8)]
            for done in concurrent.futures.as_completed(futures):
                r = done.result()
                refused_at = time.monotonic()
                # The store's own refusal, which starts the hold-off (a request refused while held off is
                # answered near its end, too late to test the hold-off with).
                if r.status_code == 429 and LOADER_SHARE in _status_message(r) and "not read" not in _status_message(r):
                    garbage = _post(server, flood, not_otlp)
                    grpc_garbage = _grpc_export(server, flood, not_otlp)
                    if time.monotonic() - refused_at < 0.9:  # well within the Retry-After the store gave
                        held_off = (garbage, grpc_garbage)
                    break
                assert r.status_code in (200, 429), r.text
            concurrent.futures.wait(futures)
            if held_off is not None:
                break
    assert held_off is not None, "eight 1,000-attribute spans at once never used up the loader share"
    garbage, grpc_garbage = held_off
    assert garbage.status_code == 429, garbage.text
    assert int(garbage.headers["retry-after"]) >= 1
    assert "was not read" in _status_message(garbage)
    assert grpc_garbage is not None and grpc_garbage.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, grpc_garbage
    # The calm environment is not held off: its body is read and decoded (and refused for what it is).
    assert _post(server, calm, not_otlp).status_code == 400
    assert _post(server, calm, request(spans=5, service="calm").SerializeToString()).status_code == 200
    assert server.counts(calm) == {"calm": 5}
    time.sleep(COSTLY_RETRY_AFTER_S + 0.5)  # past the Retry-After, the flooding environment is read again
    assert _post(server, flood, not_otlp).status_code == 400
