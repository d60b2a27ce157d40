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

import secrets
import subprocess
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from apiary.testing.telemetry import Telemetry, wait_for
from tests.e2e.conftest import check_app
from tests.server import free_port, instrument_launcher
from tests.stores import STORES, embedded_per_store

HOME = "/api/activities/home"


@pytest.fixture(scope="module", params=STORES)
def apiary_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """The plugin's server once per store (its OTLP/gRPC port is what the backend reports to)."""
    yield from embedded_per_store(request, tmp_path_factory)


def run_backend(apiary: Telemetry, log: Path, extra: dict[str, str] | None = None) -> tuple[subprocess.Popen[bytes], str]:
    """Cruddur's backend under opentelemetry-instrument with the three variables a user sets, taken from
    ``apiary.env`` for gRPC (every other OTEL_*, AWS_*, CRUDDUR_* and ROLLBAR_* variable left out, so X-Ray,
    CloudWatch and Rollbar stay off)."""
    given = apiary.environ("backend-flask", protocol="grpc")
    env = {k: given[k] for k in ("OTEL_SERVICE_NAME", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_HEADERS")}
    # Not one a user sets: the default (60 s) would only make the test wait for the periodic export.
    env.update(OTEL_METRIC_EXPORT_INTERVAL="500", **(extra or {}))
    return check_app.start_backend(free_port(), env, str(log), launcher=instrument_launcher())


def get_home(base: str, user: str = "worf") -> str:
    """One home-feed request carrying a new trace; its trace id."""
    trace_id = secrets.token_hex(16)
    r = httpx.get(base + HOME, headers={"traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01", "X-Cruddur-User": user},
                  timeout=10)
    assert r.status_code == 200 and len(r.json()) == 3, r.text
    return trace_id


def test_defaults_bring_spans_and_http_server_metrics_but_no_log_records(apiary: Telemetry, tmp_path: Path) -> None:
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
            rows = [r for r in apiary.reader.query(duration) if r["http.target"] == HOME]
            return rows if rows and rows[0]["INCREASE(http.server.duration.count)"] == 3 else []
        rows, _ = wait_for(counted, bool, 30)
        [row] = rows or [None]
        assert row, "INCREASE(http.server.duration.count) = 3 for the home route"
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
        trace = apiary.trace(trace_id, {f"backend-flask: GET {HOME}": {"backend-flask: home-activities-mock-data": {}}})
        server = trace.span(f"backend-flask: GET {HOME}")
        assert server["library.name"] == "opentelemetry.instrumentation.flask" and server["span.kind"] == "server"
        assert server["http.route"] == HOME and server["telemetry.auto.version"]  # the resource opentelemetry-instrument builds
        assert trace.span("home-activities-mock-data")["app.result_length"] == 3
        assert len(trace) == 2, trace.render()
    assert server["app.user_id"] == "worf"  # the challenge's attribute, set by app.py on the current span

    instruments = apiary.reader.query({"breakdowns": ["meta.metric", "meta.metric.type", "meta.metric.unit"],
                                       "filters": [{"column": "meta.annotation_type", "op": "=", "value": "instrument"},
                                                   {"column": "meta.metric", "op": "starts-with", "value": "http.server."}]})
    assert {(r["meta.metric"], r["meta.metric.type"], r["meta.metric.unit"]) for r in instruments} == {
        ("http.server.duration", "histogram", "ms"), ("http.server.active_requests", "sum", "requests")}

    # Logs: with the defaults no `logging` record is exported, not even after the flush at exit.
    assert apiary.reader.logs() == []


def test_logging_auto_instrumentation_variable_brings_cruddur_log_records(apiary: Telemetry, tmp_path: Path) -> None:
    log = tmp_path / "backend-flask.log"
    proc, base = run_backend(apiary, log, {"OTEL_PYTHON_LOGGING_AUTO_INSTRUMENTATION_ENABLED": "true"})
    try:
        trace_id = get_home(base)
    finally:
        check_app.stop_process(proc)
    assert "Failed to export" not in log.read_text(), log.read_text()
    # HomeActivities' logger.info and the guides' after_request line, both in the request's trace, in the
    # log group named by the resource's service.name
    apiary.logs("message = HomeActivities", trace_id=trace_id, group="backend-flask", timeout=20)
    apiary.logs(f"message contains GET http {HOME}? 200 OK", trace_id=trace_id, group="backend-flask")
    assert {line["group"] for line in apiary.reader.logs()} == {"backend-flask"}
