"""The critical path served with a trace, and trace compare, on planted traces, on DuckDB and ClickHouse."""

from __future__ import annotations

import httpx

from tests.traces.conftest import Planted


def get(planted: Planted, path: str) -> httpx.Response:
    return httpx.get(f"{planted.server.url}{path}", headers=planted.headers(), timeout=30)


def test_the_critical_path_of_a_fan_out_is_the_planted_path(planted: Planted) -> None:
    t = planted.traces["fanout"]
    doc = get(planted, f"/api/traces/{t.trace_id}").json()
    cp = doc["critical_path"]
    t0 = min(cp["start_us"])
    got = [(sid, (lo - t0) / 1000, (hi - t0) / 1000) for sid, lo, hi in zip(cp["span_ids"], cp["start_us"], cp["end_us"])]
    i = t.ids
    # Walking back from the root's end: c, then b (which ends last before c starts), b1 inside it, then the root.
    assert got == [(i["root"], 0, 20), (i["b"], 20, 30), (i["b1"], 30, 240), (i["b"], 240, 250), (i["root"], 250, 260),
                   (i["c"], 260, 290), (i["root"], 290, 300)]
    assert i["a"] not in cp["span_ids"]


def test_the_ui_trace_carries_the_same_critical_path(planted: Planted) -> None:
    t = planted.traces["db_under_checkout"]
    doc = httpx.get(f"{planted.server.url}/ui/api/trace/{t.trace_id}", params={"env": "dev"}, timeout=30).json()
    assert doc["critical_path"]["span_ids"] == [t.ids[k] for k in ("root", "checkout", "db", "checkout", "root")]


def test_compare_reports_the_planted_latency_difference(planted: Planted) -> None:
    fast, slow = planted.traces["compare_fast"], planted.traces["compare_slow"]
    doc = get(planted, f"/api/traces/compare/{fast.trace_id}/{slow.trace_id}").json()
    rows = {tuple((p["service"], p["name"]) for p in r["path"]): r for r in doc["rows"]}
    root = (("web", "GET /compare"),)
    assert rows[root]["in"] == "both" and rows[root]["diff_ms"] == 110.0
    work = rows[root + (("api", "work"),)]
    assert work["in"] == "both" and work["a"]["duration_ms"] == 40.0 and work["b"]["duration_ms"] == 140.0
    assert work["diff_ms"] == 100.0
    cache = rows[root + (("api", "cache-get"),)]
    assert cache["in"] == "b" and cache["a"] is None and cache["diff_ms"] is None
    assert [r["depth"] for r in doc["rows"]] == [0, 1, 1]
    assert doc["a"]["duration_ms"] == 60.0 and doc["b"]["duration_ms"] == 170.0


def test_compare_of_an_unknown_trace_is_a_404(planted: Planted) -> None:
    r = get(planted, f"/api/traces/compare/{planted.traces['compare_fast'].trace_id}/{'0' * 31 + '1'}")
    assert r.status_code == 404 and "not found" in r.json()["error"]
