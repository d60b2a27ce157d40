"""The X-Ray daemon's listeners under network exposure: off unless opted in for one environment, and its statistics
shown to that environment's read key alone.

The X-Ray SDKs send UDP segments and sampling calls with no credential, so the daemon cannot ask for a key; these
servers listen on 127.0.0.1 with ``--exposure network``, the policy a non-loopback ``--host`` selects.
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import Any, Iterator

import boto3
import httpx
import pytest

from tests.clickhouse.conftest import clickhouse_url, drop_database
from tests.server import ApiaryProcess, create_key, free_port
from tests.xray.conftest import datagram, eventually


def segment() -> dict[str, Any]:
    now = time.time()
    return {"trace_id": f"1-{int(now):08x}-{'ab' * 12}", "id": "70de5b6f19ff9a0a", "name": "daemon-svc",
            "start_time": now - 1, "end_time": now}


def stored(server: ApiaryProcess, key: str, trace_id: str) -> list[str]:
    """The trace's segments as the key's environment has them (BatchGetTraces: both stores serve it)."""
    xray = boto3.session.Session().client("xray", endpoint_url=server.url, region_name="us-east-1",
                                          aws_access_key_id=key, aws_secret_access_key=key)
    return [s["Id"] for t in xray.batch_get_traces(TraceIds=[trace_id])["Traces"] for s in t["Segments"]]


@pytest.fixture(params=["duckdb", "clickhouse"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    url = clickhouse_url(tmp_path) if request.param == "clickhouse" else "duckdb"
    yield url
    drop_database(url)


def start(tmp_path: Path, store: str, *args: str) -> tuple[ApiaryProcess, int, str, str]:
    data = tmp_path / "data"
    dev, staging = create_key(data, "dev", store=store), create_key(data, "staging", store=store)
    port = free_port()
    proc = ApiaryProcess(data, key=dev, extra_args=["--exposure", "network", "--decode-workers", "0",
                                                    "--xray-port", str(port), *args,
                                                    *(["--store", store] if store != "duckdb" else [])])
    return proc.start(timeout=90), port, dev, staging


def test_under_network_exposure_the_daemon_is_off_by_default(tmp_path: Path, store: str) -> None:
    server, port, dev, _ = start(tmp_path, store)
    try:
        assert "X-Ray daemon off" in server.output() and "--xray-daemon-host" in server.output()
        with pytest.raises(ConnectionRefusedError):  # no TCP sampling endpoint to read rules from
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
        doc = segment()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.sendto(datagram(doc), ("127.0.0.1", port))
        r = httpx.get(f"{server.url}/api/xray/daemon", headers={"x-honeycomb-team": dev})
        assert r.status_code == 404 and "daemon is off" in r.json()["error"]
        time.sleep(0.5)  # what a datagram would take to be stored, were anything listening
        assert stored(server, dev, doc["trace_id"]) == []
    finally:
        server.stop()


def test_opted_in_daemon_feeds_one_environment_and_shows_its_statistics_to_it_alone(tmp_path: Path,
                                                                                    store: str) -> None:
    server, port, dev, staging = start(tmp_path, store, "--xray-daemon-host", "127.0.0.1", "--xray-env", "dev")
    try:
        doc = segment()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.sendto(datagram(doc), ("127.0.0.1", port))
            udp.sendto(b"not a datagram", ("127.0.0.1", port))
        assert eventually(lambda: stored(server, dev, doc["trace_id"])) == [doc["id"]]
        assert stored(server, staging, doc["trace_id"]) == []
        stats = httpx.get(f"{server.url}/api/xray/daemon", headers={"x-honeycomb-team": dev})
        assert stats.status_code == 200 and stats.json()["stored"] == 1 and stats.json()["malformed"] == 1
        other = httpx.get(f"{server.url}/api/xray/daemon", headers={"x-honeycomb-team": staging})
        assert other.status_code == 404 and other.json() == {
            "error": "the X-Ray daemon does not send to environment 'staging'"}
        assert httpx.get(f"{server.url}/api/xray/daemon").status_code == 401
        rules = httpx.post(f"http://127.0.0.1:{port}/GetSamplingRules", content=json.dumps({}))
        assert rules.status_code == 200 and rules.json()["SamplingRuleRecords"]
    finally:
        server.stop()
