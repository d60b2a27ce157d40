"""A Flask app instrumented as the guides show sends its spans to Apiary instead of Honeycomb."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from tests.ingest.shared_server import environment as apiary, module_server  # noqa: F401 - fixtures
from tests.server import ApiaryProcess, free_port

APP = Path(__file__).with_name("flask_app.py")


def start_app(apiary: ApiaryProcess, protocol: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {
        **os.environ,
        "PORT": str(port),
        "OTEL_EXPORTER_OTLP_ENDPOINT": apiary.url,
        "OTEL_EXPORTER_OTLP_HEADERS": f"x-honeycomb-team={apiary.key}",
        "OTEL_SERVICE_NAME": "backend-flask",
        "OTEL_BSP_SCHEDULE_DELAY": "200",
        "OTLP_PROTOCOL": protocol,
        "PYTHONPATH": str(APP.parent),
    }
    proc = subprocess.Popen([sys.executable, str(APP)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(base + "/flush", timeout=1)
            return proc, base
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(proc.stderr.read().decode() if proc.stderr else "app did not start")


@pytest.fixture(params=["protobuf", "json"])
def flask_app(request: pytest.FixtureRequest, apiary: ApiaryProcess) -> Iterator[str]:
    proc, base = start_app(apiary, request.param)
    try:
        yield base
    finally:
        proc.terminate()
        proc.wait(10)


def fetch_trace(apiary: ApiaryProcess, trace_id: str, expect_spans: int, timeout: float = 20) -> dict[str, Any]:
    """Poll until the trace has ``expect_spans`` spans (the SDK exports in the background)."""
    deadline = time.monotonic() + timeout
    doc: dict[str, Any] = {}
    while time.monotonic() < deadline:
        r = httpx.get(f"{apiary.url}/api/traces/{trace_id}", headers={"x-honeycomb-team": apiary.key})
        if r.status_code == 200:
            doc = r.json()
            if len(doc["spans"]) >= expect_spans:
                return doc
        time.sleep(0.2)
    raise AssertionError(f"trace {trace_id} has {len(doc.get('spans', []))} spans, expected {expect_spans}")


def traceparent() -> tuple[str, str]:
    trace_id = secrets.token_hex(16)
    return trace_id, f"00-{trace_id}-{secrets.token_hex(8)}-01"


def test_every_span_lands_with_attributes_and_parents(apiary: ApiaryProcess, flask_app: str) -> None:
    trace_id, header = traceparent()
    r = httpx.get(flask_app + "/api/activities/home?user=user7", headers={"traceparent": header})
    assert r.status_code == 200
    httpx.get(flask_app + "/flush")
    doc = fetch_trace(apiary, trace_id, 2)
    spans = {s["name"]: s for s in doc["spans"]}
    assert set(spans) == {"GET /api/activities/home", "home-activities-mock-data"}
    server, custom = spans["GET /api/activities/home"], spans["home-activities-mock-data"]
    assert server["service.name"] == custom["service.name"] == "backend-flask"
    assert server["meta.dataset"] == "backend-flask"
    assert server["span.kind"] == "server"
    assert server["http.method"] == "GET"
    assert server["http.route"] == "/api/activities/home"
    assert server["http.status_code"] == 200
    assert custom["trace.parent_id"] == server["trace.span_id"]
    assert custom["app.result_length"] == 3 and isinstance(custom["app.result_length"], int)
    assert custom["app.user_id"] == "user7"
    assert custom["app.now"].startswith(time.strftime("%Y-"))
    assert custom["library.name"] == "__main__"  # trace.get_tracer(__name__) in a script
    assert server["library.name"] == "opentelemetry.instrumentation.flask"
    assert 0 <= custom["duration_ms"] <= server["duration_ms"]
    assert [e["name"] for e in custom["events"]] == ["mock data loaded"]
    event = custom["events"][0]
    assert event["meta.annotation_type"] == "span_event"
    assert event["trace.parent_id"] == custom["trace.span_id"]
    assert event["app.rows"] == 3
    assert server["telemetry.sdk.language"] == "python"


def test_requests_instrumentor_joins_the_trace(apiary: ApiaryProcess, flask_app: str) -> None:
    trace_id, header = traceparent()
    assert httpx.get(flask_app + "/api/chain", headers={"traceparent": header}).status_code == 200
    httpx.get(flask_app + "/flush")
    doc = fetch_trace(apiary, trace_id, 4)
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for s in doc["spans"]:
        by_kind.setdefault(s["span.kind"], []).append(s)
    (client,) = by_kind["client"]
    outer, inner = sorted(by_kind["server"], key=lambda s: s["timestamp"])
    assert client["trace.parent_id"] == outer["trace.span_id"]
    assert inner["trace.parent_id"] == client["trace.span_id"]
    assert client["http.status_code"] == 200


def test_columns_api_lists_typed_columns(apiary: ApiaryProcess, flask_app: str) -> None:
    trace_id, header = traceparent()
    httpx.get(flask_app + "/api/activities/home", headers={"traceparent": header})
    httpx.get(flask_app + "/flush")
    fetch_trace(apiary, trace_id, 2)
    r = httpx.get(f"{apiary.url}/1/columns/backend-flask", headers={"X-Honeycomb-Team": apiary.key})
    assert r.status_code == 200
    types = {c["key_name"]: c["type"] for c in r.json()}
    assert types["app.result_length"] == "integer"
    assert types["duration_ms"] == "float"
    assert types["http.route"] == "string"
    assert types["error"] == "boolean"
    one = httpx.get(f"{apiary.url}/1/columns/backend-flask", params={"key_name": "app.now"},
                    headers={"X-Honeycomb-Team": apiary.key}).json()
    assert one["key_name"] == "app.now" and one["type"] == "string"
    missing = httpx.get(f"{apiary.url}/1/columns/no-such-dataset", headers={"X-Honeycomb-Team": apiary.key})
    assert missing.status_code == 404 and "no-such-dataset" in missing.json()["error"]


def test_apiary_trace_prints_the_tree(apiary: ApiaryProcess, flask_app: str) -> None:
    trace_id, header = traceparent()
    httpx.get(flask_app + "/api/activities/home", headers={"traceparent": header})
    httpx.get(flask_app + "/flush")
    fetch_trace(apiary, trace_id, 2)
    out = subprocess.run([sys.executable, "-m", "apiary", "trace", trace_id, "--url", apiary.url, "--key", apiary.key],
                         capture_output=True, text=True, check=True).stdout
    lines = out.splitlines()
    assert lines[0].startswith(f"trace {trace_id}")
    root = next(line for line in lines if "GET /api/activities/home" in line)
    child = next(line for line in lines if "home-activities-mock-data" in line)
    indent = lambda line: len(line.split("ms", 1)[1]) - len(line.split("ms", 1)[1].lstrip())  # noqa: E731
    assert indent(child) > indent(root)
