"""BubbleUp past its sampling threshold, on both stores: every selected span counted, the baseline exactly the spans
of the sample's slices of time -- checked against Python on the same spans.

The threshold is lowered for the test (``BASELINE_SAMPLE``), so a few thousand spans take the path 10 M do; the
query layer is called in-process, as the route calls it.
"""

from __future__ import annotations

import asyncio
import math
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Iterator

import pytest

from apiary.model.builder import BatchBuilder
from apiary.query import bubbleup
from apiary.query.spec import parse_spec
from tests.clickhouse.conftest import clickhouse_url, drop_database

PLANS = ["free", "team", "enterprise"]
START = 1_780_000_000  # spans over 2 h from here, queried over 6 h


def _spans() -> list[dict[str, Any]]:
    spans = []
    for i in range(3000):
        slow = i % 50 == 0
        spans.append({"ts_us": START * 1_000_000 + i * 2_400_000 + 7, "span_id": f"{i + 1:016x}",
                      "duration_ms": 900.0 + i % 40 if slow else float(5 + i % 83),
                      "app.plan": "enterprise" if slow else PLANS[i % 3], "app.n": (i * 13) % 97, "app.flag": i % 4 == 0})
    return spans


@pytest.fixture(params=["duckdb", "chdb"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if request.param == "duckdb":
        from apiary.store.duckdb import DuckDBStore

        s: Any = DuckDBStore(tmp_path / "spans.duckdb")
    else:
        from apiary.store.clickhouse.store import ClickHouseStore

        s = ClickHouseStore(clickhouse_url(tmp_path))
    spans = _spans()
    b = BatchBuilder(len(spans))
    for i, sp in enumerate(spans):
        b.core["timestamp"][i] = sp["ts_us"]
        b.core["trace.trace_id"][i] = f"{i + 1:032x}"
        b.core["trace.span_id"][i] = sp["span_id"]
        b.core["name"][i] = "request"
        b.core["service.name"][i] = "shop"
        b.core["duration_ms"][i] = sp["duration_ms"]
        b.dataset[i] = "shop"
        for key in ("app.plan", "app.n", "app.flag"):
            b.set_attr(i, key, sp[key])
    asyncio.run(s.append("dev", b.build()))
    try:
        yield s
    finally:
        s.close_sync()
        if request.param == "chdb":
            drop_database(clickhouse_url(tmp_path))


def _naive(ts_us: int) -> datetime:
    return datetime(1970, 1, 1) + timedelta(microseconds=ts_us)


def _in(slices: tuple[tuple[datetime, datetime], ...], ts_us: int) -> bool:
    return any(a <= _naive(ts_us) < z for a, z in slices)


@pytest.mark.parametrize("counted_in", ["arrow", "sql"])
def test_past_the_threshold_the_baseline_is_the_spans_of_the_sample_slices(store: Any, monkeypatch: pytest.MonkeyPatch,
                                                                            counted_in: str) -> None:
    """Counted from the fetched rows (a selection of a few thousand) or by SQL's grouping sets (past
    ``ARROW_COUNT_ROWS``, lowered here): the same counts either way."""
    monkeypatch.setattr(bubbleup, "BASELINE_SAMPLE", 600)
    monkeypatch.setattr(bubbleup, "PROFILE_SAMPLE", 60)
    if counted_in == "sql":
        monkeypatch.setattr(bubbleup, "ARROW_COUNT_ROWS", 0)
    spec = parse_spec({"calculations": [{"op": "HEATMAP", "column": "duration_ms"}], "start_time": START - 3600,
                       "end_time": START + 5 * 3600})
    selection = bubbleup.parse_selection({"column": "duration_ms", "min": 500, "max": 2000})
    outcome = bubbleup.run_bubbleup(store, "dev", "shop", spec, selection)
    doc = outcome.data

    spans = _spans()
    chosen = [s for s in spans if 500 <= s["duration_ms"] <= 2000]
    rest = [s for s in spans if not 500 <= s["duration_ms"] <= 2000]
    assert (doc["selection_count"], doc["baseline_count"]) == (len(chosen), len(rest)) == (60, 2940)
    # The slices cover the query's first to last span, not its empty hours around them.
    first, last = _naive(spans[0]["ts_us"]), _naive(spans[-1]["ts_us"] + 1)
    slices = bubbleup.baseline_slices(first, last, 600 / len(rest))
    sampled = [s for s in rest if _in(slices, s["ts_us"])]
    assert doc["baseline_compared"] == len(sampled) and 500 < len(sampled) < 700
    assert len(outcome.sql) == 3

    by_name = {c["column"]: c for c in doc["columns"]}
    plan = by_name["app.plan"]
    assert {e["value"]: e["count"] for e in plan["selection"]} == {"enterprise": 60, "free": 0, "team": 0}
    assert {e["value"]: e["count"] for e in plan["baseline"]} == dict(Counter(s["app.plan"] for s in sampled))
    assert plan["score"] == pytest.approx(1 - sum(s["app.plan"] == "enterprise" for s in sampled) / len(sampled), abs=1e-6)
    flag = by_name["app.flag"]
    assert {e["value"]: e["count"] for e in flag["baseline"]} == dict(Counter(s["app.flag"] for s in sampled))
    # Histogram edges come from the profile's sample (PROFILE_SAMPLE rows) (and every selected span); the counts from the sample.
    profiled = chosen + [s for s in rest if _in(bubbleup.baseline_slices(first, last, 60 / len(rest)), s["ts_us"])]
    lo, hi = min(s["app.n"] for s in profiled), max(s["app.n"] for s in profiled)
    width = (hi - lo) / bubbleup.HISTOGRAM_BINS
    n = by_name["app.n"]
    assert n["kind"] == "histogram" and n["baseline"][0]["lower"] == lo

    def bucket(v: int) -> int:
        return max(min(math.floor((v - lo) / width), bubbleup.HISTOGRAM_BINS - 1), 0)

    assert [e["count"] for e in n["baseline"]] == [Counter(bucket(s["app.n"]) for s in sampled)[j] for j in range(bubbleup.HISTOGRAM_BINS)]
    assert [e["count"] for e in n["selection"]] == [Counter(bucket(s["app.n"]) for s in chosen)[j] for j in range(bubbleup.HISTOGRAM_BINS)]
    assert doc["columns"][0]["column"] == "app.plan"
