"""An ingest-only key with the real clients: it sends, and every read, delete or configuration call is refused in
the client's own exception, with nothing removed. On DuckDB and on ClickHouse (chdb)."""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

import boto3
import pytest
import watchtower
from botocore.config import Config
from botocore.exceptions import ClientError
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult

import httpx

from tests.permissions.conftest import LOG_GROUP, SECRET, Server


def client(server: Server, service: str, key: str) -> Any:
    return boto3.session.Session().client(service, endpoint_url=server.url, region_name="us-east-1",
                                          aws_access_key_id=key, aws_secret_access_key=key,
                                          config=Config(retries={"max_attempts": 1}))


def refused(call: Any, **params: Any) -> ClientError:
    with pytest.raises(ClientError) as exc:
        call(**params)
    assert exc.value.response["Error"]["Code"] == "AccessDeniedException", exc.value.response
    assert "ingest-only" in exc.value.response["Error"]["Message"]
    return exc.value


def test_ingest_only_key_writes_logs_but_cannot_read_query_or_delete_them(seeded: Server) -> None:
    writer, reader = client(seeded, "logs", seeded.keys.ingest), client(seeded, "logs", seeded.keys.read)
    group = f"writer-{uuid.uuid4().hex[:8]}"
    writer.create_log_group(logGroupName=group)
    writer.create_log_stream(logGroupName=group, logStreamName="app")
    writer.put_log_events(logGroupName=group, logStreamName="app",
                          logEvents=[{"timestamp": int(time.time() * 1000), "message": "sent by the writer"}])
    refused(writer.get_log_events, logGroupName=LOG_GROUP, logStreamName="s")
    refused(writer.filter_log_events, logGroupName=LOG_GROUP)
    refused(writer.start_query, logGroupName=LOG_GROUP, startTime=0, endTime=int(time.time()), queryString="fields @message")
    refused(writer.describe_log_groups)
    refused(writer.delete_log_stream, logGroupName=LOG_GROUP, logStreamName="s")
    refused(writer.delete_log_group, logGroupName=LOG_GROUP)
    refused(writer.put_retention_policy, logGroupName=LOG_GROUP, retentionInDays=1)
    # Nothing was removed: the reader still sees dev's group, its events, and what the writer sent.
    names = {g["logGroupName"] for g in reader.describe_log_groups()["logGroups"]}
    assert {LOG_GROUP, group} <= names
    assert any(SECRET in e["message"] for e in reader.get_log_events(logGroupName=LOG_GROUP, logStreamName="s")["events"])
    assert [e["message"] for e in reader.get_log_events(logGroupName=group, logStreamName="app")["events"]] == [
        "sent by the writer"]


def test_watchtower_works_with_an_ingest_only_key(seeded: Server) -> None:
    """watchtower asks DescribeLogGroups first; refused, it creates the group (already there is fine) and sends."""
    group = f"watchtower-{uuid.uuid4().hex[:8]}"
    handler = watchtower.CloudWatchLogHandler(log_group_name=group, log_stream_name="flask",
                                              boto3_client=client(seeded, "logs", seeded.keys.ingest))
    logger = logging.getLogger(group)
    logger.addHandler(handler)
    logger.warning("hello from watchtower")
    handler.flush()
    handler.close()
    events = client(seeded, "logs", seeded.keys.read).get_log_events(logGroupName=group, logStreamName="flask")
    assert [e["message"] for e in events["events"]] == ["hello from watchtower"]


def test_ingest_only_key_sends_segments_but_cannot_read_or_configure_xray(seeded: Server) -> None:
    writer, reader = client(seeded, "xray", seeded.keys.ingest), client(seeded, "xray", seeded.keys.read)
    now = time.time()
    doc = ('{"trace_id": "1-%08x-%s", "id": "%s", "name": "writer-svc", "start_time": %f, "end_time": %f}'
           % (int(now), uuid.uuid4().hex[:24], uuid.uuid4().hex[:16], now - 1, now))
    assert writer.put_trace_segments(TraceSegmentDocuments=[doc])["UnprocessedTraceSegments"] == []
    assert writer.get_sampling_rules()["SamplingRuleRecords"]  # what a daemon asks for, as AWS's daemon policy allows
    refused(writer.get_trace_summaries, StartTime=now - 60, EndTime=now + 60)
    refused(writer.get_groups)
    refused(writer.create_group, GroupName="by-writer")
    refused(writer.update_group, GroupName=LOG_GROUP, FilterExpression='service("x")')
    refused(writer.delete_group, GroupName=LOG_GROUP)
    refused(writer.delete_sampling_rule, RuleName=f"{SECRET}-rule")
    refused(writer.create_sampling_rule, SamplingRule={
        "RuleName": "by-writer", "Priority": 1, "FixedRate": 1.0, "ReservoirSize": 1, "ServiceName": "*",
        "ServiceType": "*", "Host": "*", "HTTPMethod": "*", "URLPath": "*", "ResourceARN": "*", "Version": 1})
    assert {g["GroupName"] for g in reader.get_groups()["Groups"]} >= {LOG_GROUP}
    assert "by-writer" not in {g["GroupName"] for g in reader.get_groups()["Groups"]}
    rules = {r["SamplingRule"]["RuleName"] for r in reader.get_sampling_rules()["SamplingRuleRecords"]}
    assert f"{SECRET}-rule" in rules and "by-writer" not in rules
    trace_id = doc.split('"')[3]
    assert [t["Id"] for t in reader.batch_get_traces(TraceIds=[trace_id])["Traces"]] == [trace_id]


def test_otel_exporter_with_an_ingest_only_key_sends_and_the_key_cannot_read_it_back(seeded: Server) -> None:
    def export(key: str) -> SpanExportResult:
        exporter = OTLPSpanExporter(endpoint=f"{seeded.url}/v1/traces", headers={"x-honeycomb-team": key})
        provider = TracerProvider(resource=Resource.create({"service.name": "web-bundle"}))
        results: list[SpanExportResult] = []
        real = exporter.export
        exporter.export = lambda spans: results.append(real(spans)) or results[-1]  # type: ignore[method-assign]
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        with provider.get_tracer("t").start_as_current_span("click"):
            pass
        provider.shutdown()
        return results[0]

    assert export(seeded.keys.ingest) == SpanExportResult.SUCCESS
    assert export("not-a-key") == SpanExportResult.FAILURE
    r = httpx.get(f"{seeded.url}/api/datasets", headers={"x-honeycomb-team": seeded.keys.ingest})
    assert r.status_code == 403 and "ingest-only" in r.json()["error"]
    names = [d["name"] for d in httpx.get(f"{seeded.url}/api/datasets",
                                          headers={"x-honeycomb-team": seeded.keys.read}).json()["datasets"]]
    assert "web-bundle" in names
