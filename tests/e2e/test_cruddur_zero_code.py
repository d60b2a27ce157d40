"""The Cruddur backend under ``opentelemetry-instrument``, exporters at their defaults, reports to Apiary's gRPC port.

A user sets only OTEL_SERVICE_NAME, OTEL_EXPORTER_OTLP_ENDPOINT (Apiary's OTLP/gRPC address) and
OTEL_EXPORTER_OTLP_HEADERS. The Python distro (opentelemetry-distro) then makes the traces, metrics and logs
exporters ``otlp`` over ``grpc``; app.py sees the distro's SDK providers and leaves its own set-up (the
guides' OTLP/HTTP ``TracerProvider``, ``FlaskInstrumentor``) aside, so each request is one Flask span, not two.

What the defaults bring: the spans (with the guides' ``home-activities-mock-data`` span) and Flask's
``http.server.duration`` / ``http.server.active_requests`` metrics, but no log records. The SDK installs its
``LoggingHandler`` on the root logger only when OTEL_PYTHON_LOGGING_AUTO_INSTRUMENTATION_ENABLED is ``true``
(``opentelemetry.sdk._configuration._initialize_components``; the logs exporter is set up either way, and
nothing else in the app writes through the OTel logs API). The second test sets that one variable and finds
Cruddur's ``logging`` lines, linked to their request's trace.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import boto3
import httpx
import pytest

from tests.e2e.conftest import check_app, eventually
from tests.grpc.conftest import STORES, GrpcApiary, start_grpc_apiary, stop_grpc_apiary
from tests.server import free_port

HOME = "/api/activities/home"


def instrument_launcher() -> list[str]:
    """``opentelemetry-instrument`` run by this interpreter: the venv's script may carry another venv's #!."""
    script = Path(sys.executable).parent / "opentelemetry-instrument"
    if not script.exists():
        found = shutil.which("opentelemetry-instrument")
        if found is None:
            pytest.skip("opentelemetry-instrument is not installed (pip install opentelemetry-distro)")
        script = Path(found)
    return [sys.executable, str(script)]


@pytest.fixture(scope="module", params=STORES)
def apiary(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GrpcApiary]:
    """One server with its OTLP/gRPC port per store, shared by both runs of the backend."""
    proc, url = start_grpc_apiary(tmp_path_factory.mktemp(f"zero-code-{request.param}"), request.param, envs=("dev",))
    try:
        yield proc
    finally:
        stop_grpc_apiary(proc, url)


def run_backend(apiary: GrpcApiary, log: Path, extra: dict[str, str] | None = None) -> tuple[subprocess.Popen[bytes], str]:
    """Cruddur's backend under opentelemetry-instrument with the three variables a user sets (every other
    OTEL_*, AWS_XRAY*, CRUDDUR_* and ROLLBAR_* variable removed, so X-Ray, CloudWatch and Rollbar stay off)."""
    env = {"OTEL_SERVICE_NAME": "backend-flask", "OTEL_EXPORTER_OTLP_ENDPOINT": apiary.grpc_endpoint,
           "OTEL_EXPORTER_OTLP_HEADERS": f"x-honeycomb-team={apiary.key}",
           # Not one a user sets: the default (60 s) would only make the test wait for the periodic export.
           "OTEL_METRIC_EXPORT_INTERVAL": "500", **(extra or {})}
    return check_app.start_backend(free_port(), env, str(log), launcher=instrument_launcher())


def get_home(base: str, user: str = "worf") -> str:
    """One home-feed request carrying a new trace; its trace id."""
    trace_id = secrets.token_hex(16)
    r = httpx.get(base + HOME, headers={"traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01", "X-Cruddur-User": user},
                  timeout=10)
    assert r.status_code == 200 and len(r.json()) == 3, r.text
    return trace_id


def query(apiary: GrpcApiary, spec: dict[str, Any], since: float) -> list[dict[str, Any]]:
    """The Query Data API's result rows for ``backend-flask`` from ``since`` on (none while the dataset is missing)."""
    headers = {"x-honeycomb-team": apiary.key}
    r = httpx.post(f"{apiary.url}/1/queries/backend-flask", headers=headers, timeout=30,
                   json={"start_time": int(since) - 5, "end_time": int(time.time()) + 5, **spec})
    if r.status_code == 404:
        return []
    assert r.status_code == 200, r.text
    res = httpx.post(f"{apiary.url}/1/query_results/backend-flask", json={"query_id": r.json()["id"]},
                     headers=headers, timeout=30)
    assert res.status_code == 201, res.text
    return [row["data"] for row in res.json()["data"]["results"]]


def logs_client(apiary: GrpcApiary) -> Any:
    return boto3.session.Session(aws_access_key_id=apiary.key, aws_secret_access_key=apiary.key,
                                 region_name="us-east-1").client("logs", endpoint_url=apiary.url)


def messages_of_trace(apiary: GrpcApiary, trace_id: str) -> list[str]:
    """Logs Insights over every log group: the messages linked to ``trace_id``."""
    logs = logs_client(apiary)
    groups = [g["logGroupName"] for g in logs.describe_log_groups()["logGroups"]]
    if not groups:
        return []
    query_id = logs.start_query(logGroupNames=groups, startTime=int(time.time() - 600), endTime=int(time.time() + 60),
                                queryString=f'fields @message | filter @traceId = "{trace_id}"')["queryId"]

    def done() -> list[Any] | None:
        r = logs.get_query_results(queryId=query_id)
        return r["results"] if r["status"] == "Complete" else None
    rows = eventually(done, timeout=10, what="the Logs Insights query") or []
    return [f["value"] for row in rows for f in row if f["field"] == "@message"]


def test_defaults_bring_spans_and_http_server_metrics_but_no_log_records(apiary: GrpcApiary, tmp_path: Path) -> None:
    started = time.time()
    log = tmp_path / "backend-flask.log"
    proc, base = run_backend(apiary, log)
    try:
        trace_ids = [get_home(base, user) for user in ("worf", "garek", "worf")]
        # Metrics: Flask's duration histogram counts the three home requests in a periodic export, app still up.
        duration = {"calculations": [{"op": "INCREASE", "column": "http.server.duration.count"},
                                     {"op": "HISTOGRAM_P50", "column": "http.server.duration"}],
                    "breakdowns": ["http.target", "http.method", "http.status_code"],
                    "filters": [{"column": "http.server.duration.buckets", "op": "exists"}]}

        def counted() -> list[dict[str, Any]]:
            rows = [r for r in query(apiary, duration, started) if r["http.target"] == HOME]
            return rows if rows and rows[0]["INCREASE(http.server.duration.count)"] == 3 else []
        [row] = eventually(counted, timeout=30, interval=0.5, what="INCREASE(http.server.duration.count) = 3 for the home route")
        assert (row["http.method"], row["http.status_code"]) == ("GET", 200)
        assert row["HISTOGRAM_P50(http.server.duration)"] is not None
        assert proc.poll() is None  # sent by the periodic reader, not by the flush at exit
    finally:
        check_app.stop_process(proc)  # SIGTERM: app.py exits normally, the SDK flushes spans and logs at exit
    output = log.read_text()
    assert "Failed to export" not in output, output
    # app.py leaves the distro's providers and instrumentation alone, so nothing is set up twice
    assert "Overriding of current TracerProvider" not in output and "already instrumented" not in output, output

    # Spans: per request one Flask server span and the guides' custom span under it, from the distro's provider.
    for trace_id in trace_ids:
        spans = apiary.trace(trace_id, 2)
        [server] = [s for s in spans if s.get("library.name") == "opentelemetry.instrumentation.flask"]
        assert server["name"] == f"GET {HOME}" and server["span.kind"] == "server", spans
        assert server["http.route"] == HOME and server["service.name"] == "backend-flask"
        assert server["telemetry.auto.version"]  # the resource opentelemetry-instrument builds
        [custom] = [s for s in spans if s["name"] == "home-activities-mock-data"]
        assert custom["app.result_length"] == 3 and custom["trace.parent_id"] == server["trace.span_id"]
        assert len(spans) == 2, spans
    assert server["app.user_id"] == "worf"  # the challenge's attribute, set by app.py on the current span

    instruments = query(apiary, {"breakdowns": ["meta.metric", "meta.metric.type", "meta.metric.unit"],
                                 "filters": [{"column": "meta.annotation_type", "op": "=", "value": "instrument"},
                                             {"column": "meta.metric", "op": "starts-with", "value": "http.server."}]},
                        started)
    assert {(r["meta.metric"], r["meta.metric.type"], r["meta.metric.unit"]) for r in instruments} == {
        ("http.server.duration", "histogram", "ms"), ("http.server.active_requests", "sum", "requests")}

    # Logs: with the defaults no `logging` record is exported, not even after the flush at exit.
    assert all(messages_of_trace(apiary, t) == [] for t in trace_ids)
    assert "backend-flask" not in [g["logGroupName"] for g in logs_client(apiary).describe_log_groups()["logGroups"]]


def test_logging_auto_instrumentation_variable_brings_cruddur_log_records(apiary: GrpcApiary, tmp_path: Path) -> None:
    log = tmp_path / "backend-flask.log"
    proc, base = run_backend(apiary, log, {"OTEL_PYTHON_LOGGING_AUTO_INSTRUMENTATION_ENABLED": "true"})
    try:
        trace_id = get_home(base)
    finally:
        check_app.stop_process(proc)
    assert "Failed to export" not in log.read_text(), log.read_text()

    def linked() -> list[str]:
        found = messages_of_trace(apiary, trace_id)
        return found if len(found) >= 2 else []
    messages = eventually(linked, timeout=20, interval=0.5, what="Cruddur's log records of the request")
    # HomeActivities' logger.info and the guides' after_request line, both in the request's trace
    assert "HomeActivities" in messages, messages
    assert any(f"GET http {HOME}? 200 OK" in m for m in messages), messages
    groups = [g["logGroupName"] for g in logs_client(apiary).describe_log_groups()["logGroups"]]
    assert groups == ["backend-flask"]  # the group is the resource's service.name
