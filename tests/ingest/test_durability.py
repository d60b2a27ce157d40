"""Acknowledged means committed: a SIGKILL mid-stream loses no acknowledged span and leaves no partial batch."""

from __future__ import annotations

import secrets
import signal
import threading
import time
from pathlib import Path

import httpx

from tests.ingest.otlp_requests import request
from tests.server import ApiaryProcess

SPANS_PER_REQUEST = 20


def _client(url: str, key: str, stop: threading.Event, acked: list[str], sent: list[str]) -> None:
    with httpx.Client(timeout=10) as http:
        while not stop.is_set():
            trace_id = secrets.token_bytes(16)
            body = request(trace_id=trace_id, spans=SPANS_PER_REQUEST, service="durable").SerializeToString()
            sent.append(trace_id.hex())
            try:
                r = http.post(f"{url}/v1/traces", content=body,
                              headers={"content-type": "application/x-protobuf", "x-honeycomb-team": key})
            except httpx.HTTPError:
                return  # the server died under us: this request was never acknowledged
            if r.status_code == 200:
                acked.append(trace_id.hex())


def _spans(apiary: ApiaryProcess, trace_id: str) -> list[dict]:
    r = httpx.get(f"{apiary.url}/api/traces/{trace_id}", headers={"x-honeycomb-team": apiary.key})
    return r.json()["spans"] if r.status_code == 200 else []


def _check(apiary: ApiaryProcess, acked: list[str], sent: list[str]) -> None:
    present = 0
    for trace_id in sent:
        spans = _spans(apiary, trace_id)
        ids = [s["trace.span_id"] for s in spans]
        assert len(ids) == len(set(ids)), f"duplicate spans in {trace_id}"
        assert len(spans) in (0, SPANS_PER_REQUEST), f"partial batch: {len(spans)} spans of {trace_id}"
        if trace_id in acked:
            assert len(spans) == SPANS_PER_REQUEST, f"acknowledged trace {trace_id} lost"
        present += bool(spans)
    total = httpx.get(f"{apiary.url}/api/datasets", headers={"x-honeycomb-team": apiary.key}).json()["datasets"]
    assert sum(d["count"] for d in total) == present * SPANS_PER_REQUEST


def _run_clients(apiary: ApiaryProcess, min_acked: int, then: int) -> tuple[list[str], list[str]]:
    """Stream until ``min_acked`` requests were acknowledged (however slow the machine), then send ``then``."""
    stop = threading.Event()
    acked: list[str] = []
    sent: list[str] = []
    threads = [threading.Thread(target=_client, args=(apiary.url, apiary.key, stop, acked, sent)) for _ in range(6)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 120
    while len(acked) < min_acked and time.monotonic() < deadline:
        time.sleep(0.05)
    apiary.stop(then)
    stop.set()
    for t in threads:
        t.join(30)
    return acked, sent


def test_sigkill_mid_stream_loses_nothing_acknowledged(apiary: ApiaryProcess) -> None:
    acked, sent = _run_clients(apiary, 25, signal.SIGKILL)
    assert len(acked) >= 25, "the clients should have been acknowledged many times before the kill"
    apiary.start()
    _check(apiary, acked, sent)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")  # a zombie has exited; only its parent's reaping is left


def test_sigkill_leaves_no_decode_worker_behind(apiary: ApiaryProcess) -> None:
    assert apiary.proc is not None
    pid = apiary.proc.pid
    workers = [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    assert workers, "the server should have started its decode workers"
    apiary.stop(signal.SIGKILL)
    deadline = time.monotonic() + 10
    while any(_alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [w for w in workers if _alive(w)], "decode workers outlived a killed server"


def test_sigterm_commits_in_flight_batches(apiary: ApiaryProcess) -> None:
    acked, sent = _run_clients(apiary, 15, signal.SIGTERM)
    # uvicorn re-raises the SIGTERM it caught once shutdown is done, so the exit status is the signal's.
    assert apiary.proc is not None and apiary.proc.returncode in (0, -signal.SIGTERM), apiary.output()
    assert "Apiary stopped: every acknowledged batch is committed." in apiary.output()
    apiary.start()
    _check(apiary, acked, sent)
