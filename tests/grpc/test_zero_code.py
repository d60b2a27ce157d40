"""A Flask app under ``opentelemetry-instrument``, exporters at their defaults (OTLP over gRPC), sends to Apiary.

What the Python distro (opentelemetry-distro) does by default: traces, metrics and logs exporters are all
``otlp`` and the protocol is ``grpc``. The Flask instrumentation records ``http.server.duration`` (a histogram,
ms) and ``http.server.active_requests`` (an up-down counter), exported every 60 s and at exit. Log records are
exported only for code that uses the OTel logs API: the standard ``logging`` module is bridged only with
OTEL_PYTHON_LOGGING_AUTO_INSTRUMENTATION_ENABLED=true, so with the defaults no ``logging`` line reaches Apiary;
the last test shows that one variable more brings them.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import boto3
import httpx
import pytest

from tests.grpc.conftest import GrpcApiary
from tests.server import free_port, instrument_launcher

APP = Path(__file__).with_name("plain_flask_app.py")
#: Only what the zero-code guides have a user set; every other OTEL_* variable is removed.
ENV = ("OTEL_SERVICE_NAME", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_HEADERS")


def _interruptible() -> None:
    """In the app, before it runs: Ctrl-C at its default, as in a terminal. A suite started in the background
    (``nohup``, ``cmd &`` in a script) inherits SIGINT ignored, and so would the app: it then never stops on
    `stop_app`'s Ctrl-C, and the test would wait out its deadline instead of checking what the exporters flush."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_app(apiary: GrpcApiary, extra: dict[str, str] | None = None) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(PORT=str(port), OTEL_SERVICE_NAME="backend-flask", OTEL_EXPORTER_OTLP_ENDPOINT=apiary.grpc_endpoint,
               OTEL_EXPORTER_OTLP_HEADERS=f"x-honeycomb-team={apiary.key}", **(extra or {}))
    proc = subprocess.Popen([*instrument_launcher(), sys.executable, str(APP)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, preexec_fn=_interruptible)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(base + "/health", timeout=1)
            return proc, base
        except httpx.HTTPError:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else "the app exited"
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("the instrumented app did not start")


def stop_app(proc: subprocess.Popen[bytes]) -> str:
    """Ctrl-C, as a user stops it (the SDK flushes its batches at exit; SIGTERM would skip that), and its stderr."""
    proc.send_signal(signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=90)  # a deadline, not a speed check: the exporters flush at exit
    except subprocess.TimeoutExpired:
        proc.kill()  # never left running for the rest of the session
        _, err = proc.communicate()
        raise AssertionError(f"the instrumented app did not exit within 90 s of Ctrl-C:\n{err.decode()}") from None
    return err.decode()


@pytest.fixture
def instrumented(grpc_apiary: GrpcApiary) -> Iterator[tuple[GrpcApiary, subprocess.Popen[bytes], str]]:
    proc, base = start_app(grpc_apiary)
    try:
        yield grpc_apiary, proc, base
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def log_messages(apiary: GrpcApiary) -> list[str]:
    logs = boto3.session.Session(aws_access_key_id=apiary.key, aws_secret_access_key=apiary.key,
                                 region_name="us-east-1").client("logs", endpoint_url=apiary.url)
    groups = [g["logGroupName"] for g in logs.describe_log_groups()["logGroups"]]
    return [e["message"] for g in groups for e in logs.filter_log_events(logGroupName=g)["events"]]


def test_default_exporters_send_spans_over_grpc(instrumented: tuple[GrpcApiary, subprocess.Popen[bytes], str]) -> None:
    apiary, proc, base = instrumented
    trace_id = secrets.token_hex(16)
    r = httpx.get(base + "/api/activities/home", headers={"traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"})
    assert r.status_code == 200
    err = stop_app(proc)  # the batch span processor exports at exit, or after its 5 s schedule
    assert "Failed to export" not in err, err  # traces, metrics and logs all reach a service that answers
    (span,) = apiary.trace(trace_id, 1)
    assert span["name"] == "GET /api/activities/home" and span["span.kind"] == "server"
    assert span["service.name"] == "backend-flask" and span["meta.dataset"] == "backend-flask"
    assert span["http.route"] == "/api/activities/home"
    assert span["library.name"] == "opentelemetry.instrumentation.flask"
    assert span["telemetry.auto.version"]  # set by opentelemetry-instrument's resource detector
    assert log_messages(apiary) == []  # the defaults bridge no `logging` records (see the module docstring)


def test_logging_bridge_sends_log_records_over_grpc(grpc_apiary: GrpcApiary) -> None:
    proc, base = start_app(grpc_apiary, {"OTEL_PYTHON_LOGGING_AUTO_INSTRUMENTATION_ENABLED": "true"})
    try:
        trace_id = secrets.token_hex(16)
        httpx.get(base + "/api/activities/home", headers={"traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"})
    finally:
        stop_app(proc)
    grpc_apiary.trace(trace_id, 1)
    deadline = time.monotonic() + 20
    while "HomeActivities: 3 results" not in (messages := log_messages(grpc_apiary)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert "HomeActivities: 3 results" in messages


def query(apiary: GrpcApiary, spec: dict[str, Any], before_first_export: bool = False) -> list[dict[str, Any]]:
    """A query of the last ten minutes of ``backend-flask`` through the Query Data API; its result rows.

    ``before_first_export``: no rows (rather than a failure) while the dataset does not exist yet.
    """
    now = int(time.time())
    headers = {"x-honeycomb-team": apiary.key}
    r = httpx.post(f"{apiary.url}/1/queries/backend-flask", headers=headers, timeout=30,
                   json={"start_time": now - 600, "end_time": now + 5, **spec})
    if before_first_export and r.status_code == 404:
        return []
    assert r.status_code == 200, r.text
    res = httpx.post(f"{apiary.url}/1/query_results/backend-flask", json={"query_id": r.json()["id"]},
                     headers=headers, timeout=30)
    assert res.status_code == 201, res.text
    return [row["data"] for row in res.json()["data"]["results"]]


def test_default_exporters_send_flask_http_server_metrics_over_grpc(grpc_apiary: GrpcApiary) -> None:
    # OTEL_METRIC_EXPORT_INTERVAL is not one a user sets: the default (60 s) would only make the test wait.
    proc, base = start_app(grpc_apiary, {"OTEL_METRIC_EXPORT_INTERVAL": "500"})
    try:
        trace_ids = [secrets.token_hex(16) for _ in range(3)]
        for trace_id in trace_ids:
            r = httpx.get(base + "/api/activities/home", headers={"traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"})
            assert r.status_code == 200
        # Cumulative histogram: the count of the home route's series reaches 3 in a periodic export, app still up.
        duration = {"calculations": [{"op": "INCREASE", "column": "http.server.duration.count"},
                                     {"op": "HISTOGRAM_P50", "column": "http.server.duration"},
                                     {"op": "MAX", "column": "http.server.duration.max"}],
                    "breakdowns": ["http.target", "http.method", "http.status_code"],
                    "filters": [{"column": "http.server.duration.buckets", "op": "exists"}]}
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            home = [row for row in query(grpc_apiary, duration, before_first_export=True) if row["http.target"] == "/api/activities/home"]
            if home and home[0]["INCREASE(http.server.duration.count)"] == 3:
                break
            time.sleep(0.5)
        assert home and home[0]["INCREASE(http.server.duration.count)"] == 3, home
        (row,) = home
        assert (row["http.method"], row["http.status_code"]) == ("GET", 200)
        assert row["HISTOGRAM_P50(http.server.duration)"] is not None
        assert 0 <= row["HISTOGRAM_P50(http.server.duration)"] <= row["MAX(http.server.duration.max)"] + 5
        assert proc.poll() is None  # sent by the periodic reader, not by the flush at exit
    finally:
        err = stop_app(proc)
    assert "Failed to export metrics" not in err, err

    instruments = query(grpc_apiary, {
        "breakdowns": ["meta.metric", "meta.metric.type", "meta.metric.unit", "meta.monotonic", "library.name"],
        "filters": [{"column": "meta.annotation_type", "op": "=", "value": "instrument"},
                    {"column": "meta.metric", "op": "starts-with", "value": "http.server."}]})
    by_name = {row["meta.metric"]: row for row in instruments}
    assert set(by_name) == {"http.server.duration", "http.server.active_requests"}
    assert (by_name["http.server.duration"]["meta.metric.type"], by_name["http.server.duration"]["meta.metric.unit"]) \
        == ("histogram", "ms")
    active = by_name["http.server.active_requests"]
    assert (active["meta.metric.type"], active["meta.monotonic"]) == ("sum", False)
    assert {row["library.name"] for row in instruments} == {"opentelemetry.instrumentation.flask"}
    # An up-down counter is a level: every request has ended, so the last value is 0, and RATE refuses to say.
    level = query(grpc_apiary, {"calculations": [{"op": "MIN", "column": "http.server.active_requests"},
                                                 {"op": "RATE", "column": "http.server.active_requests"}],
                                "filters": [{"column": "http.server.active_requests", "op": "exists"}]})
    assert level == [{"MIN(http.server.active_requests)": 0, "RATE(http.server.active_requests)": None}]
    # Each duration point links to the request's trace through an exemplar, and that trace is stored.
    exemplars = query(grpc_apiary, {"breakdowns": ["exemplar.trace_id"],
                                    "filters": [{"column": "meta.annotation_type", "op": "=", "value": "exemplar"},
                                                {"column": "meta.metric", "op": "=", "value": "http.server.duration"}]})
    linked = {row["exemplar.trace_id"] for row in exemplars}
    assert linked & set(trace_ids), linked
    grpc_apiary.trace(sorted(linked & set(trace_ids))[0], 1)
    assert log_messages(grpc_apiary) == []  # with the defaults, the app's `logging` warnings are not exported
