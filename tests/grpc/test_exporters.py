"""The OpenTelemetry SDK's own gRPC exporters land traces and logs, on DuckDB and on ClickHouse."""

from __future__ import annotations

import logging
from typing import Any

import boto3
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from tests.grpc.conftest import GrpcApiary

#: Columns whose values differ between two sends of the same spans; their types must still match.
_PER_SEND = {"trace.trace_id", "trace.span_id", "trace.parent_id", "timestamp", "duration_ms", "service.name",
             "meta.dataset", "service.instance.id", "trace.link.trace_id", "trace.link.span_id"}


def send_trace(exporter: SpanExporter, service: str) -> str:
    """One request's trace as an instrumented app makes it: a server span, a child with an event, an error, a link."""
    provider = TracerProvider(resource=Resource.create({"service.name": service, "deployment.environment": "test",
                                                        "host.cores": 2}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("cruddur.home", "1.2.3")
    with tracer.start_as_current_span("GET /api/activities/home", kind=SpanKind.SERVER) as root:
        root.set_attributes({"http.method": "GET", "http.status_code": 200, "http.route": "/api/activities/home",
                             "app.ratio": 0.25, "app.cached": True, "app.handles": ["andrewbrown", "worf"]})
        with tracer.start_as_current_span("home-activities-mock-data",
                                          links=[Link(root.get_span_context(), {"link.kind": "follows"})]) as child:
            child.set_attribute("app.result_length", 3)
            child.add_event("mock data loaded", {"app.rows": 3})
            child.set_status(Status(StatusCode.ERROR, "boom"))
        trace_id = f"{root.get_span_context().trace_id:032x}"
    provider.shutdown()
    return trace_id


def shape(rows: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """Each row's columns with their types (and values where a second send must give the same)."""
    out = {}
    for row in rows:
        for nested in ("events", "links"):
            for sub in row.pop(nested, []):
                out[(row["name"], f"{nested}:{sub['name']}")] = _typed(sub)
        out[(row["name"], "span")] = _typed(row)
    return out


def _typed(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (type(v).__name__, None if k in _PER_SEND else v) for k, v in row.items()}


def test_grpc_and_http_exporters_store_the_same_columns_and_types(grpc_apiary: GrpcApiary) -> None:
    headers = {"x-honeycomb-team": grpc_apiary.key}
    via_grpc = send_trace(GrpcSpanExporter(endpoint=grpc_apiary.grpc_endpoint, headers=headers), "home-grpc")
    via_http = send_trace(HttpSpanExporter(endpoint=f"{grpc_apiary.url}/v1/traces", headers=headers), "home-http")

    grpc_rows = grpc_apiary.trace(via_grpc, 2)
    http_rows = grpc_apiary.trace(via_http, 2)
    assert {r["service.name"] for r in grpc_rows} == {"home-grpc"}
    assert shape(grpc_rows) == shape(http_rows)
    child = next(r for r in grpc_apiary.trace(via_grpc, 2) if r["name"] == "home-activities-mock-data")
    assert child["app.result_length"] == 3 and child["error"] is True and child["status_message"] == "boom"
    assert [e["name"] for e in child["events"]] == ["mock data loaded"]

    def columns(dataset: str) -> dict[str, str]:
        r = grpc_apiary.get(f"/1/columns/{dataset}")
        assert r.status_code == 200, r.text
        return {c["key_name"]: c["type"] for c in r.json()}

    grpc_columns = columns("home-grpc")
    assert grpc_columns == columns("home-http")
    assert grpc_columns["http.status_code"] == "integer" and grpc_columns["app.ratio"] == "float"
    assert grpc_columns["app.cached"] == "boolean" and grpc_columns["host.cores"] == "integer"
    assert grpc_apiary.counts() == {"home-grpc": 4, "home-http": 4}  # two spans, a span event, a link each


def test_grpc_log_exporter_lands_in_the_log_store(grpc_apiary: GrpcApiary) -> None:
    provider = LoggerProvider(resource=Resource.create({"service.name": "backend-flask", "host.name": "laptop"}))
    provider.add_log_record_processor(SimpleLogRecordProcessor(OTLPLogExporter(
        endpoint=grpc_apiary.grpc_endpoint, headers={"x-honeycomb-team": grpc_apiary.key})))
    logger = logging.getLogger("tests.grpc.logs")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    handler = LoggingHandler(logger_provider=provider)
    logger.addHandler(handler)
    tracer = TracerProvider().get_tracer("t")
    try:
        with tracer.start_as_current_span("request") as span:
            trace_id = f"{span.get_span_context().trace_id:032x}"
            for i in range(3):
                logger.warning("HomeActivities %d", i)
    finally:
        logger.removeHandler(handler)
        provider.shutdown()

    session = boto3.session.Session(aws_access_key_id=grpc_apiary.key, aws_secret_access_key=grpc_apiary.key,
                                    region_name="us-east-1")
    logs = session.client("logs", endpoint_url=grpc_apiary.url)
    events = logs.get_log_events(logGroupName="backend-flask", logStreamName="laptop", startFromHead=True)["events"]
    assert [e["message"] for e in events] == [f"HomeActivities {i}" for i in range(3)]
    q = logs.start_query(logGroupName="backend-flask", startTime=0, endTime=2_000_000_000,
                         queryString="fields @traceId, @severity | sort @timestamp asc")
    while (r := logs.get_query_results(queryId=q["queryId"]))["status"] == "Running":
        pass
    rows = [{f["field"]: f["value"] for f in row} for row in r["results"]]
    assert [row["@traceId"] for row in rows] == [trace_id] * 3
    assert {row["@severity"] for row in rows} == {"WARN"}
    other = session.client("logs", endpoint_url=grpc_apiary.url, aws_access_key_id=grpc_apiary.keys["staging"],
                           aws_secret_access_key=grpc_apiary.keys["staging"])
    assert other.describe_log_groups()["logGroups"] == []
