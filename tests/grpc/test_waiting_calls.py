"""OTLP/gRPC messages are read only once the server may hold them, and one environment cannot take every turn.

The server here may receive two messages of the 1 MiB limit at once (a 2 MiB body budget), and one
environment one (its 1 MiB share). A call whose client opens the stream but holds its message back keeps
its slot until the message comes or the body timeout passes; meanwhile another call of the same
environment waits its turn, unread, and a call of another environment is answered at once. And it keeps
two gRPC connections open at once.
"""

from __future__ import annotations

import threading
import time
from typing import Iterator

import grpc
import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from tests.grpc.conftest import STORES, TRACE_EXPORT, GrpcApiary, start_grpc_apiary, stop_grpc_apiary
from tests.ingest.otlp_requests import request

MIB = 1024 * 1024
BODY_TIMEOUT_S = 3
CONNECTIONS = 2


@pytest.fixture(scope="module", params=STORES)
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GrpcApiary]:
    proc, url = start_grpc_apiary(tmp_path_factory.mktemp(f"slots-{request.param}"), request.param, env={
        "APIARY_MAX_GRPC_MESSAGE_BYTES": str(MIB), "APIARY_MAX_INFLIGHT_BYTES": str(2 * MIB),
        "APIARY_MAX_ENV_INFLIGHT_BYTES": str(MIB), "APIARY_BODY_TIMEOUT": str(BODY_TIMEOUT_S),
        "APIARY_MAX_GRPC_CONNECTIONS": str(CONNECTIONS)})
    try:
        yield proc
    finally:
        stop_grpc_apiary(proc, url)


def grpc_intake(server: GrpcApiary) -> tuple[int, int]:
    health = httpx.get(f"{server.url}/api/health", timeout=10).json()
    return health["grpc_messages_receiving"], health["grpc_calls_waiting"]


def until(server: GrpcApiary, receiving: int, waiting: int) -> None:
    """Wait for the server to report that many calls reading their message, and waiting to."""
    deadline = time.monotonic() + 30
    while grpc_intake(server) != (receiving, waiting):
        assert time.monotonic() < deadline, grpc_intake(server)
        time.sleep(0.02)


def held_back(message: bytes, release: threading.Event) -> Iterator[bytes]:
    """A client that has opened its call and sends its one message only once ``release`` is set."""
    release.wait(60)
    if release.is_set():
        yield message


def test_a_call_waits_unread_for_its_environments_turn_while_another_environment_goes_on(server: GrpcApiary) -> None:
    before = {env: server.counts(key).get("turns", 0) for env, key in server.keys.items()}
    dev, staging = ([("x-honeycomb-team", server.keys[env])] for env in ("dev", "staging"))
    release = threading.Event()
    with grpc.insecure_channel(server.grpc_target) as channel:
        streamed = channel.stream_unary(TRACE_EXPORT, response_deserializer=ExportTraceServiceResponse.FromString)
        export = channel.unary_unary(TRACE_EXPORT, response_deserializer=ExportTraceServiceResponse.FromString)
        slow = streamed.future(held_back(request(spans=2, service="turns").SerializeToString(), release),
                               metadata=dev, timeout=60)
        try:
            until(server, receiving=1, waiting=0)  # the held-back call has dev's one turn
            waiting = export.future(request(spans=3, service="turns").SerializeToString(), metadata=dev, timeout=60)
            until(server, receiving=1, waiting=1)  # a later dev export waits behind it, unread
            other = export(request(spans=4, service="turns").SerializeToString(), metadata=staging, timeout=60)
            assert not other.partial_success.rejected_spans
            assert not slow.done() and not waiting.done(), "dev's second call waits for the first one's message"
            assert grpc_intake(server) == (1, 1)
        finally:
            release.set()
        assert slow.result(timeout=60) is not None
        assert waiting.result(timeout=60) is not None
    assert grpc_intake(server) == (0, 0)
    after = {env: server.counts(key).get("turns", 0) for env, key in server.keys.items()}
    assert after == {"dev": before["dev"] + 5, "staging": before["staging"] + 4}


def test_a_message_that_does_not_come_within_the_body_timeout_is_refused_and_frees_its_turn(server: GrpcApiary) -> None:
    key = [("x-honeycomb-team", server.keys["dev"])]
    before = server.counts(server.keys["dev"]).get("late", 0)
    never = threading.Event()
    with grpc.insecure_channel(server.grpc_target) as channel:
        streamed = channel.stream_unary(TRACE_EXPORT, response_deserializer=ExportTraceServiceResponse.FromString)
        export = channel.unary_unary(TRACE_EXPORT, response_deserializer=ExportTraceServiceResponse.FromString)
        stalled = streamed.future(held_back(b"", never), metadata=key, timeout=60)
        try:
            until(server, receiving=1, waiting=0)
            after_it = export.future(request(spans=2, service="late").SerializeToString(), metadata=key, timeout=60)
            error = stalled.exception(timeout=60)
        finally:
            never.set()  # the generator ends without a message; the call is already answered
        assert isinstance(error, grpc.RpcError)
        assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED, error.details()
        assert f"not received within {BODY_TIMEOUT_S} s" in error.details()
        assert after_it.result(timeout=60) is not None, "the next call of the environment is read once the slot is free"
    assert server.counts(server.keys["dev"]).get("late", 0) == before + 2


def test_a_call_that_ends_without_its_message_is_invalid(server: GrpcApiary) -> None:
    with grpc.insecure_channel(server.grpc_target) as channel:
        streamed = channel.stream_unary(TRACE_EXPORT, response_deserializer=ExportTraceServiceResponse.FromString)
        with pytest.raises(grpc.RpcError) as refused:
            streamed(iter(()), metadata=[("x-honeycomb-team", server.key)], timeout=30)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "one request message" in refused.value.details()


def test_an_unknown_key_is_refused_before_the_message_is_sent(server: GrpcApiary) -> None:
    """The key is checked first: a client holding its message back hears UNAUTHENTICATED without sending it."""
    never = threading.Event()
    with grpc.insecure_channel(server.grpc_target) as channel:
        streamed = channel.stream_unary(TRACE_EXPORT, response_deserializer=ExportTraceServiceResponse.FromString)
        call = streamed.future(held_back(b"x", never), metadata=[("x-honeycomb-team", "not-a-key")], timeout=60)
        try:
            error = call.exception(timeout=30)
        finally:
            never.set()
    assert isinstance(error, grpc.RpcError)
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED


def own_connection(server: GrpcApiary) -> grpc.Channel:
    """A channel that does not share its connection with the test's other channels to the same address."""
    return grpc.insecure_channel(server.grpc_target, options=[("grpc.use_local_subchannel_pool", 1)])


def test_past_the_connection_bound_a_new_connection_is_closed_and_its_client_retries_later(server: GrpcApiary) -> None:
    body = request(spans=1, service="connections").SerializeToString()
    key = [("x-honeycomb-team", server.key)]
    before = server.counts().get("connections", 0)
    held = [own_connection(server) for _ in range(CONNECTIONS)]
    try:
        for channel in held:  # both connections open, and kept open by their channels
            channel.unary_unary(TRACE_EXPORT)(body, metadata=key, timeout=30)
        with own_connection(server) as extra:
            with pytest.raises(grpc.RpcError) as refused:
                extra.unary_unary(TRACE_EXPORT)(body, metadata=key, timeout=30)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE, refused.value.details()
    finally:
        for channel in held:
            channel.close()
    deadline = time.monotonic() + 30
    while True:  # once a connection is closed, a new one is taken (the server notices the close first)
        with own_connection(server) as retry:
            try:
                retry.unary_unary(TRACE_EXPORT)(body, metadata=key, timeout=30)
                break
            except grpc.RpcError as exc:
                assert exc.code() == grpc.StatusCode.UNAVAILABLE and time.monotonic() < deadline, exc.details()
                time.sleep(0.2)
    assert server.counts().get("connections", 0) == before + CONNECTIONS + 1
