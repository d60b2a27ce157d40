"""In Chromium: the Traces page, the critical path, search and errors inside a trace, hiding short spans, compare,
and a 100,000-span trace, on DuckDB and on ClickHouse."""

from __future__ import annotations

import time

import httpx

from bench import critical_trace
from tests.traces.conftest import Planted


def open_trace(page, planted: Planted, name: str) -> None:  # noqa: ANN001
    page.goto(f"{planted.server.url}/trace/{planted.traces[name].trace_id}?env=dev")
    page.wait_for_selector("body[data-rendered=trace]")


def row_ids(page, selector: str = ".wf-row") -> list[str]:  # noqa: ANN001
    return page.eval_on_selector_all(selector, "rows => rows.map(r => r.dataset.spanId)")


def test_the_traces_page_lists_the_planted_traces_with_n_of_m_and_compares_two(page, planted: Planted) -> None:  # noqa: ANN001
    page.goto(f"{planted.server.url}/traces?env=dev")
    page.wait_for_selector("body[data-rendered=traces]")
    assert page.locator("#nav a.active").inner_text() == "Traces"
    page.fill(".condition[data-name=a] [name=span-name]", "checkout")
    page.click("#add-condition")
    page.select_option(".condition[data-name=b] [name=error]", "yes")
    page.fill("[name=match]", "a and not b")
    page.click("#search-traces")
    page.wait_for_selector(".search-status[data-matched]")
    assert page.locator(".search-status").inner_text().startswith("3 of 3 traces matched")
    ids = page.eval_on_selector_all("table.traces tbody tr", "rows => rows.map(r => r.dataset.traceId)")
    assert set(ids) == planted.ids("db_under_checkout", "db_beside_checkout", "rootless_checkout")
    rootless = page.locator(f"table.traces tr[data-trace-id='{planted.traces['rootless_checkout'].trace_id}']")
    assert rootless.locator("td.root-name").inner_text() == "checkoutno root"
    slow = page.locator(f"table.traces tr[data-trace-id='{planted.traces['db_under_checkout'].trace_id}']")
    assert slow.locator("td.root-name").inner_text() == "POST /checkout" and slow.locator("td.duration").inner_text() == "500.0 ms"
    assert slow.locator("td.root-service").inner_text() == "web" and slow.locator("td.spans").inner_text() == "3"
    # limit 1: the caption still counts every match
    page.fill("[name=limit]", "1")
    page.click("#search-traces")
    page.wait_for_function("document.querySelectorAll('table.traces tbody tr').length === 1")
    assert page.locator(".search-status").inner_text().startswith("1 of 3 traces matched")
    # pick two and compare them
    page.fill("[name=limit]", "20")
    page.click("#search-traces")
    page.wait_for_function("document.querySelectorAll('table.traces tbody tr').length === 3")
    for name in ("db_under_checkout", "db_beside_checkout"):
        page.locator(f"table.traces tr[data-trace-id='{planted.traces[name].trace_id}'] input.pick").check()
    page.click("#compare-traces")
    page.wait_for_selector("body[data-rendered=compare]")
    assert "/compare/" in page.url


def test_the_trace_view_highlights_the_critical_path(page, planted: Planted) -> None:  # noqa: ANN001
    open_trace(page, planted, "fanout")
    ids = planted.traces["fanout"].ids
    assert set(row_ids(page, ".wf-row.critical")) == {ids["root"], ids["b"], ids["b1"], ids["c"]}
    assert ids["a"] in row_ids(page) and ids["a"] not in row_ids(page, ".wf-row.critical")
    assert page.locator(".cp-legend").inner_text() == "critical path: 4 spans"
    # the root holds the path three times (before b, between b and c, after c)
    assert page.locator(f".wf-row[data-span-id='{ids['root']}'] .cp-seg").count() == 3
    page.uncheck("#show-critical")
    assert page.locator(".cp-seg").count() == 0


def test_search_inside_a_trace_finds_and_filters_spans(page, planted: Planted) -> None:  # noqa: ANN001
    open_trace(page, planted, "db_under_checkout")
    ids = planted.traces["db_under_checkout"].ids
    page.fill("#trace-search", "db.rows=12")  # attribute text
    page.wait_for_function("document.querySelector('.match-count').textContent.startsWith('1 of 1')")
    assert row_ids(page, ".wf-row.match") == [ids["db"]]
    assert row_ids(page, ".wf-row.selected") == [ids["db"]]
    open_trace(page, planted, "fanout")
    ids = planted.traces["fanout"].ids
    page.fill("#trace-search", "api")  # a service: four spans
    page.wait_for_function("document.querySelector('.match-count').textContent.startsWith('1 of 4')")
    page.click("#next-match")
    assert page.locator(".match-count").inner_text().startswith("2 of 4")
    page.fill("#trace-search", "name=c")
    page.wait_for_function("document.querySelector('.match-count').textContent.startsWith('1 of 1')")
    page.check("#only-matches")  # the match and its ancestors only
    assert row_ids(page) == [ids["root"], ids["c"]]


def test_stepping_through_errors_and_hiding_short_spans(page, planted: Planted) -> None:  # noqa: ANN001
    open_trace(page, planted, "two_errors")
    ids = planted.traces["two_errors"].ids
    page.click("#next-error")
    assert row_ids(page, ".wf-row.selected") == [ids["retry1"]] and page.locator(".error-step").inner_text() == "error 1 of 2"
    page.click("#next-error")
    assert row_ids(page, ".wf-row.selected") == [ids["retry2"]] and page.locator(".error-step").inner_text() == "error 2 of 2"
    page.click("#prev-error")
    assert row_ids(page, ".wf-row.selected") == [ids["retry1"]]
    open_trace(page, planted, "fanout")
    ids = planted.traces["fanout"].ids
    page.fill("#min-duration", "50")  # c (30 ms) goes; a (90 ms), b, b1 stay
    page.wait_for_function(f"!document.querySelector(\".wf-row[data-span-id='{ids['c']}']\")")
    assert row_ids(page) == [ids["root"], ids["a"], ids["b"], ids["b1"]]
    assert page.locator(f".wf-row[data-span-id='{ids['root']}'] .kids.short").inner_text() == "+1 short"


def test_the_compare_page_shows_the_planted_difference(page, planted: Planted) -> None:  # noqa: ANN001
    fast, slow = planted.traces["compare_fast"].trace_id, planted.traces["compare_slow"].trace_id
    page.goto(f"{planted.server.url}/compare/{fast}/{slow}?env=dev")
    page.wait_for_selector("body[data-rendered=compare]")
    work = page.locator("table.compare tr[data-path='web: GET /compare > api: work']")
    assert work.locator("td.diff").inner_text() == "+100.0 ms"
    assert "slower" in work.locator("td.diff").get_attribute("class")
    cache = page.locator("table.compare tr[data-path='web: GET /compare > api: cache-get']")
    assert cache.locator("td.diff").inner_text() == "only in B" and cache.locator(".badge").inner_text() == "B only"
    root = page.locator("table.compare tr[data-path='web: GET /compare']")
    assert root.locator("td.diff").inner_text() == "+110.0 ms"


def test_a_100000_span_trace_opens_with_its_critical_path(page, planted: Planted) -> None:  # noqa: ANN001
    server = planted.server
    start_ns = (int(time.time()) - 600) * 1_000_000_000
    for body in critical_trace.requests(start_ns):
        httpx.post(f"{server.url}/v1/traces", content=body, timeout=120,
                   headers={"content-type": "application/x-protobuf", "x-honeycomb-team": server.key}).raise_for_status()
    doc = httpx.get(f"{server.url}/api/traces/{critical_trace.TRACE_ID}", headers=planted.headers(), timeout=300).json()
    on_path = set(doc["critical_path"]["span_ids"])
    assert len(doc["spans"]) == critical_trace.SPANS
    assert len(on_path) == critical_trace.ON_PATH and not any(s.startswith("04") for s in on_path)  # no extra span
    page.set_default_timeout(120_000)
    page.goto(f"{server.url}/trace/{critical_trace.TRACE_ID}?env=dev")
    page.wait_for_selector("body[data-rendered=trace]")
    assert page.locator(".span-count").inner_text() == f"{critical_trace.SPANS} spans"
    assert page.locator(".cp-legend").inner_text() == f"critical path: {critical_trace.ON_PATH} spans"
    assert critical_trace.ROOT in row_ids(page, ".wf-row.critical")
    assert page.locator(".wf-row .cp-seg").count() > 10 and page.locator(".wf-row").count() < 120
