"""The logs, errors and X-Ray pages, and the trace view's logs and errors, in a real Chromium against a real `apiary serve`.

Data arrives the way users' clients send it: boto3 ``logs`` (PutLogEvents) and ``xray`` (CreateGroup,
CreateSamplingRule, GetSamplingTargets, PutTraceSegments) with the Apiary key as both AWS keys, and Rollbar
item POSTs in pyrollbar's wire format. Screenshots land in test-artifacts/ui-{logs,errors,xray}*.png.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config

from tests.ui import data
from tests.ui.conftest import UITenant

expect = pytest.importorskip("playwright.sync_api").expect

pytestmark = pytest.mark.timeout(120)

HOME = data.HOME_TRACE_ID
GROUP = "cruddur"
STREAMS = ("backend-flask-1", "backend-flask-2")
N_EVENTS = 24  # one every 20 s over the last 8 minutes; every 4th is an ERROR


def aws(apiary: UITenant, service: str) -> Any:
    return boto3.session.Session().client(service, endpoint_url=apiary.url, region_name="us-east-1",
                                          aws_access_key_id=apiary.key, aws_secret_access_key=apiary.key,
                                          config=Config(retries={"max_attempts": 1}))


def send_logs(apiary: UITenant, now_ms: int) -> list[dict[str, Any]]:
    """The log lines of two streams; returns every event sent (timestamp, message, stream)."""
    logs = aws(apiary, "logs")
    logs.create_log_group(logGroupName=GROUP)
    sent: dict[str, list[dict[str, Any]]] = {s: [] for s in STREAMS}
    for i in range(N_EVENTS):
        level = "ERROR" if i % 4 == 0 else "INFO"
        msg = {"level": level, "message": f"request {i}", "latency": 10 * i}
        if level == "ERROR":
            msg["error"] = "connection refused"
        sent[STREAMS[i % 2]].append({"timestamp": now_ms - (N_EVENTS - i) * 20_000, "message": json.dumps(msg)})
    # the request of the home-feed trace, as a JSON line carrying its trace and span ids
    sent[STREAMS[0]].append({"timestamp": now_ms - 120_000 + 25, "message": json.dumps(
        {"level": "INFO", "message": "HomeActivities", "trace_id": HOME, "span_id": "b000000000000002"})})
    # a line with HTML in it: shown as text, never run
    sent[STREAMS[1]].append({"timestamp": now_ms - 30_000, "message": f"user note: {data.XSS}"})
    out = []
    for stream, events in sent.items():
        logs.create_log_stream(logGroupName=GROUP, logStreamName=stream)
        events.sort(key=lambda e: e["timestamp"])
        r = logs.put_log_events(logGroupName=GROUP, logStreamName=stream, logEvents=events)
        assert "rejectedLogEventsInfo" not in r
        out += [{**e, "stream": stream} for e in events]
    logs.close()
    return out


def rollbar_item(apiary: UITenant, *, message: str = "boom", span: str = "c000000000000004") -> dict[str, Any]:
    """One occurrence as pyrollbar posts it from a Flask request handler."""
    payload = {"access_token": apiary.key, "data": {
        "environment": "production", "level": "error", "language": "python", "framework": "flask", "platform": "linux",
        "timestamp": int(time.time()),
        "body": {"trace": {
            "frames": [{"filename": "/backend-flask/app.py", "lineno": 141, "method": "data_home", "code": "data = HomeActivities.run()"},
                       {"filename": "/backend-flask/services/home_activities.py", "lineno": 12, "method": "run",
                        "code": "cur.execute(sql)"}],
            "exception": {"class": "UndefinedTable", "message": f"{message} {data.XSS}"}}},
        "request": {"url": "http://localhost:4567/api/activities/home", "method": "GET", "user_ip": "127.0.0.1",
                    "headers": {"traceparent": f"00-{HOME}-{span}-01", "User-Agent": "curl/8"}, "GET": {"page": "1"}},
        "person": {"id": "42", "username": "andrewbrown", "email": "andrew@example.com"},
        "server": {"host": "backend", "root": "/backend-flask"},
        "notifier": {"name": "pyrollbar", "version": "0.16.3"}}}
    r = httpx.post(f"{apiary.url}/api/1/item/", json=payload, headers={"X-Rollbar-Access-Token": apiary.key}, timeout=10)
    assert r.status_code == 200 and r.json()["err"] == 0, r.text
    return r.json()


def rollbar_api(apiary: UITenant, path: str) -> Any:
    r = httpx.get(f"{apiary.url}/api/1/{path}", headers={"X-Rollbar-Access-Token": apiary.key}, timeout=10)
    r.raise_for_status()
    return r.json()["result"]


def rows(page, selector: str) -> list[str]:  # noqa: ANN001
    return [r.inner_text() for r in page.locator(selector).all()]


def test_logs_page_groups_filter_insights_tail_and_trace_link(tenant: UITenant, page, artifacts: Path) -> None:  # noqa: ANN001
    apiary = tenant
    data.send(apiary.url, apiary.key)
    now_ms = int(time.time() * 1000)
    sent = send_logs(apiary, now_ms)
    total = len(sent)

    page.goto(tenant.link("/logs"))
    page.wait_for_selector("body[data-rendered=logs]")
    group_row = page.locator("table.log-groups tr[data-group=cruddur]")
    assert group_row.locator("td").nth(1).inner_text() == str(total)
    for s in STREAMS:
        n = sum(1 for e in sent if e["stream"] == s)
        assert page.locator(f"table.log-streams tr[data-stream='{s}'] td").nth(1).inner_text() == str(n)
    expect(page.locator("table.log-events tbody tr")).to_have_count(total)
    # the HTML in a line is its text, not markup
    xss_row = page.locator("table.log-events tbody tr", has_text="user note:")
    assert xss_row.locator("td.msg").inner_text() == f"user note: {data.XSS}"
    assert page.locator("img").count() == 0
    page.screenshot(path=str(artifacts / "ui-logs.png"), full_page=True)

    # a JSON filter pattern, run by the CloudWatch filter pattern compiler on the server
    page.fill("#filter-pattern", '{ $.level = "ERROR" && $.latency >= 40 }')
    page.press("#filter-pattern", "Enter")
    want = [e for e in sent if '"ERROR"' in e["message"] and json.loads(e["message"])["latency"] >= 40]
    expect(page.locator("table.log-events tbody tr")).to_have_count(len(want))
    assert sorted(r.locator("td.msg").inner_text() for r in page.locator("table.log-events tbody tr").all()) == \
        sorted(e["message"] for e in want)
    assert "pattern=" in page.url
    # OR terms and a stream
    page.locator("table.log-streams tr[data-stream='backend-flask-2']").click()
    page.fill("#filter-pattern", "?HomeActivities ?note")
    page.press("#filter-pattern", "Enter")
    expect(page.locator("table.log-events tbody tr")).to_have_count(1)
    assert "user note:" in page.locator("table.log-events tbody tr td.msg").inner_text()
    # a bad pattern is the compiler's clear error
    page.fill("#filter-pattern", '{ $.level = }')
    page.press("#filter-pattern", "Enter")
    expect(page.locator("#filter-error")).to_be_visible()
    assert "Invalid filter pattern" in page.locator("#filter-error").inner_text()
    page.locator("table.log-streams tr[data-stream='']").click()
    page.locator("#clear-filter").click()
    expect(page.locator("table.log-events tbody tr")).to_have_count(total)

    # Logs Insights: stats by bin() gives a table and a chart; the counts match ours
    page.fill("#insights-query", "stats count(*) as n by bin(1m)")
    page.locator("#insights-run").click()
    page.wait_for_selector(".insights-chart path.series")
    shown = {}
    for r in page.locator("table.insights-results tbody tr").all():
        t, n = [c.inner_text() for c in r.locator("td").all()]
        shown[datetime.fromisoformat(t.replace("Z", "+00:00")).timestamp()] = int(n)
    ours = Counter((e["timestamp"] // 60_000) * 60 for e in sent)
    assert shown == {float(k): v for k, v in ours.items()}
    assert int(page.locator(".insights-chart").get_attribute("data-points")) == len(ours)
    page.screenshot(path=str(artifacts / "ui-logs-insights.png"), full_page=True)
    page.fill("#insights-query", "fields @timestamp, @message, @traceId | filter @traceId like /./")
    page.locator("#insights-run").click()
    page.wait_for_selector(f"table.insights-results a.trace-link:text('{HOME}')")

    # the live tail: a line sent now shows up within a couple of polls
    logs = aws(apiary, "logs")
    logs.put_log_events(logGroupName=GROUP, logStreamName=STREAMS[1],
                        logEvents=[{"timestamp": int(time.time() * 1000), "message": "tail me <b>bold</b>"}])
    logs.close()
    fresh = page.locator("table.log-events tbody tr", has_text="tail me")
    expect(fresh).to_have_count(1, timeout=8_000)
    assert fresh.locator("td.msg").inner_text() == "tail me <b>bold</b>" and page.locator("td.msg b").count() == 0

    # a line with a trace id links to its trace, whose view lists the line
    page.locator(f"table.log-events tr[data-trace-id='{HOME}'] a.trace-link").click()
    page.wait_for_selector("body[data-rendered=trace]")
    assert f"/trace/{HOME}" in page.url and "span=b000000000000002" in page.url
    assert page.locator("#tab-logs").inner_text() == "Logs (1)"


def test_errors_pages_and_trace_view_logs_and_errors(tenant: UITenant, page, artifacts: Path) -> None:  # noqa: ANN001
    apiary = tenant
    data.send(apiary.url, apiary.key)
    for _ in range(3):
        rollbar_item(apiary)
    logs = aws(apiary, "logs")
    logs.create_log_group(logGroupName=GROUP)
    logs.create_log_stream(logGroupName=GROUP, logStreamName=STREAMS[0])
    line = json.dumps({"level": "INFO", "message": "HomeActivities", "trace_id": HOME, "span_id": "b000000000000002"})
    logs.put_log_events(logGroupName=GROUP, logStreamName=STREAMS[0], logEvents=[{"timestamp": int(time.time() * 1000), "message": line}])
    logs.close()
    [item] = rollbar_api(apiary, "items")["items"]

    page.goto(tenant.link("/errors"))
    page.wait_for_selector("body[data-rendered=errors]")
    row = page.locator(f"table.error-items tr[data-item-id='{item['id']}']")
    assert row.locator("td.count").inner_text() == "3"
    assert row.locator(".item-title").inner_text() == f"UndefinedTable: boom {data.XSS}"
    assert "active" in row.inner_text() and "error" in row.inner_text()
    spark = [int(v) for v in row.locator("svg.sparkline").get_attribute("data-values").split(",")]
    assert sum(spark) == 3 and spark[-1] == 3
    assert row.locator("svg.sparkline rect").count() == 1
    assert page.locator("img").count() == 0
    page.screenshot(path=str(artifacts / "ui-errors.png"), full_page=True)

    row.locator(".item-title").click()
    page.wait_for_selector("body[data-rendered=error-item]")
    expect(page.locator("table.occurrences tbody tr")).to_have_count(3)
    trace_text = page.locator(".stack-trace").inner_text()
    assert '"/backend-flask/app.py", line 141, in data_home' in trace_text
    assert "cur.execute(sql)" in trace_text and f"UndefinedTable: boom {data.XSS}" in trace_text
    assert page.locator(".request-line").inner_text() == "GET http://localhost:4567/api/activities/home"
    assert page.locator(".request-headers tr[data-key=traceparent] td.v").inner_text() == f"00-{HOME}-c000000000000004-01"
    assert page.locator(".person tr[data-key=username] td.v").inner_text() == "andrewbrown"
    trace_link = page.locator(".occurrence-detail a.trace-link")
    assert trace_link.get_attribute("href").startswith(f"/trace/{HOME}?span=c000000000000004")
    assert page.locator("img").count() == 0
    page.screenshot(path=str(artifacts / "ui-error-item.png"), full_page=True)

    # a write without the UI's header (what a cross-site form would send) is refused
    r = httpx.post(f"{apiary.url}/ui/api/errors/items/{item['id']}/status", json={"status": "muted"})
    assert r.status_code == 403 and rollbar_api(apiary, f"item/{item['id']}")["status"] == "active"
    # Resolve, through the error store: Rollbar's API sees it; then Mute and Reactivate
    page.locator("#resolve").click()
    expect(page.locator("#item-status")).to_have_text("resolved")
    assert rollbar_api(apiary, f"item/{item['id']}")["status"] == "resolved"
    page.locator("#mute").click()
    expect(page.locator("#item-status")).to_have_text("muted")
    page.locator("#reactivate").click()
    expect(page.locator("#item-status")).to_have_text("active")
    assert rollbar_api(apiary, f"item/{item['id']}")["status"] == "active"
    page.locator("#resolve").click()
    expect(page.locator("#item-status")).to_have_text("resolved")

    # the trace view: its log line and error occurrences, marked on their spans, linking back
    trace_link.click()
    page.wait_for_selector("body[data-rendered=trace]")
    assert page.locator("#tab-logs").inner_text() == "Logs (1)"
    assert page.locator("#tab-errors").inner_text() == "Errors (3)"
    assert page.locator(".wf-row[data-span-id=c000000000000004] .error-mark").inner_text() == "E3"
    assert page.locator(".wf-row[data-span-id=b000000000000002] .log-mark").inner_text() == "L1"
    assert page.locator(".detail-name").inner_text() == "SELECT activities"  # ?span= selected it
    assert page.locator(".detail .error-link").count() == 3
    page.screenshot(path=str(artifacts / "ui-trace-signals.png"))
    page.locator("#tab-errors").click()
    expect(page.locator("table.trace-errors tbody tr")).to_have_count(3)
    assert page.locator("table.trace-errors tbody tr").first.locator("td").nth(3).inner_text() == "SELECT activities"
    assert page.locator("table.trace-errors tbody tr").first.locator("td").nth(4).inner_text() == "resolved"
    page.locator("#tab-logs").click()
    log_row = page.locator("table.trace-logs tbody tr")
    expect(log_row).to_have_count(1)
    assert log_row.locator("td.msg").inner_text() == line
    assert log_row.locator("td").nth(3).inner_text() == "GET /api/activities/home"
    assert "tab=logs" in page.url
    page.screenshot(path=str(artifacts / "ui-trace-logs.png"))
    log_row.locator("a.log-link").click()
    page.wait_for_selector("body[data-rendered=logs]")
    assert page.locator("table.log-events tr.highlight td.msg").inner_text() == line
    assert not page.locator("#live-tail").is_checked()


def test_xray_page_lists_groups_and_rules_with_sdk_statistics(tenant: UITenant, page, artifacts: Path) -> None:  # noqa: ANN001
    apiary = tenant
    xray = aws(apiary, "xray")
    xray.create_group(GroupName="Cruddur", FilterExpression='service("backend-flask")')
    rule = json.loads((Path(__file__).resolve().parent.parent / "xray" / "xray.json").read_text())["SamplingRule"]
    xray.create_sampling_rule(SamplingRule=rule)
    now = datetime.now(timezone.utc)
    for client, (req, smp, bor) in {"a" * 24: (50, 9, 1), "b" * 24: (30, 6, 0)}.items():
        xray.get_sampling_targets(SamplingStatisticsDocuments=[{"RuleName": "Cruddur", "ClientID": client, "Timestamp": now,
                                                                "RequestCount": req, "SampledCount": smp, "BorrowCount": bor}])
    start = time.time() - 1
    trace_id = f"1-{int(start):08x}-{'ab' * 12}"
    seg = {"name": "backend-flask", "id": "70de5b6f19ff9a0a", "trace_id": trace_id, "start_time": start, "end_time": start + 0.2,
           "http": {"request": {"method": "GET", "url": "http://localhost:4567/api/activities/home"}, "response": {"status": 200}}}
    assert xray.put_trace_segments(TraceSegmentDocuments=[json.dumps(seg)])["UnprocessedTraceSegments"] == []
    xray.close()

    page.goto(tenant.link("/xray"))
    page.wait_for_selector("body[data-rendered=xray]")
    assert rows(page, "table.xray-groups tbody tr td:first-child") == ["Default", "Cruddur"]
    assert page.locator("table.xray-groups tr[data-group=Cruddur] .filter-expression").inner_text() == 'service("backend-flask")'
    r = page.locator("table.sampling-rules tr[data-rule=Cruddur]")
    assert r.locator(".reservoir").inner_text() == "5/s" and r.locator(".fixed-rate").inner_text() == "10%"
    assert (r.locator(".requests").inner_text(), r.locator(".sampled").inner_text(), r.locator(".borrowed").inner_text()) == ("80", "15", "1")
    assert "service=backend-flask" in r.inner_text() and "9000" in r.inner_text()
    assert rows(page, "table.sampling-rules tbody tr td:nth-child(2)") == ["Cruddur", "Default"]  # by priority
    page.screenshot(path=str(artifacts / "ui-xray.png"), full_page=True)

    # the X-Ray segment is a trace like any other
    page.goto(tenant.link(f"/trace/{trace_id}"))
    page.wait_for_selector("body[data-rendered=trace]")
    assert page.locator(".wf-row .span-name").first.inner_text() == "backend-flask"


def test_bound_beyond_loopback_each_key_sees_its_own_logs_errors_and_rules(two_keys: tuple[UITenant, UITenant]) -> None:
    """With network exposure each key reads its own environment's logs, errors and X-Ray groups, and no other's."""
    mine, theirs = two_keys
    key, other = mine.key, theirs.key
    send_logs(mine, int(time.time() * 1000))
    rollbar_item(mine)
    [item] = rollbar_api(mine, "items")["items"]
    url = f"{mine.url}/ui/api"
    ui = {"X-Apiary-UI": "1"}
    for path in ("/logs/groups", f"/logs/events?group={GROUP}", "/errors/items", f"/errors/items/{item['id']}", "/xray"):
        assert httpx.get(url + path).status_code == 401, path
    assert httpx.get(url + "/logs/groups", headers={"x-honeycomb-team": other}).json()["groups"] == []
    assert httpx.get(url + f"/logs/events?group={GROUP}", headers={"x-honeycomb-team": other}).status_code == 404
    assert httpx.get(url + "/errors/items", headers={"x-honeycomb-team": other}).json()["items"] == []
    assert httpx.post(url + f"/errors/items/{item['id']}/status", json={"status": "resolved"},
                      headers={"x-honeycomb-team": other, **ui}).status_code == 404
    assert httpx.get(url + f"/logs/groups?env={mine.env}", headers={"x-honeycomb-team": other}).status_code == 403
    r = httpx.post(url + "/logs/insights", json={"query": "stats count(*)", "groups": [GROUP]}, headers={"x-honeycomb-team": key, **ui})
    assert r.status_code == 200 and r.json()["rows"] == [[N_EVENTS + 2]]
    r = httpx.post(url + "/logs/insights", json={"query": "stats count(* by", "groups": [GROUP]}, headers={"x-honeycomb-team": key, **ui})
    assert r.status_code == 400 and "character" in r.json()["error"]
    r = httpx.post(url + f"/errors/items/{item['id']}/status", json={"status": "resolved"}, headers={"x-honeycomb-team": key, **ui})
    assert r.status_code == 200 and rollbar_api(mine, f"item/{item['id']}")["status"] == "resolved"
    assert [g["name"] for g in httpx.get(url + "/xray", headers={"x-honeycomb-team": other}).json()["groups"]] == ["Default"]
