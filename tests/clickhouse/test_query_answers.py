"""The query answer tests (tests/query/test_query_api.py), run again with the server on ClickHouse.

Same spans, same specs, same expected answers computed in Python: the two stores agree because each
agrees with Python (percentiles included -- both use linear interpolation, see the dialect's docstring).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from tests.clickhouse.conftest import clickhouse_url, drop_database
from tests.query.conftest import Loaded, _make_spans, _send
from tests.query.test_query_api import *  # noqa: F403 - every story, collected again here with this module's `loaded`
from tests.server import ApiaryProcess


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loaded]:
    root: Path = tmp_path_factory.mktemp("clickhouse-query")
    url = clickhouse_url(root)
    key = subprocess.run([sys.executable, "-m", "apiary", "keys", "create", "dev", "--store", url],
                         check=True, capture_output=True, text=True).stdout.strip()
    server = ApiaryProcess(root / "data", key=key, extra_args=["--store", url]).start(timeout=60)
    try:
        base = int(time.time()) - 4000
        spans = _make_spans(base)
        _send(server, spans)
        for s in spans:
            s.update(s["attrs"])
            s["timestamp"] = s["start_ns"] / 1e9
        data = Loaded(server, spans, base, base + 3600)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            r = httpx.get(f"{server.url}/api/datasets", headers=data.headers())
            if sum(d["count"] for d in r.json()["datasets"]) >= len(spans):
                break
            time.sleep(0.2)
        yield data
    finally:
        server.stop()
        drop_database(url)
