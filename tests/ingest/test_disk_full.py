"""A full disk, as a user's laptop fills up: the OTel SDK is told to retry, loses nothing, and the server heals alone.

On both stores: DuckDB (the intake log and the database file) and ClickHouse through chdb, whose
files are on the same small disk. The second test, on reads that are behind, is DuckDB's alone:
ClickHouse acknowledges after its insert, so it has no unloaded rows to report.

The data directory is a small tmpfs, filled with a file the way anything else on the machine would
fill it; freeing that file is all the "operator" does. Mounting needs root (CAP_SYS_ADMIN): where
it is not allowed, the tests are skipped with that reason.
"""

from __future__ import annotations

import errno
import logging
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Iterator

import duckdb
import httpx
import pytest
from google.rpc import status_pb2
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from apiary.store.base import is_disk_full
from tests.server import ApiaryProcess, create_key

UNAVAILABLE = 14  # google.rpc.Code


def _mount(path: Path, size: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs to fill up (needs root / CAP_SYS_ADMIN): {done.stderr.strip()}")


def _umount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 96 MiB tmpfs as the data directory (the server's own log stays outside it)."""
    data = tmp_path / "data"
    _mount(data, "96m")
    try:
        yield data
    finally:
        _umount(data)


def fill(path: Path) -> Path:
    """Write ``path`` until the disk refuses another byte."""
    with open(path, "wb", buffering=0) as f:
        for chunk in (1 << 20, 4096, 1):
            block = b"\0" * chunk
            while True:
                try:
                    f.write(block)
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC
                    break
    return path


def send_trace(server: ApiaryProcess, service: str, spans: int = 3, timeout: float = 10.0) -> str:
    """A trace of ``spans`` spans through the real SDK exporter, one export per span; returns its id."""
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(
        endpoint=f"{server.url}/v1/traces", headers={"x-honeycomb-team": server.key}, timeout=timeout)))
    tracer = provider.get_tracer("disk-full")
    with tracer.start_as_current_span("root") as root:
        for i in range(spans - 1):
            with tracer.start_as_current_span(f"child-{i}"):
                pass
        trace_id = f"{root.get_span_context().trace_id:032x}"
    provider.shutdown()
    return trace_id


def span_names(server: ApiaryProcess, trace_id: str) -> tuple[set[str], httpx.Response]:
    r = httpx.get(f"{server.url}/api/traces/{trace_id}", headers={"x-honeycomb-team": server.key}, timeout=30)
    if r.status_code == 404:
        return set(), r
    assert r.status_code == 200, r.text
    return {s["name"] for s in r.json()["spans"]}, r


def one_span_request() -> bytes:
    req = ExportTraceServiceRequest()
    span = req.resource_spans.add().scope_spans.add().spans.add()
    span.trace_id, span.span_id, span.name = bytes(range(1, 17)), bytes(range(1, 9)), "raw"
    span.start_time_unix_nano = time.time_ns()
    span.end_time_unix_nano = span.start_time_unix_nano + 1_000_000
    return req.SerializeToString()


@pytest.mark.parametrize("store", ["duckdb", "clickhouse"])
def test_disk_full_is_503_with_retry_after_and_the_sdk_delivers_everything_once_space_is_freed(
        small_disk: Path, caplog: pytest.LogCaptureFixture, store: str) -> None:
    if store == "duckdb":
        key, args = create_key(small_disk), []
    else:  # ClickHouse's files (chdb, in-process) on the same small disk
        url = f"chdb://{small_disk / 'clickhouse'}"
        key = subprocess.run([sys.executable, "-m", "apiary", "keys", "create", "dev", "--store", url],
                             check=True, capture_output=True, text=True).stdout.strip()
        args = ["--store", url]
    server = ApiaryProcess(small_disk, key=key, extra_args=args, env={"APIARY_DECODE_WORKERS": "0"}).start(timeout=60)
    try:
        before = send_trace(server, "before")
        assert span_names(server, before)[0] == {"root", "child-0", "child-1"}
        pid = server.proc.pid if server.proc else None
        filler = fill(small_disk / "filler")

        r = httpx.post(f"{server.url}/v1/traces", content=one_span_request(), timeout=30,
                       headers={"content-type": "application/x-protobuf", "x-honeycomb-team": key})
        assert r.status_code == 503, r.text
        assert int(r.headers["retry-after"]) >= 1
        status = status_pb2.Status.FromString(r.content)
        assert status.code == UNAVAILABLE
        assert "disk is full" in status.message

        caplog.set_level(logging.WARNING)
        sent: dict[str, str] = {}
        sender = threading.Thread(target=lambda: sent.update(trace=send_trace(server, "during", timeout=30)))
        sender.start()
        deadline = time.monotonic() + 20
        while "Transient error" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "Transient error" in caplog.text  # the exporter was told to retry, not to drop
        filler.unlink()
        sender.join(60)
        assert not sender.is_alive()

        assert span_names(server, sent["trace"])[0] == {"root", "child-0", "child-1"}
        assert span_names(server, before)[0] == {"root", "child-0", "child-1"}  # nothing acknowledged was lost
        assert server.proc is not None and server.proc.poll() is None and server.proc.pid == pid  # no restart
        health = httpx.get(f"{server.url}/api/health", timeout=10).json()
        assert health.get("loads_failing", 0) == 0  # DuckDB's loader caught up; ClickHouse has none
    finally:
        server.stop()


def test_a_read_while_loads_fail_says_it_is_behind_and_catches_up_once_space_is_freed(tmp_path: Path) -> None:
    """The intake log on a volume of its own keeps acknowledging while the database's disk is full."""
    data = tmp_path / "data"
    _mount(data, "96m")
    intake = data / "spans.duckdb.intake"
    try:
        _mount(intake, "32m")
        key = create_key(data)
        server = ApiaryProcess(data, key=key, env={"APIARY_DECODE_WORKERS": "0"}).start()
        try:
            before = send_trace(server, "before")
            names, r = span_names(server, before)
            assert names == {"root", "child-0", "child-1"} and "x-apiary-unloaded-rows" not in r.headers
            filler = fill(data / "filler")

            during = send_trace(server, "during")  # acknowledged: the intake log has room
            started = time.monotonic()
            names, r = span_names(server, during)
            assert time.monotonic() - started < 10  # answered at once, not after the 30 s flush timeout
            assert names != {"root", "child-0", "child-1"}
            assert int(r.headers["x-apiary-unloaded-rows"]) >= 1

            filler.unlink()
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                names, r = span_names(server, during)
                if "x-apiary-unloaded-rows" not in r.headers:
                    break
                time.sleep(0.5)
            assert names == {"root", "child-0", "child-1"} and "x-apiary-unloaded-rows" not in r.headers
            assert span_names(server, before)[0] == {"root", "child-0", "child-1"}
        finally:
            server.stop()
    finally:
        _umount(intake)
        _umount(data)



def test_a_full_disk_behind_a_failed_rollback_is_still_a_full_disk() -> None:
    """A COMMIT that cannot write DuckDB's log ends the transaction, so the ROLLBACK after it fails too.

    The loader must still see a full disk there (and wait for space), not a batch the database
    refused (which it would set aside, out of every read).
    """
    try:
        try:
            raise duckdb.TransactionException('Failed to commit: Could not write file "x.wal": No space left on device')
        except duckdb.TransactionException:
            raise duckdb.TransactionException("cannot rollback - no transaction is active")
    except duckdb.TransactionException as exc:
        assert is_disk_full(exc)
    assert not is_disk_full(duckdb.ConversionException("Could not convert string 'x' to INT64"))
