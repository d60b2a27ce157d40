"""The web UI in a real headless Chromium against a real `apiary serve`: a developer's stories, click by click,
each told on DuckDB and on ClickHouse (chdb) against one server per store, in an environment of its own.

Screenshots of every page land in test-artifacts/ui-*.png.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from pathlib import Path

import httpx
import pytest

from tests.ui import data
from tests.ui.conftest import UITenant

pytestmark = pytest.mark.timeout(120)


def quantile_cont(values: list[float], q: float) -> float:
    v = sorted(values)
    pos = (len(v) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (pos - lo)


def waterfall_rows(page) -> list[tuple[str, int, str]]:  # noqa: ANN001
    rows = page.locator(".wf-row")
    out = []
    for i in range(rows.count()):
        r = rows.nth(i)
        out.append((r.locator(".span-name").inner_text(), int(r.get_attribute("data-depth")), r.locator(".dur").inner_text()))
    return out


def test_home_then_trace_waterfall_and_span_fields_shown_as_text(tenant: UITenant, page, artifacts: Path) -> None:  # noqa: ANN001
    data.send(tenant.url, tenant.key)
    page.goto(tenant.link("/"))
    panel = f".env-panel[data-env={tenant.env}]"
    page.wait_for_selector(f"{panel} table.datasets")
    spans = {r.get_attribute("data-dataset"): r.locator(".spans").inner_text()
             for r in page.locator(f"{panel} tr[data-dataset]").all()}
    assert spans == {"backend-flask": str(3 + data.MESSAGE_TRACES), "frontend-react-js": "1", "postgres": "1"}
    home_row = page.locator(f"tr[data-trace-id='{data.HOME_TRACE_ID}']")
    assert "HomeFeedPage load" in home_row.inner_text() and "200.0 ms" in home_row.inner_text()
    assert "frontend-react-js" in home_row.inner_text() and "1 error" in home_row.inner_text()
    # newest first: the slow message is the newest root span
    assert page.locator("table.recent-traces tbody tr").first.get_attribute("data-trace-id") == data.message_trace_id(data.MESSAGE_TRACES - 1)
    page.screenshot(path=str(artifacts / "ui-home.png"), full_page=True)

    home_row.locator("a").click()
    page.wait_for_selector("body[data-rendered=trace]")
    assert re.search(r"/trace/" + data.HOME_TRACE_ID, page.url)
    assert waterfall_rows(page) == [
        ("HomeFeedPage load", 0, "200.0 ms"),
        ("GET /api/activities/home", 1, "120.0 ms"),
        ("mock-data", 2, "80.0 ms"),
        ("SELECT activities", 3, "30.0 ms"),
        ("serialize", 2, "10.0 ms"),
    ]
    # spans of three services sit in one tree, each with its own colour; the failing span is marked
    legend = page.locator(".legend").inner_text()
    assert "frontend-react-js (1)" in legend and "backend-flask (3)" in legend and "postgres (1)" in legend
    assert page.locator(".wf-row[data-span-id=c000000000000004] .bar.error").count() == 1
    assert page.locator(".wf-row[data-span-id=c000000000000004] .err-mark").count() == 1

    # the custom span's attributes, the HTML payload shown literally and never run
    page.locator(".wf-row[data-span-id=b000000000000003]").click()
    assert page.locator(".detail-name").inner_text() == "mock-data"
    assert page.locator(".detail tr[data-field='app.note'] td.v").inner_text() == data.XSS
    assert page.locator(".detail tr[data-field='app.result_length'] td.v").inner_text() == "3"
    assert page.locator("img").count() == 0
    assert "span=b000000000000003" in page.url
    page.screenshot(path=str(artifacts / "ui-trace-span.png"))

    # events and links of the failing span
    page.locator(".wf-row[data-span-id=c000000000000004]").click()
    detail = page.locator(".detail").inner_text()
    assert "null" not in detail.splitlines(), "an absent section is rendered as the word null"
    assert "Events (1)" in detail and "exception" in detail and "UndefinedTable" in detail
    assert "Links (1)" in detail and "0af7651916cd43dd8448eb211c80319c" in detail
    assert "Resource (1)" in detail  # telemetry.sdk.language

    # collapse the backend subtree, expand it again, jump around
    page.locator(".wf-row[data-span-id=b000000000000002] .toggle").click()
    assert [r[0] for r in waterfall_rows(page)] == ["HomeFeedPage load", "GET /api/activities/home"]
    assert page.locator(".wf-row[data-span-id=b000000000000002] .kids").inner_text() == "+3"
    page.locator("#last-span").click()  # the page load finishes last
    assert page.locator(".detail-name").inner_text() == "HomeFeedPage load"
    page.locator(".wf-row[data-span-id=b000000000000002] .toggle").click()
    assert len(waterfall_rows(page)) == 5
    page.locator("#jump-root").click()
    assert page.locator(".detail-name").inner_text() == "HomeFeedPage load"
    page.locator("#first-span").click()
    assert page.locator(".wf-row.selected .span-name").inner_text() == "HomeFeedPage load"
    page.locator("#collapse-all").click()
    assert len(waterfall_rows(page)) == 1
    page.locator("#expand-all").click()
    assert len(waterfall_rows(page)) == 5
    page.screenshot(path=str(artifacts / "ui-trace.png"))


def _set_clause(page, clause: str, index: int, **fields: str) -> None:  # noqa: ANN001
    row = page.locator(f".clause[data-clause='{clause}'] .item").nth(index)
    for name, value in fields.items():
        el = row.locator(f"[name={name}]")
        if el.evaluate("e => e.tagName") == "SELECT":
            el.select_option(label=value) if name in ("order-by", "having-calc") else el.select_option(value)
        else:
            el.fill(value)
            el.dispatch_event("change")


def test_query_builder_heatmap_traces_save_history_and_shared_link(tenant: UITenant, page, browser, artifacts: Path) -> None:  # noqa: ANN001
    data.send(tenant.url, tenant.key)
    page.goto(tenant.link("/query", dataset="backend-flask"))
    page.wait_for_selector(".clause[data-clause=VISUALIZE] .item")
    # column names autocomplete from the dataset's columns
    page.wait_for_function("document.querySelectorAll('#columns-list option').length > 5")
    options = page.locator("#columns-list option").evaluate_all("os => os.map(o => o.value)")
    assert {"http.route", "http.status_code", "duration_ms", "app.user"} <= set(options)

    page.select_option("[name=time_range]", "3600")
    _set_clause(page, "VISUALIZE", 0, **{"calc-op": "COUNT"})
    page.locator(".clause[data-clause=VISUALIZE] .add").click()
    _set_clause(page, "VISUALIZE", 1, **{"calc-op": "P90", "calc-column": "duration_ms"})
    page.locator(".clause[data-clause=WHERE] .add").click()
    _set_clause(page, "WHERE", 0, **{"filter-column": "http.route", "filter-op": "=", "filter-value": "/api/messages"})
    page.locator(".clause[data-clause='GROUP BY'] .add").click()
    _set_clause(page, "GROUP BY", 0, **{"group-column": "http.status_code"})
    page.locator(".clause[data-clause='ORDER BY'] .add").click()
    _set_clause(page, "ORDER BY", 0, **{"order-by": "COUNT", "order-dir": "descending"})
    page.fill("[name=limit]", "5")
    page.locator(".clause[data-clause=HAVING] .add").click()
    _set_clause(page, "HAVING", 0, **{"having-calc": "COUNT", "having-op": ">", "having-value": "2"})
    page.click("#run-query")
    page.wait_for_selector("table.summary tbody tr")

    ok = [data.message_duration(i) for i in range(data.MESSAGE_TRACES) if data.message_status(i) == 200]
    failed = [data.message_duration(i) for i in range(data.MESSAGE_TRACES) if data.message_status(i) == 500]
    rows = [[c.inner_text() for c in r.locator("td").all()] for r in page.locator("table.summary tbody tr").all()]
    fmt = lambda v: str(round(v, 2)).removesuffix(".0")  # noqa: E731
    assert rows == [["200", str(len(ok)), fmt(quantile_cont(ok, 0.9))], ["500", str(len(failed)), fmt(quantile_cont(failed, 0.9))]]
    # one chart per calculation, one line per group
    assert page.locator(".line-chart").count() == 2
    assert page.locator(".line-chart[data-title=COUNT] path.series").count() == 2
    spec = json.loads(urllib.parse.parse_qs(urllib.parse.urlparse(page.url).query)["q"][0])
    assert spec["filters"] == [{"column": "http.route", "op": "=", "value": "/api/messages"}]
    assert spec["breakdowns"] == ["http.status_code"] and spec["limit"] == 5 and spec["time_range"] == 3600
    assert spec["orders"] == [{"op": "COUNT", "order": "descending"}]
    assert spec["havings"] == [{"calculate_op": "COUNT", "op": ">", "value": 2}]
    page.screenshot(path=str(artifacts / "ui-query.png"), full_page=True)

    # HAVING drops the 500 group
    page.fill(".clause[data-clause=HAVING] [name=having-value]", "10")
    page.click("#run-query")
    page.wait_for_function("document.querySelectorAll('table.summary tbody tr').length === 1")

    # a table row lists its traces
    page.locator("table.summary tbody tr").first.click()
    page.wait_for_selector("table.traces tbody tr")
    assert page.locator("table.traces tbody tr").count() == min(20, len(ok))  # the 20 slowest
    first = page.locator("table.traces tbody tr").first  # the same rows as every trace list: root, service, duration ...
    assert first.locator("td.duration").inner_text() == "55.0 ms"
    assert first.locator("td.root-name").inner_text() == "GET /api/messages"
    assert first.locator("td.root-service").inner_text() == "backend-flask" and first.locator("td.spans").inner_text() == "1"

    # the heatmap: select the slow stripe (top value bucket, whole time axis), open its one trace
    heat_spec = {"calculations": [{"op": "HEATMAP", "column": "duration_ms"}], "filters": [{"column": "http.route", "op": "=", "value": "/api/messages"}],
                 "time_range": 3600}
    page.goto(tenant.link("/query", dataset="backend-flask", q=json.dumps(heat_spec)))
    canvas = page.wait_for_selector(".heatmap canvas")
    box = canvas.bounding_box()
    d = {k: float(canvas.get_attribute(f"data-{k}")) for k in ("plot-left", "plot-top", "plot-width", "plot-height", "buckets")}
    y = box["y"] + d["plot-top"] + d["plot-height"] / d["buckets"] / 2
    page.mouse.move(box["x"] + d["plot-left"] + 1, y)
    page.mouse.down()
    page.mouse.move(box["x"] + d["plot-left"] + d["plot-width"] - 1, y, steps=5)
    page.mouse.up()
    page.wait_for_selector("table.traces tbody tr")
    assert page.locator("table.traces tbody tr").count() == 1
    page.screenshot(path=str(artifacts / "ui-heatmap.png"), full_page=True)
    page.locator("table.traces a.trace-link").click()
    page.wait_for_selector("body[data-rendered=trace]")
    assert waterfall_rows(page) == [("GET /api/messages", 0, "1.500 s")]
    page.go_back()

    # save it, find it in the history page, open it again
    page.wait_for_selector(".heatmap canvas")
    page.fill("[name=save-name]", "slow messages")
    page.click("#save-query")
    page.wait_for_function("document.querySelector('.status').textContent.includes('Saved')")
    page.goto(tenant.link("/history"))
    page.wait_for_selector("table.saved")
    assert page.locator("table.saved tr[data-name='slow messages']").count() == 1
    history_text = page.locator("table.history").inner_text()
    assert "HEATMAP(duration_ms)" in history_text and "GROUP BY http.status_code" in history_text
    page.screenshot(path=str(artifacts / "ui-history.png"), full_page=True)
    page.locator("table.saved a.saved-link").click()
    page.wait_for_selector(".heatmap canvas")

    # a shared link opens the same query in a fresh browser
    shared = page.url
    other = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
    other.goto(shared)
    other.wait_for_selector(".heatmap canvas")
    assert other.locator(".heatmap").get_attribute("data-cells") == page.locator(".heatmap").get_attribute("data-cells")
    assert other.locator("table.summary tbody tr td").first.inner_text() == str(data.MESSAGE_TRACES)
    other.context.close()


def test_service_map_and_settings(tenant: UITenant, page, artifacts: Path) -> None:  # noqa: ANN001
    data.send(tenant.url, tenant.key)
    page.goto(tenant.link("/services", time_range="3600"))
    page.wait_for_selector(".svcmap .node")
    assert sorted(n.get_attribute("data-service") for n in page.locator(".svcmap .node").all()) == [
        "backend-flask", "frontend-react-js", "postgres"]
    edges = [[c.inner_text() for c in r.locator("td").all()] for r in page.locator("table.edges tbody tr").all()]
    assert edges == [["backend-flask", "postgres", "1", "100.0%", "30.0 ms"], ["frontend-react-js", "backend-flask", "1", "0.0%", "120.0 ms"]]
    page.screenshot(path=str(artifacts / "ui-services.png"))
    page.locator(".svcmap .node[data-service=postgres]").click()
    page.wait_for_selector("table.summary tbody tr")
    assert "dataset=postgres" in page.url
    assert page.locator("table.summary tbody tr td").first.inner_text() == "SELECT activities"

    page.goto(tenant.link("/settings"))
    panel = f".panel[data-env={tenant.env}]"
    page.wait_for_selector(f"{panel} table.keys")
    text = page.locator(panel).inner_text()
    assert tenant.key[:6] + "…****" in text and tenant.key not in text
    assert f"OTEL_EXPORTER_OTLP_ENDPOINT={tenant.url}" in text and "OTEL_SERVICE_NAME=backend-flask" in text
    page.locator(f"{panel} .create-key").click()
    page.wait_for_function(f"document.querySelector('{panel} pre').textContent.match(/x-honeycomb-team=[A-Za-z0-9]{{32}}/)")
    new_key = re.search(r"x-honeycomb-team=([A-Za-z0-9]{32})", page.locator(f"{panel} pre").inner_text()).group(1)
    auth = httpx.get(f"{tenant.url}/1/auth", headers={"x-honeycomb-team": new_key})
    assert auth.status_code == 200 and auth.json()["environment"]["name"] == tenant.env
    page.screenshot(path=str(artifacts / "ui-settings.png"))


def test_large_trace_renders_only_visible_rows(tenant: UITenant, page) -> None:  # noqa: ANN001
    from bench.ui import big_trace_requests

    trace_id, reqs = big_trace_requests(3000)
    for body in reqs:
        httpx.post(f"{tenant.url}/v1/traces", content=body, headers={"content-type": "application/x-protobuf", "x-honeycomb-team": tenant.key},
                   timeout=30).raise_for_status()
    page.goto(f"{tenant.url}/trace/{trace_id}")  # a bare trace link: every environment is looked in
    page.wait_for_selector("body[data-rendered=trace]")
    assert page.locator(".span-count").inner_text() == "3000 spans"
    assert page.locator(".wf-row").count() < 120
    page.locator("#last-span").click()
    assert page.locator(".wf-row.selected").count() == 1


def test_home_and_service_map_json_count_what_was_sent(tenant: UITenant) -> None:
    """The JSON behind the home page and the service map, read as the front end reads it, on either store."""
    data.send(tenant.url, tenant.key)
    home = httpx.get(f"{tenant.url}/ui/api/home", params={"env": tenant.env, "limit": 5}, timeout=60).json()
    [mine] = [e for e in home["environments"] if e["name"] == tenant.env]
    failed = sum(1 for i in range(data.MESSAGE_TRACES) if data.message_status(i) == 500)
    assert {d["name"]: (d["spans"], d["errors"]) for d in mine["datasets"]} == {
        "backend-flask": (3 + data.MESSAGE_TRACES, failed), "frontend-react-js": (1, 0), "postgres": (1, 1)}
    assert all(d["first_seen"] <= d["last_seen"] for d in mine["datasets"])
    # newest root spans first: the last two messages (45 s and 90 s ago), the home feed (2 min ago), then two more
    newest = [data.message_trace_id(data.MESSAGE_TRACES - k) for k in (1, 2)]
    older = [data.message_trace_id(data.MESSAGE_TRACES - k) for k in (3, 4)]
    assert [r["trace_id"] for r in home["recent"]] == [*newest, data.HOME_TRACE_ID, *older]
    feed = home["recent"][2]
    assert (feed["name"], feed["service"], feed["duration_ms"]) == ("HomeFeedPage load", "frontend-react-js", 200.0)
    assert (feed["spans"], feed["errors"], feed["services"], feed["error"]) == (5, 1, 3, False)
    assert home["recent"][0]["duration_ms"] == data.SLOW_MS and home["recent"][0]["spans"] == 1

    doc = httpx.get(f"{tenant.url}/ui/api/services", params={"env": tenant.env, "time_range": 3600}, timeout=60).json()
    nodes = {n["service"]: n for n in doc["nodes"]}
    backend = [d.duration_ms for d in data.home_trace() if d.service == "backend-flask"]
    backend += [data.message_duration(i) for i in range(data.MESSAGE_TRACES)]
    assert (nodes["backend-flask"]["count"], nodes["backend-flask"]["errors"], nodes["backend-flask"]["roots"]) == (
        len(backend), failed, data.MESSAGE_TRACES)
    assert nodes["backend-flask"]["p90"] == pytest.approx(quantile_cont(backend, 0.9))
    assert (nodes["frontend-react-js"]["roots"], nodes["postgres"]["error_rate"]) == (1, 1.0)
    assert [(e["parent"], e["child"], e["count"], e["errors"], e["error_rate"], e["p90"]) for e in doc["edges"]] == [
        ("backend-flask", "postgres", 1, 1, 1.0, 30.0), ("frontend-react-js", "backend-flask", 1, 0, 0.0, 120.0)]


def test_bound_beyond_loopback_the_ui_asks_for_a_key(two_keys: tuple[UITenant, UITenant], page, artifacts: Path) -> None:  # noqa: ANN001
    mine, other = two_keys
    data.send(mine.url, mine.key)
    assert httpx.get(f"{mine.url}/ui/api/home").status_code == 401
    assert httpx.get(f"{mine.url}/ui/api/home?env={mine.env}", headers={"x-honeycomb-team": other.key}).status_code == 403
    # the other key's own view holds none of this environment's traces
    theirs = httpx.get(f"{mine.url}/ui/api/home", headers={"x-honeycomb-team": other.key}).json()
    assert [e["name"] for e in theirs["environments"]] == [other.env] and theirs["recent"] == []
    page.goto(mine.url + "/")
    page.wait_for_selector("#key-input")
    page.screenshot(path=str(artifacts / "ui-login.png"))
    page.fill("#key-input", mine.key)
    page.click("form.login button")
    page.wait_for_selector(f".env-panel[data-env={mine.env}] table.datasets")
    assert page.locator(".env-panel").count() == 1  # only the key's environment
    assert page.locator("#env-picker option").all_inner_texts() == [mine.env]
    page.goto(f"{mine.url}/trace/{data.HOME_TRACE_ID}")
    page.wait_for_selector("body[data-rendered=trace]")
    assert len(page.locator(".wf-row").all()) == 5
