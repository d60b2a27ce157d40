"""``POST /api/traces/search`` on planted traces, on DuckDB and on ClickHouse: exactly the planted traces, a true "N of M"."""

from __future__ import annotations

import httpx

from tests.traces.conftest import Planted


def found(doc: dict) -> set[str]:
    return {t["trace_id"] for t in doc["traces"]}


def test_a_span_under_another_lists_exactly_those_traces(planted: Planted) -> None:
    doc = planted.search({"spans": {"c": {"name": "checkout"}, "d": {"name": "db-query"}}, "match": "d under c"})
    assert found(doc) == planted.ids("db_under_checkout", "rootless_checkout")
    assert doc["matched"] == 2 and doc["returned"] == 2


def test_under_reaches_any_depth_and_can_be_negated(planted: Planted) -> None:
    deep = planted.search({"spans": {"d": {"name": "db-query"}, "r": {"name": "POST /checkout"}}, "match": "d under r"})
    assert found(deep) == planted.ids("db_under_checkout", "db_beside_checkout")  # a grandchild counts
    elsewhere = planted.search({"spans": {"c": {"name": "checkout"}, "d": {"name": "db-query"}}, "match": "d and not d under c"})
    assert found(elsewhere) == planted.ids("db_beside_checkout", "browse") and elsewhere["matched"] == 2
    spans = {"leaf": {"name": "deep-leaf"}, "hop": {"name": "hop"}, "root": {"name": "GET /deep"}}
    assert found(planted.search({"spans": spans, "match": "leaf under root"})) == planted.ids("deep_chain")
    assert planted.search({"spans": spans, "match": "hop under leaf or root under hop"})["matched"] == 0


def test_conditions_are_matched_by_any_span_of_the_trace(planted: Planted) -> None:
    doc = planted.search({"spans": {"c": {"name": "checkout"}, "d": {"name": "db-query", "where": [
        {"column": "db.rows", "op": ">=", "value": 3}]}}, "match": "c and d"})
    assert found(doc) == planted.ids("db_under_checkout", "db_beside_checkout")
    either = planted.search({"spans": {"e": {"error": True}, "r": {"name": "GET /report"}}, "match": "e or r"})
    assert found(either) == planted.ids("checkout_error", "two_errors", "one_long_span")


def test_absence_has_a_and_no_b(planted: Planted) -> None:
    doc = planted.search({"spans": {"c": {"service": "api", "name": "checkout"}, "e": {"error": True}}, "match": "c and not e"})
    assert found(doc) == planted.ids("db_under_checkout", "db_beside_checkout", "rootless_checkout")
    assert doc["matched"] == 3


def test_a_rootless_trace_is_found_by_absence_and_flagged(planted: Planted) -> None:
    doc = planted.search({"spans": {"c": {"name": "checkout"}, "root": {"service": "web", "name": "POST /checkout"}},
                          "match": "c and not root"})
    assert found(doc) == planted.ids("rootless_checkout")
    row = doc["traces"][0]
    # Without its root, the trace is named by its earliest span, and says so.
    assert row["root_missing"] is True and row["root_name"] == "checkout" and row["root_service"] == "api"
    assert row["spans"] == 2 and row["errors"] == 0 and row["duration_ms"] == 120.0


def test_n_of_m_counts_every_match_not_just_the_page(planted: Planted) -> None:
    doc = planted.search({"spans": {"c": {"name": "checkout"}}, "limit": 2})
    assert doc["returned"] == 2 and doc["matched"] == 4
    # newest first by default: the two latest planted checkouts
    assert [t["trace_id"] for t in doc["traces"]] == [planted.traces["rootless_checkout"].trace_id,
                                                      planted.traces["checkout_error"].trace_id]


def test_result_rows_carry_root_service_start_duration_counts(planted: Planted) -> None:
    t = planted.traces["db_under_checkout"]
    doc = planted.search({"trace_id": t.trace_id})
    row = doc["traces"][0]
    assert row["root_name"] == "POST /checkout" and row["root_service"] == "web" and row["root_missing"] is False
    assert row["start"].startswith(__import__("datetime").datetime.fromtimestamp(
        planted.base + t.offset_s, __import__("datetime").timezone.utc).strftime("%Y-%m-%dT%H:%M:%S"))
    assert row["duration_ms"] == 500.0 and row["spans"] == 3 and row["errors"] == 0
    assert row["services"] == ["api", "web"]
    failed = planted.search({"trace_id": planted.traces["checkout_error"].trace_id})["traces"][0]
    assert failed["errors"] == 1


def test_trace_duration_and_span_duration_are_not_confused(planted: Planted) -> None:
    long_trace = planted.search({"min_trace_duration_ms": 1000})
    assert found(long_trace) == planted.ids("long_trace_short_spans")  # 1,010 ms, though no span is over 10 ms
    long_span = planted.search({"spans": {"slow": {"min_duration_ms": 800}}})
    assert found(long_span) == planted.ids("one_long_span")  # the 1,010 ms trace has no such span
    both = planted.search({"min_trace_duration_ms": 800, "order": "slowest"})
    assert [t["trace_id"] for t in both["traces"]] == [planted.traces["long_trace_short_spans"].trace_id,
                                                       planted.traces["one_long_span"].trace_id]
    short = planted.search({"max_trace_duration_ms": 100})
    assert found(short) == planted.ids("browse", "two_errors", "compare_fast")


def test_a_trace_id_is_found_outside_the_time_range(planted: Planted) -> None:
    tid = planted.traces["fanout"].trace_id
    far = {"start_time": planted.base - 30 * 86400, "end_time": planted.base - 29 * 86400}
    assert planted.search(far)["matched"] == 0
    doc = planted.search({**far, "trace_id": tid})
    assert found(doc) == {tid} and doc["matched"] == 1
    # an X-Ray style id names the same trace
    xray = f"1-{tid[:8]}-{tid[8:]}"
    assert found(planted.search({**far, "trace_ids": [xray]})) == {tid}


def test_bad_requests_say_what_to_fix(planted: Planted) -> None:
    bad = planted.search({"spans": {"a": {"name": "x"}}, "match": "a and b"}, status=400)
    assert "'b' is not a span condition" in bad["error"]
    assert "cannot read" in planted.search({"spans": {"a": {}}, "match": "a and"}, status=400)["error"]
    assert "unknown column" in planted.search({"spans": {"a": {"where": [{"column": "nope", "op": "=", "value": 1}]}}},
                                              status=400)["error"]
    assert "order" in planted.search({"order": "sideways"}, status=400)["error"]
    r = httpx.post(f"{planted.server.url}/api/traces/search", json={}, headers={"X-Honeycomb-Team": "wrong"}, timeout=10)
    assert r.status_code == 401
