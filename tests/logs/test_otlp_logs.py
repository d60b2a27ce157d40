"""OTLP logs from the real OpenTelemetry SDK exporter land in the log store, tied to their traces."""

from __future__ import annotations

import logging
from typing import Any

import httpx
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

from tests.stores import Tenant


def test_sdk_log_exporter_lands_with_trace_ids(aws_env: Tenant, logs: Any) -> None:
    provider = LoggerProvider(resource=Resource.create({"service.name": "backend-flask", "host.name": "laptop"}))
    exporter = OTLPLogExporter(endpoint=f"{aws_env.url}/v1/logs", headers={"x-honeycomb-team": aws_env.key})
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    logger = logging.getLogger("otlp.test")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    handler = LoggingHandler(logger_provider=provider)
    logger.addHandler(handler)
    tracer = TracerProvider().get_tracer("t")
    trace_ids = []
    try:
        for i in range(3):
            with tracer.start_as_current_span(f"req {i}") as span:
                trace_ids.append(format(span.get_span_context().trace_id, "032x"))
                logger.warning("HomeActivities %d", i)
    finally:
        logger.removeHandler(handler)
        provider.shutdown()

    assert [g["logGroupName"] for g in logs.describe_log_groups()["logGroups"]] == ["backend-flask"]
    events = logs.get_log_events(logGroupName="backend-flask", logStreamName="laptop", startFromHead=True)["events"]
    assert [e["message"] for e in events] == [f"HomeActivities {i}" for i in range(3)]
    q = logs.start_query(logGroupName="backend-flask", startTime=0, endTime=2_000_000_000,
                         queryString="fields @message, `otel.scope.name` as scope | sort @timestamp asc")
    while (r := logs.get_query_results(queryId=q["queryId"]))["status"] == "Running":
        pass
    assert [next(f["value"] for f in row if f["field"] == "@message") for row in r["results"]] == \
        [f"HomeActivities {i}" for i in range(3)]
    found = httpx.post(f"{aws_env.url}/v1/logs", content=b"{", headers={
        "content-type": "application/json", "x-honeycomb-team": aws_env.key})
    assert found.status_code == 400 and "JSON" in found.json()["message"]
    bad_key = httpx.post(f"{aws_env.url}/v1/logs", content=b"", headers={
        "content-type": "application/x-protobuf", "x-honeycomb-team": "nope"})
    assert bad_key.status_code == 401
    q = logs.start_query(logGroupName="backend-flask", startTime=0, endTime=2_000_000_000,
                         queryString="fields @traceId, @severity | sort @timestamp asc")
    while (r := logs.get_query_results(queryId=q["queryId"]))["status"] == "Running":
        pass
    rows = [{f["field"]: f["value"] for f in row} for row in r["results"]]
    assert [row["@traceId"] for row in rows] == trace_ids
    assert {row["@severity"] for row in rows} == {"WARN"}
    q = logs.start_query(logGroupName="backend-flask", startTime=0, endTime=2_000_000_000,
                         queryString="stats count(*) as n by @logStream")
    while (r := logs.get_query_results(queryId=q["queryId"]))["status"] == "Running":
        pass
    assert r["results"] == [[{"field": "@logStream", "value": "laptop"}, {"field": "n", "value": "3"}]]
