"""A server per store for the fault and bad-value tests: the embedded DuckDB one and ClickHouse (through chdb)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

from tests.clickhouse.conftest import clickhouse_url, drop_database
from tests.server import ApiaryProcess, create_key


def _create_key(store: str) -> str:
    cmd = [sys.executable, "-m", "apiary", "keys", "create", "dev", "--store", store]
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip()


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
        proc = ApiaryProcess(base / "data", key=_create_key(url), extra_args=["--store", url, "--decode-workers", "0"])
    proc.start(timeout=60)
    try:
        yield proc
    finally:
        proc.stop()
        if url:
            drop_database(url)
