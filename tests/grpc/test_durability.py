"""Acknowledged over gRPC means committed: a SIGKILL amid concurrent exports loses nothing acknowledged."""

from __future__ import annotations

import secrets
import signal
import threading
import time
from pathlib import Path
from typing import Iterator

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from tests.grpc.conftest import STORES, TRACE_EXPORT, GrpcApiary, start_grpc_apiary, stop_grpc_apiary
from tests.ingest.otlp_requests import request

SPANS_PER_REQUEST = 20


@pytest.fixture(params=STORES)
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[GrpcApiary]:
    proc, url = start_grpc_apiary(tmp_path, request.param, envs=("dev",))
    try:
        yield proc
    finally:
        stop_grpc_apiary(proc, url)


def _client(target: str, key: str, stop: threading.Event, acked: list[str], sent: list[str]) -> None:
    with grpc.insecure_channel(target) as channel:
        export = channel.unary_unary(TRACE_EXPORT, response_deserializer=ExportTraceServiceResponse.FromString)
        while not stop.is_set():
            trace_id = secrets.token_bytes(16)
            body = request(trace_id=trace_id, spans=SPANS_PER_REQUEST, service="durable").SerializeToString()
            sent.append(trace_id.hex())
            try:
                export(body, metadata=[("x-honeycomb-team", key)], timeout=10)
            except grpc.RpcError:
                return  # refused, or the server died under us: never acknowledged
            acked.append(trace_id.hex())


def _run_clients(server: GrpcApiary, seconds: float, then: int) -> tuple[list[str], list[str]]:
    stop = threading.Event()
    acked: list[str] = []
    sent: list[str] = []
    threads = [threading.Thread(target=_client, args=(server.grpc_target, server.key, stop, acked, sent))
               for _ in range(6)]
    for t in threads:
        t.start()
    time.sleep(seconds)
    deadline = time.monotonic() + 60  # a machine busy with other work may take longer to answer the first calls
    while len(acked) <= 20 and time.monotonic() < deadline and any(t.is_alive() for t in threads):
        time.sleep(0.1)
    server.stop(then)
    stop.set()
    for t in threads:
        t.join(30)
    assert len(acked) > 20, "the clients should have been acknowledged many times before the signal"
    return acked, sent


def _check(server: GrpcApiary, acked: list[str], sent: list[str]) -> None:
    present = 0
    for trace_id in sent:
        r = server.get(f"/api/traces/{trace_id}")
        spans = r.json()["spans"] if r.status_code == 200 else []
        ids = [s["trace.span_id"] for s in spans]
        assert len(ids) == len(set(ids)), f"duplicate spans in {trace_id}"
        assert len(spans) in (0, SPANS_PER_REQUEST), f"partial batch: {len(spans)} spans of {trace_id}"
        if trace_id in acked:
            assert len(spans) == SPANS_PER_REQUEST, f"acknowledged trace {trace_id} lost"
        present += bool(spans)
    assert server.counts() == {"durable": present * SPANS_PER_REQUEST}


def test_sigkill_amid_grpc_exports_loses_nothing_acknowledged(server: GrpcApiary) -> None:
    acked, sent = _run_clients(server, 2.0, signal.SIGKILL)
    server.start(timeout=60)
    _check(server, acked, sent)


def test_sigterm_lets_grpc_calls_in_flight_finish_and_commits_them(server: GrpcApiary) -> None:
    acked, sent = _run_clients(server, 1.5, signal.SIGTERM)
    assert "Apiary stopped: every acknowledged batch is committed." in server.output()
    server.start(timeout=60)
    _check(server, acked, sent)
