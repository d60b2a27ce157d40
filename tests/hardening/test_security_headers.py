"""Security headers on every kind of response: OTLP, AWS, Rollbar, UI pages, static files, errors."""

from __future__ import annotations

from typing import Any

import boto3
import httpx
import pytest
from botocore.exceptions import ClientError

from tests.hardening.conftest import Start, Served

UI_POLICY = "frame-ancestors 'none'"


@pytest.fixture
def served(start: Start) -> Served:
    return start("duckdb", {"dev": False})


def _assert_secured(headers: Any, what: str) -> None:
    lower = {k.lower(): v for k, v in dict(headers).items()}
    assert lower.get("x-content-type-options") == "nosniff", what
    assert lower.get("x-frame-options") == "DENY", what
    assert UI_POLICY in lower.get("content-security-policy", ""), what


def test_otlp_rollbar_ui_static_and_error_responses_carry_the_headers(served: Served) -> None:
    key = served.keys["dev"]
    samples = [
        ("POST", "/v1/traces", {"content-type": "application/x-protobuf", "x-honeycomb-team": key}, b"", 200),
        ("POST", "/v1/traces", {"content-type": "text/plain", "x-honeycomb-team": key}, b"x", 415),
        ("POST", "/v1/logs", {"content-type": "application/x-protobuf", "x-honeycomb-team": "nope"}, b"", 401),
        ("POST", "/api/1/item/", {"content-type": "application/json", "X-Rollbar-Access-Token": "nope"}, b"{}", 401),
        ("GET", "/", {}, b"", 200),
        ("GET", "/trace/0123456789abcdef0123456789abcdef", {}, b"", 200),
        ("GET", "/ui/static/index.html", {}, b"", 200),
        ("GET", "/ui/static/app.css", {}, b"", 200),
        ("GET", "/ui/static/js/app.js", {}, b"", 200),
        ("GET", "/ui/api/config", {}, b"", 200),
        ("GET", "/no/such/page", {}, b"", 404),
        ("DELETE", "/v1/traces", {}, b"", 405),
    ]
    for method, path, headers, body, status in samples:
        r = httpx.request(method, f"{served.url}{path}", headers=headers, content=body, timeout=30)
        assert r.status_code == status, (method, path, r.status_code, r.text[:200])
        _assert_secured(r.headers, f"{method} {path}")


def test_aws_responses_to_boto3_carry_the_headers(served: Served) -> None:
    seen: list[tuple[str, Any]] = []

    def keep(http_response: Any, model: Any, **_: Any) -> None:
        seen.append((model.name, http_response.headers))

    key = served.keys["dev"]
    session = boto3.session.Session(aws_access_key_id=key, aws_secret_access_key=key, region_name="us-east-1")
    logs = session.client("logs", endpoint_url=served.url)
    xray = session.client("xray", endpoint_url=served.url)
    for client in (logs, xray):
        client.meta.events.register("after-call", keep)
    logs.describe_log_groups()
    with pytest.raises(ClientError):
        logs.get_log_events(logGroupName="missing", logStreamName="missing")
    xray.get_trace_summaries(StartTime=0, EndTime=60)
    assert [name for name, _ in seen] == ["DescribeLogGroups", "GetLogEvents", "GetTraceSummaries"]
    for name, headers in seen:
        _assert_secured(headers, name)
