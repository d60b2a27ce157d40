"""A server per store (DuckDB, and ClickHouse through chdb), loaded once per module with the planted traces."""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from tests.clickhouse.conftest import clickhouse_url, drop_database
from tests.server import ApiaryProcess, create_key
from tests.traces.planted import PlantedTrace, planted_traces, send_planted, wait_for_spans

STORES = ["duckdb", "clickhouse"]


@dataclass
class Planted:
    server: ApiaryProcess
    traces: dict[str, PlantedTrace]
    base: int  # unix seconds; every planted trace starts after it, within the next 11 minutes

    def headers(self) -> dict[str, str]:
        return {"X-Honeycomb-Team": self.server.key}

    def search(self, body: dict[str, Any], status: int = 200) -> dict[str, Any]:
        full = {"start_time": self.base, "end_time": self.base + 900, **body}
        r = httpx.post(f"{self.server.url}/api/traces/search", json=full, headers=self.headers(), timeout=60)
        assert r.status_code == status, r.text
        return r.json()

    def ids(self, *names: str) -> set[str]:
        return {self.traces[n].trace_id for n in names}


def start_server(store: str, tmp: Path) -> tuple[ApiaryProcess, str | None]:
    if store == "duckdb":
        data = tmp / "data"
        return ApiaryProcess(data, key=create_key(data, "dev")).start(), None
    url = clickhouse_url(tmp)
    cmd = [sys.executable, "-m", "apiary", "keys", "create", "dev", "--store", url]
    key = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip()
    return ApiaryProcess(tmp / "data", key=key, extra_args=["--store", url]).start(timeout=90), url


@pytest.fixture(scope="module", params=STORES)
def planted(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Planted]:
    server, url = start_server(request.param, tmp_path_factory.mktemp(f"traces-{request.param}"))
    try:
        traces = planted_traces()
        base = int(time.time()) - 1800
        send_planted(server, traces, base)
        wait_for_spans(server, sum(len(t.spans) for t in traces.values()))
        yield Planted(server, traces, base)
    finally:
        server.stop()
        if url:
            drop_database(url)


# The UI tests' headless Chromium and page (fails a test on any JavaScript error).
from tests.ui.conftest import browser, page  # noqa: E402,F401
