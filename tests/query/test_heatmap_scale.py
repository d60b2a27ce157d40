"""A heatmap on a log scale: value buckets evenly spaced in log(value), so a 1 ms bulk and a 1 s tail both get rows.

Spans of 1, 10, 100 and 1,000 ms (five each) go in through the OTel SDK; on a linear scale 1 and 10 ms share the
bottom bucket (40 buckets of ~25 ms), on a log scale each decade gets 40/3 buckets of its own. Both stores.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from typing import Any, Iterator

import httpx
import pytest

from tests.query.conftest import _send
from tests.stores import STORES, Tenant, running

DURATIONS = [1.0, 10.0, 100.0, 1000.0]
EACH = 5


@pytest.fixture(scope="module", params=STORES)
def tenant(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Tenant, int]]:
    with running(request.param, tmp_path_factory.mktemp(f"heatscale-{request.param}"), tenants=1) as srv:
        t = srv.take()
        base = int(time.time()) - 600
        _send(t, [{"service.name": "svc", "name": "op", "root": True, "idx": i, "attrs": {},
                   "start_ns": (base + i) * 1_000_000_000, "duration_ms": d}
                  for i, d in enumerate(d for d in DURATIONS for _ in range(EACH))])
        yield t, base


def heatmap(t: Tenant, base: int, **extra: Any) -> httpx.Response:
    spec = {"calculations": [{"op": "HEATMAP", "column": "duration_ms"}], "start_time": base - 60,
            "end_time": base + 600, **extra}
    headers = {"X-Honeycomb-Team": t.key}
    r = httpx.post(f"{t.url}/1/queries/svc", json=spec, headers=headers, timeout=60)
    if r.status_code != 200:
        return r
    return httpx.post(f"{t.url}/1/query_results/svc", json={"query_id": r.json()["id"]}, headers=headers, timeout=60)


def cells(t: Tenant, base: int, **extra: Any) -> tuple[list[dict[str, float]], Counter[int]]:
    deadline = time.monotonic() + 30
    while True:
        r = heatmap(t, base, **extra)
        assert r.status_code == 201, r.text
        heat = r.json()["data"]["heatmaps"]["HEATMAP(duration_ms)"]
        counts: Counter[int] = Counter()
        for c in heat["cells"]:
            counts[c["bucket"]] += c["count"]
        if sum(counts.values()) == len(DURATIONS) * EACH or time.monotonic() > deadline:
            return heat["buckets"], counts
        time.sleep(0.3)


def test_log_scale_gives_each_decade_its_own_rows(tenant: tuple[Tenant, int]) -> None:
    buckets, counts = cells(*tenant, heatmap_scale="log")
    assert len(buckets) == 40
    assert buckets[0]["lower"] == pytest.approx(1.0) and buckets[-1]["upper"] == pytest.approx(1000.0)
    ratios = [buckets[i + 1]["lower"] / buckets[i]["lower"] for i in range(1, 38)]
    assert ratios == pytest.approx([1000 ** (1 / 40)] * len(ratios))
    step = math.log(1000) / 40
    expected = {min(int(math.log(d) / step), 39): EACH for d in DURATIONS}
    assert dict(counts) == expected == {0: 5, 13: 5, 26: 5, 39: 5}


def test_linear_scale_is_still_the_default(tenant: tuple[Tenant, int]) -> None:
    buckets, counts = cells(*tenant)
    width = (1000 - 1) / 40
    assert buckets[1]["lower"] - buckets[0]["lower"] == pytest.approx(width)
    assert dict(counts) == {0: 10, int((100 - 1) / width): 5, 39: 5}


def test_an_unknown_scale_is_refused_by_name(tenant: tuple[Tenant, int]) -> None:
    r = heatmap(*tenant, heatmap_scale="cubic")
    assert r.status_code == 400
    assert "heatmap_scale" in r.text
