"""BubbleUp over spans sent by the real OTel SDK, on DuckDB and on ClickHouse (chdb): every distribution checked
against Python's count of the same spans."""

from __future__ import annotations

import math
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx
import pytest

from tests.clickhouse.conftest import clickhouse_url, drop_database
from tests.query.conftest import _send
from tests.server import ApiaryProcess, create_key

DATASET = "shop"
BINS = 20  # apiary.query.bubbleup.HISTOGRAM_BINS: part of the answer's documented shape
ROUTES = ["/api/cart", "/api/checkout", "/api/search", "/api/home"]
ATTRIBUTES = ["app.user_id", "app.cache_hit", "app.items", "app.ratio", "app.only_slow", "http.status_code", "http.route",
              "http.method"]


def _spans(base: int) -> list[dict[str, Any]]:
    """200 requests; every tenth is slow and shares what sets it apart: user "londo", a cache miss, status 500."""
    spans = []
    for i in range(200):
        slow = i % 10 == 0
        attrs: dict[str, Any] = {"http.route": ROUTES[i % 4], "http.method": "POST" if i % 3 == 0 else "GET",
                                 "app.items": (i * 7) % 37 * 3, "app.ratio": i / 7}
        if slow:
            attrs.update({"app.user_id": "londo", "app.cache_hit": False, "http.status_code": 500, "app.only_slow": "yes"})
        else:
            if i % 3 == 0:  # sparse: most requests carry no user
                attrs["app.user_id"] = f"user{i % 4}"
            attrs["app.cache_hit"] = i % 2 == 0
            attrs["http.status_code"] = 404 if i % 5 == 1 else 200
        spans.append({"service.name": DATASET, "name": "request", "start_ns": (base + 10 + i * 15) * 1_000_000_000,
                      "duration_ms": float(900 + i) if slow else float(10 + i % 90), "attrs": attrs, "root": True, "idx": i})
    return spans


class Shop:
    def __init__(self, server: ApiaryProcess, other_key: str, spans: list[dict[str, Any]], start: int, end: int) -> None:
        self.server, self.other_key, self.spans, self.start, self.end = server, other_key, spans, start, end

    def post(self, body: Any, key: str | None = None) -> httpx.Response:
        return httpx.post(f"{self.server.url}/api/bubbleup", json=body, timeout=60,
                          headers={"X-Honeycomb-Team": key or self.server.key})

    def bubbleup(self, selection: dict[str, Any], filters: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        query: dict[str, Any] = {"calculations": [{"op": "HEATMAP", "column": "duration_ms"}],
                                 "start_time": self.start, "end_time": self.end}
        if filters:
            query["filters"] = filters
        r = self.post({"dataset": DATASET, "query": query, "selection": selection})
        assert r.status_code == 200, r.text
        return r.json()


def _start(root: Path, store: str) -> tuple[ApiaryProcess, str]:
    """A server on ``store`` with a key of ``dev`` (the test's) and one of another environment."""
    if store == "duckdb":
        key, other = create_key(root / "data", "dev"), create_key(root / "data", "other")
        return ApiaryProcess(root / "data", key=key).start(), other
    url = clickhouse_url(root)
    key, other = (subprocess.run([sys.executable, "-m", "apiary", "keys", "create", env, "--store", url],
                                 check=True, capture_output=True, text=True).stdout.strip() for env in ("dev", "other"))
    return ApiaryProcess(root / "data", key=key, extra_args=["--store", url]).start(timeout=60), other


@pytest.fixture(scope="module", params=["duckdb", "chdb"])
def shop(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    root = tmp_path_factory.mktemp(f"bubbleup-{request.param}")
    server, other_key = _start(root, request.param)
    try:
        base = int(time.time()) - 4000
        spans = _spans(base)
        _send(server, spans)
        for s in spans:
            s.update(s["attrs"])
            s["timestamp"] = s["start_ns"] / 1e9
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            r = httpx.get(f"{server.url}/api/datasets", headers={"X-Honeycomb-Team": server.key})
            if sum(d["count"] for d in r.json()["datasets"]) >= len(spans):
                break
            time.sleep(0.2)
        yield Shop(server, other_key, spans, base, base + 3600)
    finally:
        server.stop()
        if request.param == "chdb":
            drop_database(clickhouse_url(root))


# -- the expected answer, worked out in Python ----------------------------------------------------------


def expected(rows: list[dict[str, Any]], in_selection: Callable[[dict[str, Any]], bool], column: str) -> dict[str, Any]:
    """Counts per value (or histogram bucket) and missing, per side, and the largest difference in share between them."""
    sel = [s for s in rows if in_selection(s)]
    base = [s for s in rows if not in_selection(s)]
    present = [s[column] for s in rows if s.get(column) is not None]
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present)
    if numeric and len(set(present)) > BINS:
        lo, hi = min(present), max(present)
        width = (hi - lo) / BINS

        def key(v: Any) -> Any:
            return min(math.floor((v - lo) / width), BINS - 1)
    else:
        def key(v: Any) -> Any:
            return v
    counts = [Counter(key(s[column]) if s.get(column) is not None else None for s in side) for side in (sel, base)]
    keys = set(counts[0]) | set(counts[1])
    score = max(abs(counts[0][k] / len(sel) - counts[1][k] / len(base)) for k in keys)
    return {"selection": counts[0], "baseline": counts[1], "n": (len(sel), len(base)), "score": score,
            "histogram": numeric and len(set(present)) > BINS}


def answered(col: dict[str, Any], side: str, histogram: bool) -> Counter:
    entries = col[side]
    if histogram:
        lo, width = entries[0]["lower"], entries[0]["upper"] - entries[0]["lower"]
        return Counter({(round((e["lower"] - lo) / width) if "lower" in e else None): e["count"] for e in entries if e["count"]})
    return Counter({e["value"]: e["count"] for e in entries if e["count"]})


def check_column(doc: dict[str, Any], rows: list[dict[str, Any]], in_selection: Callable[[dict[str, Any]], bool],
                 column: str) -> dict[str, Any]:
    want = expected(rows, in_selection, column)
    col = next(c for c in doc["columns"] if c["column"] == column)
    assert col["kind"] == ("histogram" if want["histogram"] else "values"), col
    assert answered(col, "selection", want["histogram"]) == +want["selection"], column
    assert answered(col, "baseline", want["histogram"]) == +want["baseline"], column
    assert col["score"] == pytest.approx(want["score"], abs=1e-6), column
    for side, n in zip(("selection", "baseline"), want["n"]):
        for e in col[side]:
            assert e["share"] == pytest.approx(e["count"] / n)
    return col


# -- stories ------------------------------------------------------------------------------------------------


def test_a_rectangle_on_the_heatmap_finds_what_the_slow_requests_share(shop: Shop) -> None:
    doc = shop.bubbleup({"start_time": shop.start, "end_time": shop.end, "column": "duration_ms", "min": 500, "max": 1500})

    def slow(s: dict[str, Any]) -> bool:
        return 500 <= s["duration_ms"] <= 1500

    assert (doc["selection_count"], doc["baseline_count"]) == (20, 180)
    for column in ATTRIBUTES:
        check_column(doc, shop.spans, slow, column)
    names = [c["column"] for c in doc["columns"]]
    assert "duration_ms" not in names and "timestamp" not in names  # the selection's own column differs by construction
    scores = [c["score"] for c in doc["columns"]]
    assert scores == sorted(scores, reverse=True)
    # An attribute only the selection has scores 1: present on every selected span, missing from every other one.
    # Values found on one side only score 1, ranked first (ties by name): an attribute only the selection has,
    # the one user and the one status code of every slow request.
    assert [c["column"] for c in doc["columns"][:3]] == ["app.only_slow", "app.user_id", "http.status_code"]
    assert [c["score"] for c in doc["columns"][:3]] == [1.0, 1.0, 1.0] and doc["columns"][3]["score"] < 1
    only_slow = next(c for c in doc["columns"] if c["column"] == "app.only_slow")
    assert only_slow["baseline"] == [{"value": "yes", "count": 0, "share": 0.0}, {"value": None, "count": 180, "share": 1.0}]
    # Booleans and sparse strings: a cache miss and user "londo" on every slow request.
    cache = next(c for c in doc["columns"] if c["column"] == "app.cache_hit")
    assert [(e["value"], e["count"]) for e in cache["selection"]] == [(False, 20), (True, 0)]
    user = next(c for c in doc["columns"] if c["column"] == "app.user_id")
    assert user["selection"][0] == {"value": "londo", "count": 20, "share": 1.0}
    # Histograms share their buckets: the same edges on both sides, from the smallest value to the largest.
    items = next(c for c in doc["columns"] if c["column"] == "app.items")
    assert [(e["lower"], e["upper"]) for e in items["selection"]] == [(e["lower"], e["upper"]) for e in items["baseline"]]
    values = [s["app.items"] for s in shop.spans]
    assert items["selection"][0]["lower"] == min(values) and items["selection"][BINS - 1]["upper"] == pytest.approx(max(values))


def test_a_filter_selection_against_the_rest_of_a_filtered_query(shop: Shop) -> None:
    doc = shop.bubbleup({"filters": [{"column": "app.user_id", "op": "=", "value": "londo"}]},
                        filters=[{"column": "http.method", "op": "=", "value": "GET"}])
    rows = [s for s in shop.spans if s["http.method"] == "GET"]

    def londo(s: dict[str, Any]) -> bool:
        return s.get("app.user_id") == "londo"

    assert (doc["selection_count"], doc["baseline_count"]) == (sum(map(londo, rows)), len(rows) - sum(map(londo, rows)))
    assert doc["baseline_count"] == len(rows) - doc["selection_count"]
    for column in [c for c in ATTRIBUTES if c != "app.user_id"] + ["duration_ms"]:
        check_column(doc, rows, londo, column)
    assert "app.user_id" not in [c["column"] for c in doc["columns"]]


def test_a_time_range_of_chart_points_and_ids_compared_by_presence(shop: Shop) -> None:
    lo, hi = shop.start + 10 + 50 * 15, shop.start + 10 + 100 * 15  # spans 50..99

    def inside(s: dict[str, Any]) -> bool:
        return lo <= s["timestamp"] < hi

    doc = shop.bubbleup({"start_time": lo, "end_time": hi, "filters": [{"column": "http.route", "op": "=", "value": "/api/cart"}]})
    picked = [s for s in shop.spans if inside(s) and s["http.route"] == "/api/cart"]
    assert doc["selection_count"] == len(picked) == 12
    for column in ["app.user_id", "app.cache_hit", "http.status_code", "app.items", "duration_ms"]:
        check_column(doc, shop.spans, lambda s: inside(s) and s["http.route"] == "/api/cart", column)
    # Ids (a distinct value on most rows) are compared by presence only: each side's values are its own by nature.
    span_ids = next(c for c in doc["columns"] if c["column"] == "trace.span_id")
    assert (span_ids["kind"], span_ids["score"]) == ("presence", 0.0)
    assert span_ids["selection"] == [{"present": True, "count": 12, "share": 1.0}]


def test_the_cli_prints_the_ranked_columns(shop: Shop) -> None:
    cmd = [sys.executable, "-m", "apiary", "bubbleup", "--url", shop.server.url, "--key", shop.server.key, "--dataset", DATASET,
           "--where", "http.route != /api/home", "--select-column", "duration_ms", "--min", "500", "--max", "2000",
           "--start", str(shop.start), "--end", str(shop.end), "--columns", "3"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    rows = [s for s in shop.spans if s["http.route"] != "/api/home"]
    slow = sum(1 for s in rows if s["duration_ms"] >= 500)
    lines = done.stdout.splitlines()
    assert lines[0] == f"{slow} selected events against {len(rows) - slow} in the rest of the query"
    headings = [line for line in lines if line[:1].isdigit() and "(" in line]
    assert headings == ["1.00  app.only_slow  (values, string)", "1.00  app.user_id  (values, string)",
                        "1.00  http.status_code  (values, integer)"]
    user = lines[lines.index(headings[1]) + 2]
    assert user.split() == ["londo", str(slow), "100.0%", "0", "0.0%"]
    assert "more columns (--columns N shows more)" in done.stdout
    bad = subprocess.run(cmd[:-2] + ["--min", "3000"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1
    assert "apiary bubbleup: selection: min (3000) is greater than max (2000) (HTTP 400)" in bad.stderr


def test_a_selection_with_no_rows_answers_counts_and_no_columns(shop: Shop) -> None:
    doc = shop.bubbleup({"column": "duration_ms", "min": 5000, "max": 6000})
    assert (doc["selection_count"], doc["baseline_count"], doc["columns"]) == (0, 200, [])


def test_another_environments_key_sees_nothing(shop: Shop) -> None:
    body = {"dataset": DATASET, "query": {"time_range": 7200}, "selection": {"column": "duration_ms", "min": 0, "max": 10_000}}
    r = shop.post(body, key=shop.other_key)
    assert r.status_code == 404 and f"dataset {DATASET!r} not found in environment 'other'" in r.json()["error"]
    everything = shop.post({**body, "dataset": "__all__"}, key=shop.other_key)
    assert everything.status_code == 200, everything.text
    assert (everything.json()["selection_count"], everything.json()["baseline_count"], everything.json()["columns"]) == (0, 0, [])
    assert shop.post(body, key="not-a-key").status_code == 401
    assert httpx.post(f"{shop.server.url}/api/bubbleup", json=body, timeout=30).status_code == 401


@pytest.mark.parametrize("body, message", [
    ({"selection": {"column": "duration_ms", "min": 2000, "max": 500}}, "selection: min (2000) is greater than max (500)"),
    ({"selection": {"column": "app.nope", "min": 1, "max": 2}}, "selection.column: unknown column 'app.nope' in dataset 'shop'"),
    ({"selection": {"column": "app.user_id", "min": 1, "max": 2}}, "a value range needs a numeric one"),
    ({"selection": {"filters": [{"column": "app.nope", "op": "=", "value": 1}]}}, "unknown column 'app.nope'"),
    ({"selection": {}}, "select rows by a time range, a column's value range or filters"),
    ({"selection": {"start_time": 20, "end_time": 10}}, "end_time (10) must be after start_time (20)"),
    ({"query": {"calculations": [{"op": "P42", "column": "duration_ms"}]}, "selection": {"column": "duration_ms", "min": 1, "max": 2}},
     "query: calculations[0].op: unknown op 'P42'"),
    ({"query": {"filters": [{"column": "app.nope", "op": "=", "value": 1}]}, "selection": {"column": "duration_ms", "min": 1}},
     "filters[0].column: unknown column 'app.nope'"),
    ({"selection": {"column": "duration_ms", "min": 1}, "limit": 3}, "limit: unknown field"),
])
def test_bad_input_is_a_400_that_says_what_to_fix(shop: Shop, body: dict[str, Any], message: str) -> None:
    r = shop.post({"dataset": DATASET, **body})
    assert r.status_code == 400, r.text
    assert message in r.json()["error"]


def test_an_unknown_dataset_is_a_404(shop: Shop) -> None:
    r = shop.post({"dataset": "nope", "selection": {"column": "duration_ms", "min": 1, "max": 2}})
    assert r.status_code == 404
    assert "dataset 'nope' not found" in r.json()["error"]
