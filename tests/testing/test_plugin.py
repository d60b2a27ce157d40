"""The ``apiary`` fixture as a developer uses it: their Flask app, instrumented as the guides do, run with
``apiary.env``; assertions on what arrived over the real wire (OTLP/HTTP, the X-Ray daemon, CloudWatch
Logs, Rollbar), on DuckDB and on ClickHouse."""

from __future__ import annotations

from pathlib import Path

import pytest

from apiary.testing.server import EmbeddedApiary
from apiary.testing.telemetry import Telemetry, TelemetryNotFound
from tests.testing.app_process import TRACE_ID, call, running_app

HOME = "/api/activities/home"
SHAPE = {"backend-flask: GET /api/activities/home": {"backend-flask: home-activities-mock-data": {}},
         "backend-flask: backend-flask [x-ray segment]": {}}


def test_env_points_every_client_at_this_test_and_tags_the_run(apiary: Telemetry) -> None:
    env = apiary.environ("backend-flask")
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == apiary.url and env["OTEL_EXPORTER_OTLP_PROTOCOL"] == "http/protobuf"
    assert env["OTEL_EXPORTER_OTLP_HEADERS"] == f"x-honeycomb-team={apiary.key}"
    assert env["OTEL_SERVICE_NAME"] == "backend-flask" and "OTEL_SERVICE_NAME" not in apiary.env
    assert env["OTEL_RESOURCE_ATTRIBUTES"] == f"apiary.run={apiary.run}"
    assert env["AWS_ENDPOINT_URL"] == apiary.url and env["AWS_ACCESS_KEY_ID"] == apiary.key
    assert env["AWS_XRAY_DAEMON_ADDRESS"] == apiary.xray_daemon_address != "127.0.0.1:2000"
    assert env["ROLLBAR_ENDPOINT"] == f"{apiary.url}/api/1/" and env["ROLLBAR_ACCESS_TOKEN"] == apiary.key
    grpc = apiary.environ(protocol="grpc")
    assert grpc["OTEL_EXPORTER_OTLP_ENDPOINT"] == apiary.grpc_endpoint and grpc["OTEL_EXPORTER_OTLP_PROTOCOL"] == "grpc"


def test_home_feed_is_one_trace_across_otel_and_xray_with_its_log_line(apiary: Telemetry, tmp_path: Path) -> None:
    with running_app(apiary.environ("backend-flask"), tmp_path / "app.log") as base:
        assert call(base, HOME).status_code == 200
        span = apiary.span("name = home-activities-mock-data", **{"app.result_length": 3})
        assert span["service.name"] == "backend-flask" and span["apiary.run"] == apiary.run
        trace = apiary.trace(TRACE_ID, SHAPE)
        segment = trace.span("backend-flask: backend-flask [x-ray segment]")
        assert segment["http.status_code"] == 200
        [line] = apiary.logs("message starts-with GET /api/activities/home 200", group="app")
        assert line["trace_id"] == TRACE_ID
        apiary.assert_no_errors()
        [within] = apiary.assert_duration("name = home-activities-mock-data", max_ms=60_000)
        with pytest.raises(AssertionError, match=r"^1 of 1 spans over the 0.0001 ms bound:\n"
                                                 r"  backend-flask: home-activities-mock-data took \d+\.\d ms$"):
            apiary.assert_duration("name = home-activities-mock-data", max_ms=0.0001)


def test_an_uncaught_exception_is_a_rollbar_item_linked_to_the_trace(apiary: Telemetry, tmp_path: Path) -> None:
    with running_app(apiary.environ("backend-flask"), tmp_path / "app.log") as base:
        assert call(base, "/api/fail").status_code == 500
        [error] = apiary.errors("exception.class = RuntimeError")
        assert error["trace_id"] == TRACE_ID and error["exception.message"] == "the mock data is gone"
        apiary.trace(TRACE_ID, {"backend-flask: GET /api/fail": {}})
        with pytest.raises(AssertionError) as failed:
            apiary.assert_no_errors()
        assert "backend-flask: GET /api/fail" in str(failed.value)


def test_another_environment_sees_none_of_it(apiary: Telemetry, apiary_server: EmbeddedApiary, tmp_path: Path) -> None:
    tenant = apiary_server.tenant("neighbour")
    neighbour = Telemetry(apiary_server.url, apiary_server.grpc_endpoint, tenant.key, tenant.environment,
                          tenant.xray_port, apiary.run)
    try:
        with running_app(apiary.environ("backend-flask"), tmp_path / "app.log") as base:
            assert call(base, HOME).status_code == 200
            apiary.trace(TRACE_ID, SHAPE)
        with pytest.raises(TelemetryNotFound) as missing:
            neighbour.span(name="home-activities-mock-data", timeout=0.5)
        assert str(missing.value).endswith("nothing of that kind arrived at all in this test's environment")
    finally:
        neighbour.close()
        apiary_server.release(tenant)


def test_outside_pytest_serve_gives_the_same_object(monkeypatch: pytest.MonkeyPatch) -> None:
    """A script (or another test runner) uses ``with serve()``; here its env goes to an in-process SDK by monkeypatch."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    from apiary.testing import serve

    with serve(run="script-run") as telemetry:
        for name, value in telemetry.environ("script").items():
            monkeypatch.setenv(name, value)
        provider = TracerProvider()  # its resource reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        with provider.get_tracer("script").start_as_current_span("from-a-script"):
            pass
        provider.force_flush()
        span = telemetry.span(name="from-a-script")
        assert (span["service.name"], span["apiary.run"]) == ("script", "script-run")
        provider.shutdown()
