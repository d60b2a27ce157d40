"""Cruddur end to end: a real browser loads the home feed; Apiary holds the whole story of that click.

The ``apiary.testing`` plugin's server + backend-flask (OTel, X-Ray SDK, watchtower, pyrollbar, all
unchanged and pointed at it by ``apiary.env``) + the front end (OpenTelemetry web SDK) in headless Chromium.
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

from apiary.testing.telemetry import Telemetry, wait_for
from apiary.testing.traces import Trace
from tests.e2e.conftest import CRUDDUR, PARTS, REPO, Stack, backend_env, check_app, clean_env, require_frontend
from tests.server import free_port

FETCH = "frontend-react-js: GET"
FLASK = "backend-flask: GET /api/activities/home"
SEGMENT = "backend-flask: backend-flask [x-ray segment]"
#: browser page span > fetch > (Flask span > the guides' custom span) and X-Ray's segment of the same request
HOME_SHAPE = {"frontend-react-js: load-home-feed": {FETCH: {FLASK: {"backend-flask: home-activities-mock-data": {}},
                                                            SEGMENT: {}}}}


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
    assert f"Root=1-{m.group(1)[:8]}-{m.group(1)[8:]}" in headers.get("x-amzn-trace-id", ""), headers
    return m.group(1)


@pytest.fixture(scope="module")
def home_trace(stack: Stack, browser: Any) -> Trace:
    """One browser visit's trace, once the browser's, Flask's, the custom and X-Ray's spans are in, in their places."""
    from tests.conftest import ARTIFACTS

    ARTIFACTS.mkdir(exist_ok=True)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        trace_id = load_home_feed(stack, page, ARTIFACTS)
    finally:
        context.close()
    return stack.apiary.trace(trace_id, HOME_SHAPE, timeout=20)


def test_home_feed_click_is_one_trace_from_browser_to_mock_data(home_trace: Trace) -> None:
    flask = home_trace.span(FLASK)
    assert flask["http.route"] == "/api/activities/home" and flask["app.user_id"] == "worf"
    custom = home_trace.span("backend-flask: home-activities-mock-data")
    assert custom["app.result_length"] == 3 and custom["app.now"]
    # the network between browser and back end is visible: the fetch span covers the Flask span
    assert home_trace.span(FETCH)["duration_ms"] >= flask["duration_ms"]


def test_home_feed_trace_matches_its_snapshot(stack: Stack, home_trace: Trace) -> None:
    """Every span of the click in its place (tests/e2e/__snapshots__/test_cruddur/), ids and timings left out."""
    stack.apiary.assert_snapshot(home_trace, name="home-feed")


def test_xray_segment_of_the_same_request_is_in_the_trace(home_trace: Trace) -> None:
    segment = home_trace.span(SEGMENT)  # exactly one, under the browser's fetch span (HOME_SHAPE)
    assert segment["annotation.user_id"] == "worf" and segment["http.status_code"] == 200


def test_after_request_log_line_is_in_group_cruddur_linked_to_the_trace(stack: Stack, home_trace: Trace) -> None:
    import boto3

    trace_id = home_trace.trace_id
    [event] = stack.apiary.logs("message contains GET http /api/activities/home", group="cruddur", trace_id=trace_id,
                                timeout=20)
    assert re.match(r"\[\d{4}-\w{3}-\d{2} \d{2}:\d{2}\] 127\.0\.0\.1 GET http /api/activities/home\?? 200 OK", event["message"])

    # Apiary links the line to the trace in Logs Insights too: @traceId, through boto3
    logs = boto3.client("logs", endpoint_url=stack.apiary.url, region_name="us-east-1",
                        aws_access_key_id=stack.apiary.key, aws_secret_access_key=stack.apiary.key)
    query_id = logs.start_query(logGroupName="cruddur", startTime=int(time.time() - 600), endTime=int(time.time() + 60),
                                queryString=f'fields @message, @traceId | filter @traceId = "{trace_id}"')["queryId"]
    result, done = wait_for(lambda: logs.get_query_results(queryId=query_id), lambda r: r["status"] == "Complete", 10)
    rows = [{f["field"]: f["value"] for f in row} for row in result["results"]]
    assert done and any("GET http /api/activities/home" in r.get("@message", "") for r in rows), rows
    assert all(r.get("@traceId") == trace_id for r in rows if "@traceId" in r), rows
    assert any("HomeActivities" in r.get("@message", "") for r in rows), rows


def test_rollbar_test_route_gives_a_rollbar_item(stack: Stack) -> None:
    trace_id = secrets.token_hex(16)
    r = httpx.get(stack.backend + "/rollbar/test", headers={"traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"}, timeout=10)
    assert r.status_code == 200 and r.text == "Hello World!"
    [found] = stack.apiary.errors(title="Hello World!", timeout=15)
    assert (found["level"], found["environment"]) == ("warning", "production")
    assert found["trace_id"] in (trace_id, None)


def test_trace_view_screenshot(stack: Stack, home_trace: Trace, page: Any, artifacts: Path) -> None:
    page.goto(f"{stack.apiary.url}/trace/{home_trace.trace_id}")
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


def test_readme_commands_run_as_written(stack: Stack, home_trace: Trace) -> None:
    """Step 3's `aws xray create-group` / `create-sampling-rule`, the queries and the reads, against this Apiary."""
    commands = readme_commands()
    assert any("create-sampling-rule --cli-input-json file://aws/json/xray.json" in c for c in commands), commands
    assert sum(c.startswith("apiary query") for c in commands) >= 5, commands
    key, url = stack.apiary.key, stack.apiary.url
    env = clean_env(KEY=key, AWS_ACCESS_KEY_ID=key, AWS_SECRET_ACCESS_KEY=key, AWS_DEFAULT_REGION="us-east-1",
                    APIARY_URL=url, APIARY_KEY=key, PATH=os.environ.get("PATH", ""))
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env["PATH"]])
    import traffic  # examples/cruddur/traffic.py: the queries need something to group by

    traffic.run_traffic(stack.backend, requests=60, rate=0, seed=2, quiet=True)
    for column in ("app.user_id", "app.result_length", "http.route", "http.user_agent"):  # what the queries use
        stack.apiary.span(f"{column} exists", timeout=15)
    for command in commands:
        command = command.replace("http://127.0.0.1:4318", url)
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

@pytest.mark.parametrize("off", list(PARTS))
def test_switching_one_instrumentation_off_leaves_the_app_and_otel_working(off: str, apiary: Telemetry, tmp_path: Path) -> None:
    """The backend with one part off answers every route as before, and OTel and the others still report."""
    port = free_port()
    env = backend_env(apiary, f"http://127.0.0.1:{port}", "http://localhost:3000,http://127.0.0.1:3000", off)
    proc, base = check_app.start_backend(port, env, str(tmp_path / "backend.log"))
    try:
        health = httpx.get(base + "/api/health", timeout=5).json()["instrumentation"]
        assert health["otel"] is True and {part: health[part] for part in PARTS} == {p: p != off for p in PARTS}
        assert check_app.run_checks(base) == []
        apiary.span("app.result_length exists", **{"service.name": "backend-flask"}, timeout=15)
        reports = {"cloudwatch": lambda: apiary.logs(group="cruddur", timeout=15),
                   "xray": lambda: apiary.spans("xray.type exists", timeout=15),
                   "rollbar": lambda: apiary.errors(timeout=15)}
        for part, report in reports.items():
            if part != off:
                report()
    finally:
        check_app.stop_process(proc)


# --- apiary demo ---------------------------------------------------------------------------------------------------------

def test_apiary_demo_shows_data(tmp_path: Path) -> None:
    """The demo's first spans show within seconds on a quiet machine; the bound here is a failure deadline only
    (tests never judge wall-clock speed), wide enough for the suite's workers sharing two cores."""
    require_frontend()
    port, backend_port, frontend_port, xray_port = free_port(), free_port(), free_port(), free_port()
    cmd = [sys.executable, "-m", "apiary", "demo", "--data", str(tmp_path / "data"), "--port", str(port), "--duration", "25",
           "--backend-port", str(backend_port), "--frontend-port", str(frontend_port), "--xray-port", str(xray_port)]
    log = open(tmp_path / "demo.log", "w+")
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
        names, _ = wait_for(datasets, bool, 90)
        assert "backend-flask" in names
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
        assert wait_for(home_requests_counted, bool, 45)[0] > 0, "backend-flask's http.server.* metrics"
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
