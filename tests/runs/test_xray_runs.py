"""X-Ray segments join a run through the annotation ``apiary_run`` (on both stores), beside OTel spans that carry
the resource attribute: one environment, both kinds of run, listed and compared alike."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from tests.runs.recording import REQUESTS, SPANS_PER_REQUEST, clean_env, record
from tests.server import free_port
from tests.stores import STORES, Tenant, running

XRAY_TRAFFIC = Path(__file__).resolve().parent / "xray_traffic.py"
SEGMENTS = 5


@pytest.fixture(scope="module", params=STORES)
def tenant(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tenant]:
    udp = free_port()
    # --xray-env: the daemon's segments carry no key, so they go to the one environment named here.
    with running(request.param, tmp_path_factory.mktemp(request.param), tenants=1,
                 extra_args=["--xray-port", str(udp), "--xray-env", "t0"]) as server:
        t = server.take()
        t.xray_port = udp  # type: ignore[attr-defined]
        yield t


def runs(t: Tenant) -> dict[str, dict]:
    r = httpx.get(t.url + "/api/runs", headers={"X-Honeycomb-Team": t.key}, timeout=120)
    assert r.status_code == 200, r.text
    return {run["name"]: run for run in r.json()["runs"]}


def test_annotated_segments_are_a_run_beside_otel_runs(tenant: Tenant) -> None:
    record(tenant.url, tenant.ingest_key, "otel-run")
    env = clean_env(AWS_XRAY_DAEMON_ADDRESS=f"127.0.0.1:{tenant.xray_port}",  # type: ignore[attr-defined]
                    TRAFFIC_REQUESTS=str(SEGMENTS))
    done = subprocess.run([sys.executable, "-m", "apiary", "run", "--name", "xray-run", "--url", tenant.url, "--",
                           sys.executable, str(XRAY_TRAFFIC)], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    deadline = time.monotonic() + 30  # UDP: the daemon port acknowledges nothing, so wait for every segment
    while (found := runs(tenant)).get("xray-run", {}).get("spans", 0) < SEGMENTS and time.monotonic() < deadline:
        time.sleep(0.3)
    xray = found["xray-run"]
    # The annotated segments join the run; their subsegments carry no annotation and do not.
    assert xray["spans"] == SEGMENTS and xray["services"] == ["backend-xray"]
    assert found["otel-run"]["spans"] == REQUESTS * SPANS_PER_REQUEST
    r = httpx.get(tenant.url + "/api/runs/compare", params={"a": "otel-run", "b": "xray-run"},
                  headers={"X-Honeycomb-Team": tenant.key}, timeout=120)
    assert r.status_code == 200, r.text
    doc = r.json()
    assert {"service": "backend-xray", "name": "backend-xray"} in doc["new_spans"]
    assert {"service": "backend-flask", "name": "db-query"} in doc["vanished_spans"]
