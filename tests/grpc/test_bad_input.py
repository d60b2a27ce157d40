"""Bad input over gRPC gets the status code the OTLP specification names, and leaves what is stored as it was."""

from __future__ import annotations

import secrets
from typing import Iterator

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from tests.grpc.conftest import LOGS_EXPORT, STORES, TRACE_EXPORT, GrpcApiary, start_grpc_apiary, stop_grpc_apiary
from tests.ingest.otlp_requests import request

LIMIT = 2 * 1024 * 1024


@pytest.fixture(scope="module", params=STORES)
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GrpcApiary]:
    """One server per store for this module, with a 2 MiB message limit; every test leaves it as it found it."""
    proc, url = start_grpc_apiary(tmp_path_factory.mktemp(request.param), request.param,
                                  env={"APIARY_MAX_BODY_BYTES": str(LIMIT)})
    try:
        yield proc
    finally:
        stop_grpc_apiary(proc, url)


@pytest.fixture(scope="module")
def export(server: GrpcApiary) -> Iterator[grpc.UnaryUnaryMultiCallable]:
    """The TraceService's Export method taking raw bytes, so a test controls every byte sent."""
    with grpc.insecure_channel(server.grpc_target) as channel:
        yield channel.unary_unary(TRACE_EXPORT, response_deserializer=ExportTraceServiceResponse.FromString)


@pytest.fixture
def seeded(server: GrpcApiary, export: grpc.UnaryUnaryMultiCallable) -> dict[str, int]:
    export(request(spans=5, service="seed").SerializeToString(), metadata=[("x-honeycomb-team", server.key)])
    before = server.counts()
    assert before.get("seed", 0) >= 5
    return before


def key(server: GrpcApiary, env: str = "dev") -> list[tuple[str, str]]:
    return [("x-honeycomb-team", server.keys[env])]


def refused(call: grpc.UnaryUnaryMultiCallable, body: bytes, **kwargs: object) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        call(body, timeout=60, **kwargs)
    return info.value


def retry_delay(error: grpc.RpcError) -> tuple[float, float]:
    """RetryInfo's delay as the Python exporter reads it, and as rich-error clients (Go, Java) read it."""
    trailers = dict(error.trailing_metadata())
    plain = error_details_pb2.RetryInfo.FromString(trailers["google.rpc.retryinfo-bin"])
    status = status_pb2.Status.FromString(trailers["grpc-status-details-bin"])
    assert status.code == error.code().value[0] and status.message == error.details()
    (detail,) = status.details
    rich = error_details_pb2.RetryInfo()
    assert detail.Unpack(rich)
    return plain.retry_delay.ToTimedelta().total_seconds(), rich.retry_delay.ToTimedelta().total_seconds()


def test_truncated_message(server: GrpcApiary, export: grpc.UnaryUnaryMultiCallable, seeded: dict[str, int]) -> None:
    body = request(spans=50, service="truncated").SerializeToString()
    error = refused(export, body[: len(body) // 2], metadata=key(server))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "not a valid ExportTraceServiceRequest protobuf" in error.details()
    assert server.counts() == seeded


def test_missing_and_unknown_key(server: GrpcApiary, export: grpc.UnaryUnaryMultiCallable, seeded: dict[str, int]) -> None:
    body = request(service="intruder").SerializeToString()
    missing = refused(export, body)
    assert missing.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "missing API key" in missing.details() and "OTEL_EXPORTER_OTLP_HEADERS=x-honeycomb-team=" in missing.details()
    unknown = refused(export, body, metadata=[("x-honeycomb-team", "not-a-key")])
    assert unknown.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "unknown API key in the x-honeycomb-team header" in unknown.details()
    assert "OTEL_EXPORTER_OTLP_HEADERS" in unknown.details()
    with grpc.insecure_channel(server.grpc_target) as channel:
        logs = channel.unary_unary(LOGS_EXPORT, response_deserializer=ExportLogsServiceResponse.FromString)
        assert refused(logs, b"", metadata=[("x-honeycomb-team", "nope")]).code() == grpc.StatusCode.UNAUTHENTICATED
    assert server.counts() == seeded


def test_another_environments_key_writes_to_its_own_environment(
        server: GrpcApiary, export: grpc.UnaryUnaryMultiCallable, seeded: dict[str, int]) -> None:
    trace_id = secrets.token_bytes(16)
    export(request(trace_id=trace_id, spans=4, service="staging-only").SerializeToString(), metadata=key(server, "staging"))
    assert server.counts() == seeded
    assert server.get(f"/api/traces/{trace_id.hex()}").status_code == 404
    assert len(server.trace(trace_id.hex(), 4, key=server.keys["staging"])) == 4
    assert server.counts(server.keys["staging"])["staging-only"] == 4


def test_message_past_the_limit(server: GrpcApiary, export: grpc.UnaryUnaryMultiCallable, seeded: dict[str, int]) -> None:
    body = request(spans=40_000, service="huge").SerializeToString()
    assert len(body) > LIMIT
    error = refused(export, body, metadata=key(server))
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert f"vs. {LIMIT}" in error.details()  # gRPC's own words: "Received message larger than max (N vs. 2097152)"
    # Compressed below the limit, but not once inflated: refused the same way, never held whole.
    bomb = b"\x0a" + b"\xff\xff\xff\x7f" + b"\0" * (LIMIT * 3)
    error = refused(export, bomb, metadata=key(server), compression=grpc.Compression.Gzip)
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert server.counts() == seeded


def test_gzip_and_partial_success(server: GrpcApiary, export: grpc.UnaryUnaryMultiCallable, seeded: dict[str, int]) -> None:
    body = request(spans=6, service="partial", bad_span_ids=2).SerializeToString()
    resp = export(body, metadata=key(server), compression=grpc.Compression.Gzip, timeout=60)
    assert resp.partial_success.rejected_spans == 2
    assert "span_id" in resp.partial_success.error_message
    assert server.counts() == {**seeded, "partial": seeded.get("partial", 0) + 4}


def test_flood_past_the_in_flight_bound(server: GrpcApiary, export: grpc.UnaryUnaryMultiCallable,
                                        seeded: dict[str, int]) -> None:
    """More large requests at once than the decode workers may hold: the excess gets RESOURCE_EXHAUSTED with
    RetryInfo, every acknowledged one is stored whole, and no refused one is stored at all."""
    bodies = [request(spans=1000, service="flood").SerializeToString() for _ in range(64)]
    futures = [export.future(b, metadata=key(server), timeout=120) for b in bodies]
    outcomes = [f.exception() for f in futures]  # each waits for its call
    ok = [e for e in outcomes if e is None]
    errors = [e for e in outcomes if e is not None]
    assert errors, "64 requests at once should pass the in-flight bound"
    for error in errors:
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, error.details()
        assert "retry later" in error.details()
        plain, rich = retry_delay(error)
        assert plain == rich and plain >= 1
    assert ok, "the requests within the bound should be acknowledged"
    assert server.counts() == {**seeded, "flood": seeded.get("flood", 0) + 1000 * len(ok)}
