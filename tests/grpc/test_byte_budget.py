"""OTLP/gRPC messages count against the same bound on bytes in memory as every HTTP receiver's bodies.

With a 4 MiB bound, large messages (over 1 MiB) may hold 3.5 MiB at once (an eighth stays for small ones):
eight 1.5 MiB exports sent together cannot all be held, so some are refused with RESOURCE_EXHAUSTED and
RetryInfo naming the bound; every acknowledged one is stored whole, no refused one at all, and once the calls
are answered the server holds no body bytes.
"""

from __future__ import annotations

from typing import Iterator

import grpc
import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from tests.grpc.conftest import STORES, TRACE_EXPORT, GrpcApiary, start_grpc_apiary, stop_grpc_apiary
from tests.grpc.test_bad_input import retry_delay
from tests.ingest.otlp_requests import request

BOUND = 4 * 1024 * 1024


@pytest.fixture(scope="module", params=STORES)
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GrpcApiary]:
    proc, url = start_grpc_apiary(tmp_path_factory.mktemp(f"budget-{request.param}"), request.param,
                                  env={"APIARY_MAX_INFLIGHT_BYTES": str(BOUND), "APIARY_MAX_ENV_INFLIGHT_BYTES": str(BOUND)})
    try:
        yield proc
    finally:
        stop_grpc_apiary(proc, url)


def large_request(service: str) -> bytes:
    req = request(spans=1200, service=service)
    for span in req.resource_spans[0].scope_spans[0].spans:
        span.attributes.append(KeyValue(key="payload", value=AnyValue(string_value="x" * 1200)))
    body = req.SerializeToString()
    assert 1024 * 1024 < len(body) < BOUND // 2, len(body)
    return body


def test_large_messages_past_the_byte_bound_are_refused_with_retry_info(server: GrpcApiary) -> None:
    before = server.counts().get("large", 0)
    bodies = [large_request("large") for _ in range(8)]
    with grpc.insecure_channel(server.grpc_target) as channel:
        export = channel.unary_unary(TRACE_EXPORT, response_deserializer=ExportTraceServiceResponse.FromString)
        futures = [export.future(b, metadata=[("x-honeycomb-team", server.key)], timeout=120) for b in bodies]
        outcomes = [f.exception() for f in futures]
    ok = [e for e in outcomes if e is None]
    refused = [e for e in outcomes if e is not None]
    assert ok, "the messages that fit in the bound are acknowledged"
    assert refused, "eight 1.5 MiB messages at once cannot fit in 3.5 MiB"
    for error in refused:
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, error.details()
        plain, rich = retry_delay(error)
        assert plain == rich and plain >= 1
    assert any("APIARY_MAX_INFLIGHT_BYTES" in e.details() for e in refused), [e.details() for e in refused]
    assert server.counts().get("large", 0) == before + 1200 * len(ok)
    health = httpx.get(f"{server.url}/api/health", timeout=10).json()
    assert health["body_bytes_in_flight"] == 0



def test_a_message_past_the_collectors_default_size_is_refused_unheld_whatever_http_takes(server: GrpcApiary) -> None:
    """4 MiB, the OpenTelemetry Collector's default for its gRPC receiver, though this server takes HTTP bodies up to
    20 MiB: gRPC's C core holds a whole message before a handler can refuse it, so its own limit is what bounds
    that, from the message's length prefix."""
    before = server.counts().get("too-long", 0)
    req = request(spans=1200, service="too-long")
    for span in req.resource_spans[0].scope_spans[0].spans:
        span.attributes.append(KeyValue(key="payload", value=AnyValue(string_value="x" * 4000)))
    body = req.SerializeToString()
    assert 4 * 1024 * 1024 < len(body) < 20 * 1024 * 1024, len(body)
    with grpc.insecure_channel(server.grpc_target) as channel:
        export = channel.unary_unary(TRACE_EXPORT, response_deserializer=ExportTraceServiceResponse.FromString)
        with pytest.raises(grpc.RpcError) as refused:
            export(body, metadata=[("x-honeycomb-team", server.key)], timeout=60)
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, refused.value.details()
    assert f"vs. {4 * 1024 * 1024}" in refused.value.details()
    assert server.counts().get("too-long", 0) == before
