"""Attributes past the column cap live in the JSON overflow column and answer like any other.

The server runs with ``APIARY_MAX_COLUMNS=3``, so ``app.user_id`` (sent after the HTTP attributes) is
not a column of its own. A filter on it is answered in one scan (totals and series together); the
answers must be those of Python over the same spans, on both stores.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Iterator

import httpx
import numpy as np
import pytest

from tests.clickhouse.conftest import clickhouse_url, drop_database
from tests.query.conftest import Loaded, load_known_spans
from tests.server import ApiaryProcess, create_key


@pytest.fixture(scope="module", params=["duckdb", "clickhouse"])
def overflowed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loaded]:
    root: Path = tmp_path_factory.mktemp(f"overflow-{request.param}")
    extra: list[str] = []
    url = None
    if request.param == "clickhouse":
        url = clickhouse_url(root)
        key = subprocess.run([sys.executable, "-m", "apiary", "keys", "create", "dev", "--store", url],
                             check=True, capture_output=True, text=True).stdout.strip()
        extra = ["--store", url]
    else:
        key = create_key(root / "data", "dev")
    server = ApiaryProcess(root / "data", key=key, extra_args=extra, env={"APIARY_MAX_COLUMNS": "3"}).start(timeout=60)
    try:
        yield load_known_spans(server)
    finally:
        server.stop()
        if url:
            drop_database(url)


def test_user_id_is_kept_in_the_overflow_column(overflowed: Loaded) -> None:
    r = httpx.get(f"{overflowed.server.url}/1/columns/backend-flask", headers=overflowed.headers())
    names = {c["key_name"] for c in r.json()}
    assert "app.user_id" in names  # still a column to the user, wherever it is kept


def test_filter_on_an_overflowed_attribute_gives_totals_series_and_examples(overflowed: Loaded) -> None:
    mine = overflowed.where(lambda s: s.get("app.user_id") == "user1")
    assert mine
    data = overflowed.query({"calculations": [{"op": "COUNT"}, {"op": "P50", "column": "duration_ms"}],
                             "filters": [{"column": "app.user_id", "op": "=", "value": "user1"}], "granularity": 60})
    [row] = data["results"]
    assert row["data"]["COUNT"] == len(mine)
    assert row["data"]["P50(duration_ms)"] == pytest.approx(np.percentile([s["duration_ms"] for s in mine], 50))
    slowest = max(mine, key=lambda s: s["duration_ms"])
    assert row["examples"] == [slowest["trace.trace_id"]]
    assert len(data["series"]) == 60  # one point per minute of the hour
    assert sum(p["data"]["COUNT"] for p in data["series"]) == len(mine)
    per_minute: dict[int, int] = {}
    for s in mine:
        b = int((s["timestamp"] - overflowed.start) // 60)
        per_minute[b] = per_minute.get(b, 0) + 1
    assert [p["data"]["COUNT"] for p in data["series"]] == [per_minute.get(b, 0) for b in range(60)]


def test_filter_matching_nothing_answers_empty(overflowed: Loaded) -> None:
    data = overflowed.query({"calculations": [{"op": "COUNT"}],
                             "filters": [{"column": "app.user_id", "op": "=", "value": "nobody"}]})
    assert data["results"] == [] and data["series"] == []
