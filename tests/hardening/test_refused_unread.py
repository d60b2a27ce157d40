"""A body refused before it is read ends its connection, and the client still gets its answer.

A flooding environment holds most of its share of the body budget with a stalled upload, so its next
large bodies are refused (429 + Retry-After) before a byte of them is read. Such an answer says
``Connection: close`` and the server half-closes the connection instead of reading the rest of the
body to keep it alive; a request whose body was read keeps its connection. The OTel SDK's own OTLP/HTTP
exporter, whose body is refused that way, reads the 429 (not a connection error), waits its
Retry-After, retries, and its spans are stored once the stalled upload is gone.
"""

from __future__ import annotations

import logging
import socket
import time
from typing import Iterator

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace.export import SpanExportResult

from tests.grpc.conftest import STORES, GrpcApiary, start_grpc_apiary, stop_grpc_apiary
from tests.grpc.test_byte_budget import large_request  # about 1.5 MiB: a large body
from tests.hardening.test_body_budget import _stalled_upload
from tests.hardening.test_environment_share import _sdk_export
from tests.ingest.otlp_requests import request

MIB = 1024 * 1024
BUDGET = 16 * MIB  # each environment's share is 8 MiB, of which a large body may use 7
HELD = 6 * MIB + MIB // 2  # held by the stalled upload: no large body of that environment fits beside it


@pytest.fixture(scope="module", params=STORES)
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GrpcApiary]:
    proc, url = start_grpc_apiary(tmp_path_factory.mktemp(f"unread-{request.param}"), request.param,
                                  envs=("flood",), env={"APIARY_MAX_INFLIGHT_BYTES": str(BUDGET)})
    try:
        yield proc
    finally:
        stop_grpc_apiary(proc, url)


def _held_off(server: GrpcApiary) -> socket.socket:
    """The flooding environment's stalled upload, once the server holds its bytes."""
    stalled = _stalled_upload(server.url, server.keys["flood"], HELD)
    for _ in range(300):
        if httpx.get(f"{server.url}/api/health", timeout=30).json()["body_bytes_in_flight"] >= HELD:
            return stalled
        time.sleep(0.1)
    raise AssertionError("the stalled upload's bytes were never reserved")


def _head(server: GrpcApiary, key: str, body: bytes) -> bytes:
    return (f"POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-protobuf\r\n"
            f"x-honeycomb-team: {key}\r\nContent-Length: {len(body)}\r\n\r\n").encode()


def _answer(conn: socket.socket) -> tuple[str, dict[str, str]]:
    """One response's status line and headers (its body left unread)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        assert chunk, f"the connection ended before an answer: {data!r}"
        data += chunk
    status, *lines = data.split(b"\r\n\r\n", 1)[0].decode().split("\r\n")
    return status, {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines)}


def _rest_until_end(conn: socket.socket) -> bytes:
    """What the server sends until it ends the connection (``b""`` once it has half-closed it)."""
    conn.settimeout(30)
    data = b""
    while chunk := conn.recv(65536):
        data += chunk
    return data


def test_a_body_refused_unread_ends_its_connection_and_a_body_read_keeps_it(server: GrpcApiary) -> None:
    flood = server.keys["flood"]
    stalled = _held_off(server)
    try:
        body = large_request("flood")
        with socket.create_connection(("127.0.0.1", server.port)) as conn:
            conn.sendall(_head(server, flood, body) + body[:4096])  # most of the body never sent
            status, headers = _answer(conn)
            assert status.startswith("HTTP/1.1 429"), status
            assert int(headers["retry-after"]) >= 1
            assert headers["connection"] == "close"
            _rest_until_end(conn)  # end-of-file although the body is 1.5 MB short: not waited for, not read

        small = request(spans=5, service="small").SerializeToString()
        with socket.create_connection(("127.0.0.1", server.port)) as conn:
            for _ in range(2):  # a small body still fits beside the upload: it is read, its connection kept
                conn.sendall(_head(server, flood, small) + small)
                status, headers = _answer(conn)
                assert status.startswith("HTTP/1.1 200"), status
                assert headers.get("connection") != "close"
                conn.recv(int(headers["content-length"]), socket.MSG_WAITALL)
    finally:
        stalled.close()
    assert server.counts(flood)["small"] == 10


class _Transient(logging.Handler):
    """The exporter's "retrying" warnings; at the first, the stalled upload is let go, so a retry gets through."""

    def __init__(self, stalled: socket.socket) -> None:
        super().__init__(logging.WARNING)
        self.stalled = stalled
        self.warnings: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("Transient error"):
            self.warnings.append(record.getMessage())
            self.stalled.close()


def test_the_otlp_http_exporter_reads_its_429_and_retries(server: GrpcApiary) -> None:
    stalled = _held_off(server)
    transient = _Transient(stalled)
    exporter_log = logging.getLogger("opentelemetry.exporter.otlp.proto.http.trace_exporter")
    exporter_log.addHandler(transient)
    try:
        exporter = OTLPSpanExporter(endpoint=f"{server.url}/v1/traces", headers={"x-honeycomb-team": server.keys["flood"]},
                                    timeout=60)
        result = _sdk_export(exporter, "flood-sdk", 1000)  # a body of 1.5 MiB, refused while the upload stalls
    finally:
        exporter_log.removeHandler(transient)
        stalled.close()
    assert transient.warnings, "the exporter's first body was not refused"
    for warning in transient.warnings:  # the 429 itself each time, never the connection's end as an error
        assert warning.startswith("Transient error Too Many Requests encountered"), warning
    assert result is SpanExportResult.SUCCESS
    assert server.counts(server.keys["flood"])["flood-sdk"] == 1000
