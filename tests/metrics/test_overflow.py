"""Metrics past the column cap: the metric and its series columns live in the JSON overflow column and answer alike.

The server runs with ``APIARY_MAX_COLUMNS=3``: past a point's first attribute, ``meta.series`` and
``meta.start_time_us``, what a metric row holds (the metric's own column, ``meta.temporality``,
``meta.monotonic``, the bucket text, the resource attributes) is kept inside ``_attrs``. A filter on such
an attribute (``telemetry.sdk.language``, a resource attribute, filled last) makes the engine compute
totals and series in one scan (``totals_and_series``), where a RATE divides by the window on the totals
row and by the bucket on the others.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest

from tests.clickhouse.conftest import clickhouse_url, drop_database
from tests.metrics.conftest import FAST_MS, SLOW_MS, STORES, Known, provider
from tests.server import ApiaryProcess, create_key


SDK_IS_PYTHON = {"column": "telemetry.sdk.language", "op": "=", "value": "python"}


@pytest.fixture(scope="module", params=STORES)
def overflowed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Known]:
    root: Path = tmp_path_factory.mktemp(f"metrics-overflow-{request.param}")
    url = clickhouse_url(root) if request.param == "chdb" else None
    if url:
        key = subprocess.run([sys.executable, "-m", "apiary", "keys", "create", "dev", "--store", url],
                             check=True, capture_output=True, text=True).stdout.strip()
        server = ApiaryProcess(root / "data", key=key, extra_args=["--store", url], env={"APIARY_MAX_COLUMNS": "3"})
    else:
        server = ApiaryProcess(root / "data", key=create_key(root / "data"), env={"APIARY_MAX_COLUMNS": "3"})
    server.start(timeout=60)
    try:
        known = Known(server, start=int(time.time()) - 1)
        meters = provider(server, "shop")
        meter = meters.get_meter("shop")
        orders = meter.create_counter("orders")
        latency = meter.create_histogram("latency", unit="ms")
        orders.add(5, {"tenant": "t1"})
        orders.add(100, {"tenant": "t2"})
        meters.force_flush()
        time.sleep(1.1)
        orders.add(2, {"tenant": "t1"})
        for _ in range(9):
            latency.record(FAST_MS, {"tenant": "t1"})
        latency.record(SLOW_MS, {"tenant": "t1"})
        meters.shutdown()
        known.end = int(time.time()) + 2
        yield known
    finally:
        server.stop()
        if url:
            drop_database(url)


def test_rate_and_increase_of_an_overflowed_counter_filtered_on_an_overflowed_attribute(overflowed: Known) -> None:
    data = overflowed.query({"calculations": [{"op": "INCREASE", "column": "orders"}, {"op": "RATE", "column": "orders"}],
                             "filters": [{"column": "tenant", "op": "=", "value": "t1"}, SDK_IS_PYTHON]}, "shop")
    [row] = data["results"]
    assert row["data"]["INCREASE(orders)"] == 7
    assert row["data"]["RATE(orders)"] == pytest.approx(7 / (overflowed.end - overflowed.start))
    per_bucket = [p["data"]["RATE(orders)"] or 0 for p in data["series"]]
    assert sum(per_bucket) * data["granularity"] == pytest.approx(7)


def test_histogram_percentile_from_overflowed_buckets(overflowed: Known) -> None:
    data = overflowed.query({"calculations": [{"op": "HISTOGRAM_P50", "column": "latency"},
                                              {"op": "HISTOGRAM_P99", "column": "latency"}],
                             "filters": [{"column": "tenant", "op": "=", "value": "t1"}, SDK_IS_PYTHON]}, "shop")
    row = data["results"][0]["data"]
    assert 0 < row["HISTOGRAM_P50(latency)"] <= 5
    assert 250 < row["HISTOGRAM_P99(latency)"] <= 500
