"""Servers for the fault tests: one per store for the bad-value rules, one with every receiver for the fuzz tests."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from tests.clickhouse.conftest import clickhouse_url, drop_database
from tests.faults.fuzz_support import LOG_GROUP, aws_client
from tests.server import ApiaryProcess, create_key, free_port


@pytest.fixture(scope="module", params=["duckdb", "clickhouse"])
def store_apiary(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiaryProcess]:
    """One server for a module's tests, on each store in turn."""
    base: Path = tmp_path_factory.mktemp(request.param)
    url = ""
    if request.param == "duckdb":
        proc = ApiaryProcess(base / "data", key=create_key(base / "data"), extra_args=["--decode-workers", "0"])
    else:
        url = clickhouse_url(base)
        # Before the server: chdb lets one process at a time open its directory.
        proc = ApiaryProcess(base / "data", key=create_key(base / "data", store=url),
                             extra_args=["--store", url, "--decode-workers", "0"])
    proc.start(timeout=60)
    try:
        yield proc
    finally:
        proc.stop()
        if url:
            drop_database(url)


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiaryProcess]:
    """One DuckDB server with the X-Ray daemon and a log group, for a fuzz module."""
    data = tmp_path_factory.mktemp("fuzz") / "data"
    udp = free_port()
    proc = ApiaryProcess(data, key=create_key(data), extra_args=["--xray-port", str(udp), "--decode-workers", "0"])
    proc.xray_port = udp  # type: ignore[attr-defined]
    proc.start()
    logs = aws_client(proc, "logs")
    logs.create_log_group(logGroupName=LOG_GROUP)
    logs.create_log_stream(logGroupName=LOG_GROUP, logStreamName="s")
    try:
        yield proc
    finally:
        proc.stop()
