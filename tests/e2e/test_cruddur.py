"""Cruddur end to end: a real browser loads the home feed; Apiary holds the whole story of that click.

`apiary serve` + backend-flask (OTel, X-Ray SDK, watchtower, pyrollbar, all unchanged and pointed at
Apiary by environment variables) + the front end (OpenTelemetry web SDK) in headless Chromium.
Parts whose receiver this Apiary does not serve yet are skipped with the reason, checked at run time.
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import (CRUDDUR, REPO, Stack, backend_env, check_app, clean_env, dumps, eventually, has_cloudwatch,
                                has_rollbar, require_frontend, serve_supports_xray, spans_named)
from tests.server import ApiaryProcess, create_key, free_port


def load_home_feed(stack: Stack, page: Any, artifacts: Path) -> str:
    """Open the home feed as worf; answer the trace id the browser propagated to backend-flask."""
    with page.expect_request(lambda r: r.url.startswith(stack.backend + "/api/activities/home") and r.method == "GET") as req:
        page.goto(stack.frontend + "/?as=worf")
    headers = req.value.all_headers()
    m = re.fullmatch(r"00-([0-9a-f]{32})-([0-9a-f]{16})-0[01]", headers.get("traceparent", ""))
    assert m, f"the fetch to backend-flask carries no traceparent: {headers}"
    page.wait_for_selector("#feed[data-state=loaded]")
    assert page.locator("#feed .activity").count() == 3
    assert page.locator("#feed .activity .message").first.inner_text() == "Cloud is very fun!"
    # The page span ends first; fetch instrumentation ends its span ~300 ms after the response (it waits for
    # the resource timing entry). Both must be exported before the tab is closed.
    page.wait_for_function("Number(document.body.dataset.otelExported || 0) >= 2")
    page.screenshot(path=str(artifacts / "cruddur-home.png"), full_page=True)
    if stack.parts["xray"]:
        xray_header = headers.get("x-amzn-trace-id", "")
        assert f"Root=1-{m.group(1)[:8]}-{m.group(1)[8:]}" in xray_header, headers
    return m.group(1)


@pytest.fixture(scope="module")
def home_trace(stack: Stack, browser: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One browser visit; its trace id and spans once the browser, Flask and custom spans (and X-Ray's segment) are in."""
    from tests.conftest import ARTIFACTS

    ARTIFACTS.mkdir(exist_ok=True)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        trace_id = load_home_feed(stack, page, ARTIFACTS)
    finally:
        context.close()

    def complete() -> list[dict[str, Any]] | None:
        spans = stack.trace(trace_id)
        services = {s.get("service.name") for s in spans}
        ok = {"frontend-react-js", "backend-flask"} <= services and spans_named(spans, name="home-activities-mock-data")
        if stack.parts["xray"]:
            ok = ok and any(s.get("xray.type") == "segment" for s in spans)
        return spans if ok else None

    spans = eventually(complete, timeout=20, what=f"trace {trace_id} with browser, Flask, custom (and X-Ray) spans")
    return {"trace_id": trace_id, "spans": spans}


def test_home_feed_click_is_one_trace_from_browser_to_mock_data(stack: Stack, home_trace: dict[str, Any]) -> None:
    spans = home_trace["spans"]
    browser = [s for s in spans if s.get("service.name") == "frontend-react-js"]
    page_span = spans_named(browser, name="load-home-feed")
    assert page_span, dumps(spans)
    fetch = [s for s in browser if s.get("trace.parent_id") == page_span[0]["trace.span_id"] and s["name"] != "load-home-feed"]
    assert fetch, f"no fetch span under load-home-feed:\n{dumps(spans)}"
    flask = [s for s in spans if s.get("service.name") == "backend-flask" and s.get("trace.parent_id") == fetch[0]["trace.span_id"]
             and s.get("xray.type") is None]
    assert flask, f"the Flask span is not a child of the browser's fetch span:\n{dumps(spans)}"
    assert flask[0].get("http.route") == "/api/activities/home" or "/api/activities/home" in flask[0]["name"]
    assert flask[0].get("app.user_id") == "worf"
    [custom] = spans_named(spans, name="home-activities-mock-data")
    assert custom["app.result_length"] == 3
    assert custom["trace.parent_id"] == flask[0]["trace.span_id"]
    assert custom.get("app.now")
    # the network between browser and back end is visible: the fetch span covers the Flask span
    assert fetch[0]["duration_ms"] >= flask[0]["duration_ms"]


def test_xray_segment_of_the_same_request_is_in_the_trace(stack: Stack, home_trace: dict[str, Any]) -> None:
    stack.skip_unless("xray", "the X-Ray daemon is not built yet (`apiary serve --help` has no --xray-port)")
    spans = home_trace["spans"]
    segments = [s for s in spans if s.get("xray.type") == "segment"]
    assert len(segments) == 1, dumps(spans)
    segment = segments[0]
    assert segment["service.name"] == "backend-flask"
    fetch_ids = {s["trace.span_id"] for s in spans if s.get("service.name") == "frontend-react-js"}
    assert segment["trace.parent_id"] in fetch_ids, dumps(spans)
    assert segment.get("annotation.user_id") == "worf"
    assert segment.get("http.status_code") == 200


def test_after_request_log_line_is_in_group_cruddur_linked_to_the_trace(stack: Stack, home_trace: dict[str, Any]) -> None:
    stack.skip_unless("cloudwatch", "the CloudWatch Logs receiver is not built yet (POST / Logs_20140328.DescribeLogGroups is 404)")
    import boto3

    logs = boto3.client("logs", endpoint_url=stack.apiary.url, region_name="us-east-1",
                        aws_access_key_id=stack.key, aws_secret_access_key=stack.key)
    trace_id = home_trace["trace_id"]

    def line() -> list[dict[str, Any]]:
        events = logs.filter_log_events(logGroupName="cruddur", startTime=int((time.time() - 600) * 1000))["events"]
        return [e for e in events if "GET http /api/activities/home" in e["message"] and trace_id in e["message"]]
    [event] = eventually(line, timeout=20, what="the after_request line in log group cruddur")
    assert re.match(r"\[\d{4}-\w{3}-\d{2} \d{2}:\d{2}\] 127\.0\.0\.1 GET http /api/activities/home\?? 200 OK", event["message"])

    # Apiary links the line to the trace: Logs Insights' @traceId
    query_id = logs.start_query(logGroupName="cruddur", startTime=int(time.time() - 600), endTime=int(time.time() + 60),
                                queryString=f'fields @message, @traceId | filter @traceId = "{trace_id}"')["queryId"]

    def results() -> list[Any] | None:
        r = logs.get_query_results(queryId=query_id)
        return r["results"] if r["status"] == "Complete" else None
    rows = [{f["field"]: f["value"] for f in row} for row in eventually(results, timeout=10)]
    assert any("GET http /api/activities/home" in r.get("@message", "") for r in rows), rows
    assert all(r.get("@traceId") == trace_id for r in rows if "@traceId" in r), rows
    assert any("HomeActivities" in r.get("@message", "") for r in rows), rows


def test_rollbar_test_route_gives_a_rollbar_item(stack: Stack) -> None:
    stack.skip_unless("rollbar", "the Rollbar receiver is not built yet (POST /api/1/item/ is 404)")
    trace_id = secrets.token_hex(16)
    r = httpx.get(stack.backend + "/rollbar/test", headers={"traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"}, timeout=10)
    assert r.status_code == 200 and r.text == "Hello World!"

    def item() -> list[dict[str, Any]]:
        got = httpx.get(stack.apiary.url + "/api/1/items", headers={"X-Rollbar-Access-Token": stack.key}, timeout=10)
        return [i for i in got.json()["result"]["items"] if i["title"] == "Hello World!"] if got.status_code == 200 else []
    [found] = eventually(item, timeout=15, what="a Rollbar item 'Hello World!'")
    assert found["level"] == "warning"
    assert found["environment"] == "production"
    assert found.get("trace_id") in (trace_id, None)


def test_trace_view_screenshot(stack: Stack, home_trace: dict[str, Any], page: Any, artifacts: Path) -> None:
    ui = httpx.get(f"{stack.apiary.url}/trace/{home_trace['trace_id']}", timeout=10)
    if ui.status_code == 404 or "text/html" not in ui.headers.get("content-type", ""):
        pytest.skip(f"Apiary's web UI has no trace view yet (GET /trace/<id> answered {ui.status_code})")
    page.goto(f"{stack.apiary.url}/trace/{home_trace['trace_id']}")
    page.wait_for_selector("body[data-rendered=trace]")
    text = page.locator("body").inner_text()
    assert "home-activities-mock-data" in text and "load-home-feed" in text
    page.screenshot(path=str(artifacts / "apiary-trace-view.png"), full_page=True)


def readme_commands() -> list[str]:
    """The README's `aws ...`, `apiary query ...` and `curl ...` lines (continuations joined), as written."""
    text = (CRUDDUR / "README.md").read_text()
    out = []
    for block in re.findall(r"```sh\n(.*?)```", text, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("  #", 1)[0].strip()
            if line.startswith(("aws ", "apiary query ", "curl ")):
                out.append(line)
    return out


def test_readme_commands_run_as_written(stack: Stack, home_trace: dict[str, Any]) -> None:
    """Step 3's `aws xray create-group` / `create-sampling-rule`, the queries and the reads, against this Apiary."""
    commands = readme_commands()
    assert any("create-sampling-rule --cli-input-json file://aws/json/xray.json" in c for c in commands), commands
    assert sum(c.startswith("apiary query") for c in commands) >= 5, commands
    env = clean_env(KEY=stack.key, AWS_ACCESS_KEY_ID=stack.key, AWS_SECRET_ACCESS_KEY=stack.key, AWS_DEFAULT_REGION="us-east-1",
                    APIARY_URL=stack.apiary.url, APIARY_KEY=stack.key, PATH=os.environ.get("PATH", ""))
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env["PATH"]])
    import traffic  # examples/cruddur/traffic.py: the queries need something to group by

    traffic.run_traffic(stack.backend, requests=60, rate=0, seed=2, quiet=True)

    def columns() -> bool:
        r = httpx.get(f"{stack.apiary.url}/1/columns/backend-flask", headers={"x-honeycomb-team": stack.key}, timeout=5)
        names = {c.get("key_name") for c in r.json()} if r.status_code == 200 else set()
        return {"app.user_id", "app.result_length", "http.route", "http.user_agent"} <= names
    eventually(columns, timeout=15, what="the columns the README's queries use")
    for command in commands:
        if command.startswith("aws xray") and not stack.parts["xray"]:
            continue
        if command.startswith("aws logs") and not stack.parts["cloudwatch"]:
            continue
        if "api/1/items" in command and not stack.parts["rollbar"]:
            continue
        command = command.replace("http://127.0.0.1:4318", stack.apiary.url)
        command = re.sub(r"(http://)?(localhost|127\.0\.0\.1):4567", stack.backend, command)
        if command.startswith("apiary "):
            command = f"{sys.executable} -m {command}"
        r = subprocess.run(["bash", "-c", command], cwd=CRUDDUR, env=env, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, f"{command}\n{r.stdout}\n{r.stderr}"
        if "create-sampling-rule" in command:
            assert '"RuleName": "Cruddur"' in r.stdout, r.stdout
        if "create-group" in command:
            assert '"GroupName": "Cruddur"' in r.stdout, r.stdout


# --- each instrumentation switched off -------------------------------------------------------------------------------

PARTS = ["xray", "rollbar", "cloudwatch"]


@pytest.mark.parametrize("off", PARTS)
def test_switching_one_instrumentation_off_leaves_the_app_and_otel_working(off: str, tmp_path: Path) -> None:
    """The backend with one part off answers every route as before, and OTel still reports to Apiary."""
    data_dir = tmp_path / "data"
    key = create_key(data_dir, "dev")
    xray = serve_supports_xray()
    xray_port = free_port() if xray else 0
    apiary = ApiaryProcess(data_dir, key=key, extra_args=["--decode-workers", "0"] + (["--xray-port", str(xray_port)] if xray else []))
    apiary.start()
    proc = None
    try:
        parts = {"xray": xray, "cloudwatch": has_cloudwatch(apiary.url), "rollbar": has_rollbar(apiary.url)}
        parts[off] = False
        port = free_port()
        env = backend_env(apiary, port, "http://localhost:3000,http://127.0.0.1:3000", parts, xray_port)
        proc, base = check_app.start_backend(port, env, str(tmp_path / "backend.log"))
        health = httpx.get(base + "/api/health", timeout=5).json()["instrumentation"]
        assert health["otel"] is True and health[off] is False
        assert {k: health[k] for k in parts if parts[k]} == {k: True for k in parts if parts[k]}
        failures = check_app.run_checks(base)
        assert failures == []

        def reported() -> bool:
            r = httpx.get(f"{apiary.url}/1/columns/backend-flask", headers={"x-honeycomb-team": key}, timeout=5)
            return r.status_code == 200 and any(c.get("key_name") == "app.result_length" for c in r.json())
        eventually(reported, timeout=15, what="backend-flask's spans (with app.result_length) in Apiary")
        if parts["cloudwatch"]:  # the others keep reporting too
            import boto3

            logs = boto3.client("logs", endpoint_url=apiary.url, region_name="us-east-1",
                                aws_access_key_id=key, aws_secret_access_key=key)
            eventually(lambda: logs.filter_log_events(logGroupName="cruddur")["events"], timeout=15,
                       what="log lines in group cruddur")
        if parts["xray"]:
            def segments() -> bool:
                r = httpx.get(f"{apiary.url}/1/columns/backend-flask", headers={"x-honeycomb-team": key}, timeout=5)
                return r.status_code == 200 and any(c.get("key_name") == "xray.type" for c in r.json())
            eventually(segments, timeout=15, what="X-Ray segments of backend-flask")
        if parts["rollbar"]:
            def item() -> bool:
                r = httpx.get(apiary.url + "/api/1/items", headers={"X-Rollbar-Access-Token": key}, timeout=5)
                return r.status_code == 200 and bool(r.json()["result"]["items"])
            eventually(item, timeout=15, what="Rollbar items")
    finally:
        if proc is not None:
            check_app.stop_process(proc)
        apiary.stop()


# --- apiary demo ---------------------------------------------------------------------------------------------------------

def test_apiary_demo_shows_data_within_20_seconds(tmp_path: Path) -> None:
    require_frontend()
    port, backend_port, frontend_port, xray_port = free_port(), free_port(), free_port(), free_port()
    cmd = [sys.executable, "-m", "apiary", "demo", "--data", str(tmp_path / "data"), "--port", str(port), "--duration", "25",
           "--backend-port", str(backend_port), "--frontend-port", str(frontend_port), "--xray-port", str(xray_port)]
    log = open(tmp_path / "demo.log", "w+")
    started = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=REPO, env=clean_env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        def datasets() -> list[str]:
            out = (tmp_path / "demo.log").read_text()
            m = re.search(r"API key\s+(\S+)", out)
            if not m:
                assert proc.poll() is None, out
                return []
            r = httpx.get(f"http://127.0.0.1:{port}/api/datasets", headers={"x-honeycomb-team": m.group(1)}, timeout=5)
            return [d["name"] for d in r.json()["datasets"] if d["count"] > 0] if r.status_code == 200 else []
        names = eventually(datasets, timeout=20, interval=0.5, what="apiary demo's data in the API")
        assert "backend-flask" in names
        assert time.monotonic() - started < 20
        out = (tmp_path / "demo.log").read_text()
        assert f"http://127.0.0.1:{port}/" in out and f"http://127.0.0.1:{frontend_port}/" in out
        assert "A first query to try" in out
        assert f"http://127.0.0.1:{port}/metrics?env=dev&dataset=backend-flask" in out  # the Metrics page
        assert httpx.get(f"http://127.0.0.1:{frontend_port}/", timeout=5).status_code == 200
        key = re.search(r"API key\s+(\S+)", out).group(1)

        def home_requests_counted() -> int:
            """backend-flask's http.server.duration histogram, as the Metrics page reads it: home requests counted."""
            headers = {"x-honeycomb-team": key}
            spec = {"time_range": 300, "calculations": [{"op": "INCREASE", "column": "http.server.duration.count"}],
                    "filters": [{"column": "http.server.duration.buckets", "op": "exists"},
                                {"column": "http.target", "op": "=", "value": "/api/activities/home"}]}
            q = httpx.post(f"http://127.0.0.1:{port}/1/queries/backend-flask", json=spec, headers=headers, timeout=10)
            if q.status_code != 200:  # the histogram's columns do not exist until its first export lands
                return 0
            r = httpx.post(f"http://127.0.0.1:{port}/1/query_results/backend-flask", json={"query_id": q.json()["id"]},
                           headers=headers, timeout=10)
            rows = r.json()["data"]["results"]
            return rows[0]["data"]["INCREASE(http.server.duration.count)"] or 0 if rows else 0
        assert eventually(home_requests_counted, timeout=15, interval=1, what="backend-flask's http.server.* metrics") > 0
        assert proc.wait(timeout=60) == 0, (tmp_path / "demo.log").read_text()
        for p in (port, backend_port, frontend_port):  # everything it started is gone
            with pytest.raises(httpx.ConnectError):
                httpx.get(f"http://127.0.0.1:{p}/", timeout=2)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        log.close()
