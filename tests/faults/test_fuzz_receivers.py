"""Hypothesis against every receiver over a real socket: any body gets an answer, never a 5xx or a dropped connection.

The cases the hardening review found (deep nesting, lone surrogates, NaN, absurd times) are explicit
``@example``s, so they run on every run whatever Hypothesis draws.
"""

from __future__ import annotations

import json
import secrets
import socket
import time
from typing import Any

import httpx
from hypothesis import example, given
from hypothesis import strategies as st
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.faults.fuzz_support import (
    DEEP_JSON, DEEP_OBJECT, FUZZ, LOG_GROUP, LONE_SURROGATE, dumps, json_values, no_server_error, signed,
)
from tests.server import ApiaryProcess

TRACE_ID = "5759e988bd862e3fe1be46a994272793"
SPAN_ID = "53995c3f42cd8ad8"


# -- OTLP ---------------------------------------------------------------------------------------

def _valid_traces() -> bytes:
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    kv = rs.resource.attributes.add()
    kv.key, kv.value.string_value = "service.name", "fuzz"
    span = rs.scope_spans.add().spans.add()
    span.trace_id, span.span_id, span.name = bytes.fromhex(TRACE_ID), bytes.fromhex(SPAN_ID), "op"
    span.start_time_unix_nano, span.end_time_unix_nano = 1_700_000_000_000_000_000, 1_700_000_000_100_000_000
    a = span.attributes.add()
    a.key, a.value.double_value = "x", 1.5
    return req.SerializeToString()


def _valid_logs() -> bytes:
    req = ExportLogsServiceRequest()
    rec = req.resource_logs.add().scope_logs.add().log_records.add()
    rec.time_unix_nano, rec.body.string_value = 1_700_000_000_000_000_000, "hello"
    return req.SerializeToString()


def _spliced(base: bytes) -> st.SearchStrategy[bytes]:
    """A valid message with a few bytes replaced or inserted: mostly still parses, then maps odd values."""
    return st.builds(lambda at, chunk, drop: base[:at] + chunk + base[at + drop:],
                     st.integers(0, len(base)), st.binary(min_size=1, max_size=8), st.integers(0, 4))


def _otlp_json(kind: str) -> st.SearchStrategy[dict[str, Any]]:
    item = {"traceId": TRACE_ID, "spanId": SPAN_ID, "name": "op", "startTimeUnixNano": "1700000000000000000",
            "endTimeUnixNano": "1700000000100000000"} if kind == "spans" else {"timeUnixNano": "1", "body": {}}
    field = st.sampled_from([*item, "attributes", "kind", "status", "events", "links", "parentSpanId", "body",
                             "severityNumber", "flags"])
    fields = st.dictionaries(field, json_values | st.just([{"key": "k", "value": {"doubleValue": "NaN"}}]), max_size=4)
    outer, inner = ("resourceSpans", "scopeSpans") if kind == "spans" else ("resourceLogs", "scopeLogs")
    leaf = "spans" if kind == "spans" else "logRecords"
    return fields.map(lambda f: {outer: [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "fuzz"}}]},
                                          inner: [{leaf: [{**item, **f}]}]}]})


def _post_otlp(fuzz_server: ApiaryProcess, path: str, body: bytes, ctype: str) -> None:
    r = no_server_error(httpx.post(f"{fuzz_server.url}{path}", content=body, timeout=30,
                                   headers={"content-type": ctype, "x-honeycomb-team": fuzz_server.key}))
    if r.status_code == 400:
        assert r.content  # a google.rpc.Status that says what to fix


@FUZZ
@given(st.binary(max_size=300) | _spliced(_valid_traces()))
@example(b"\x0a" * 2000)  # nested length-delimited fields
def test_otlp_traces_protobuf(fuzz_server: ApiaryProcess, body: bytes) -> None:
    _post_otlp(fuzz_server, "/v1/traces", body, "application/x-protobuf")


@FUZZ
@given(_otlp_json("spans").map(dumps) | st.binary(max_size=200))
@example(DEEP_JSON)
@example(b'{"resourceSpans":' + DEEP_JSON + b"}")
@example(('{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"%s","spanId":"%s","name":%s}]}]}]}'
          % (TRACE_ID, SPAN_ID, LONE_SURROGATE)).encode())
@example(('{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"%s","spanId":"%s","name":"n","attributes":'
          '[{"key":"v","value":{"doubleValue":NaN}},{"key":"w","value":{"doubleValue":"-Infinity"}}]}]}]}]}'
          % (TRACE_ID, SPAN_ID)).encode())
@example(('{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"%s","spanId":"%s","name":"n",'
          '"startTimeUnixNano":"18446744073709551615","endTimeUnixNano":"0"}]}]}]}' % (TRACE_ID, SPAN_ID)).encode())
def test_otlp_traces_json(fuzz_server: ApiaryProcess, body: bytes) -> None:
    _post_otlp(fuzz_server, "/v1/traces", body, "application/json")


@FUZZ
@given(st.binary(max_size=300) | _spliced(_valid_logs()) | _otlp_json("logs").map(dumps))
@example(DEEP_JSON)
@example(b'{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":' + b'{"kvlistValue":{"values":[{"key":"k","value":' * 400
         + b"{}" + b"}]}}" * 400 + b"}]}]}]}")
@example(b'{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":{"stringValue":"\\udfff"}}]}]}]}')
@example(b'{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"timeUnixNano":"18446744073709551615","body":{"doubleValue":"NaN"}}]}]}]}')
def test_otlp_logs_protobuf_and_json(fuzz_server: ApiaryProcess, body: bytes) -> None:
    ctype = "application/json" if body[:1] in (b"{", b"[") else "application/x-protobuf"
    _post_otlp(fuzz_server, "/v1/logs", body, ctype)


@FUZZ
@given(st.binary(max_size=300) | json_values.map(lambda v: dumps({"resourceMetrics": v})))
@example(DEEP_JSON)
@example(b'{"resourceMetrics":' + DEEP_JSON + b"}")
@example(b'{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"\\udfff","gauge":{"dataPoints":[]}}]}]}]}')
def test_otlp_metrics_protobuf_and_json(fuzz_server: ApiaryProcess, body: bytes) -> None:
    ctype = "application/json" if body[:1] in (b"{", b"[") else "application/x-protobuf"
    _post_otlp(fuzz_server, "/v1/metrics", body, ctype)


# -- Honeycomb events -----------------------------------------------------------------------------

honeycomb_fields = st.dictionaries(st.sampled_from(["name", "duration_ms", "trace.trace_id", "status_code", "error",
                                                    "timestamp", "app.x", ""]) | st.text(max_size=8), json_values,
                                   max_size=5)


@FUZZ
@given(honeycomb_fields.map(dumps) | st.binary(max_size=100), st.sampled_from([None, "0", "1e300", "2500-01-01T00:00:00Z",
                                                                                "nan", "-1", "garbage"]))
@example(DEEP_JSON, None)
@example(('{"name":%s}' % LONE_SURROGATE).encode(), None)
@example(b'{"duration_ms": NaN, "app.x": Infinity, "app.y": -Infinity}', None)
@example(b'{"app.big": 1' + b"0" * 400 + b"}", None)
@example(b'{"name": "t"}', "18446744073709551615")
def test_honeycomb_single_event(fuzz_server: ApiaryProcess, body: bytes, event_time: str | None) -> None:
    headers = {"X-Honeycomb-Team": fuzz_server.key, "content-type": "application/json"}
    if event_time is not None:
        headers["X-Honeycomb-Event-Time"] = event_time
    no_server_error(httpx.post(f"{fuzz_server.url}/1/events/fuzz", content=body, headers=headers, timeout=30))


@FUZZ
@given(st.lists(st.fixed_dictionaries({"data": honeycomb_fields}, optional={"time": json_values, "samplerate": json_values}),
                max_size=5).map(dumps) | st.binary(max_size=100))
@example(DEEP_JSON)
@example(b'[{"data": {"a": ' + DEEP_OBJECT + b"}}]")
@example(('[{"data": {"name": %s}}]' % LONE_SURROGATE).encode())
@example(b'[{"data": {"name": "t"}, "time": 1e300}, {"data": {"name": "u"}, "time": "2500-01-01T00:00:00Z"}]')
@example(b'[{"data": {"name": "t"}, "time": NaN, "samplerate": 1e400}]')
def test_honeycomb_batch(fuzz_server: ApiaryProcess, body: bytes) -> None:
    r = no_server_error(httpx.post(f"{fuzz_server.url}/1/batch/fuzz", content=body, timeout=30,
                                   headers={"X-Honeycomb-Team": fuzz_server.key, "content-type": "application/json"}))
    if r.status_code == 200:
        assert all(a["status"] in (202, 400) for a in r.json())


# -- X-Ray ----------------------------------------------------------------------------------------

def _segment(extra: dict[str, Any]) -> dict[str, Any]:
    return {"trace_id": "1-5759e988-bd862e3fe1be46a994272793", "id": secrets.token_hex(8), "name": "fuzz",
            "start_time": time.time(), "end_time": time.time() + 0.1, **extra}


segment_docs = (st.dictionaries(st.sampled_from(["http", "aws", "annotations", "metadata", "cause", "error", "fault",
                                                 "subsegments", "start_time", "end_time", "in_progress", "parent_id"]),
                                json_values, max_size=4).map(lambda e: json.dumps(_segment(e)))
                | st.text(max_size=80))


@FUZZ
@given(st.lists(segment_docs, min_size=1, max_size=3))
@example([DEEP_JSON.decode()])
@example([json.dumps(_segment({})).replace('"fuzz"', LONE_SURROGATE)])
@example([json.dumps(_segment({"start_time": 16725225600.0, "end_time": 16725225601.0}))])
@example([json.dumps(_segment({"annotations": {"n": float("nan")}, "metadata": {"d": {"x": float("inf")}}}))])
@example([json.dumps(_segment({"subsegments": [{}] * 3, "metadata": json.loads("[" * 90 + "]" * 90)}))])
def test_xray_put_trace_segments(fuzz_server: ApiaryProcess, documents: list[str]) -> None:
    body = json.dumps({"TraceSegmentDocuments": documents}).encode()
    no_server_error(signed(fuzz_server, "xray", "/TraceSegments", body, {"Content-Type": "application/json"}))


def test_xray_udp_daemon_survives_any_datagram(fuzz_server: ApiaryProcess) -> None:
    addr = ("127.0.0.1", fuzz_server.xray_port)  # type: ignore[attr-defined]
    header = b'{"format": "json", "version": 1}\n'
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        @FUZZ
        @given(st.binary(max_size=300) | segment_docs.map(lambda d: header + d.encode("utf-8", "surrogatepass")))
        @example(header + DEEP_JSON[:30_000] + DEEP_JSON[-30_000:])
        @example(header + json.dumps(_segment({})).replace('"fuzz"', LONE_SURROGATE).encode())
        @example(b'[[[[[[[[' * 1000 + b"\n{}")
        def send(datagram: bytes) -> None:
            sock.sendto(datagram, addr)

        send()
        marker = _segment({})
        marker["trace_id"] = "1-%s-%s" % (format(int(time.time()), "x"), secrets.token_hex(12))
        sock.sendto(header + json.dumps(marker).encode(), addr)
    tid = marker["trace_id"].replace("-", "")[1:]
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        r = httpx.get(f"{fuzz_server.url}/api/traces/{tid}", headers={"x-honeycomb-team": fuzz_server.key}, timeout=30)
        if r.status_code == 200:
            break
        time.sleep(0.2)
    assert r.status_code == 200, "the daemon stopped taking segments after the fuzz datagrams"


# -- CloudWatch Logs ------------------------------------------------------------------------------

OPERATIONS = ["PutLogEvents", "CreateLogGroup", "CreateLogStream", "DescribeLogGroups", "DescribeLogStreams",
              "GetLogEvents", "FilterLogEvents", "StartQuery", "GetQueryResults", "PutRetentionPolicy",
              "TagResource", "UntagResource", "ListTagsForResource", "TagLogGroup", "UntagLogGroup"]
logs_params = st.dictionaries(st.sampled_from(["logGroupName", "logStreamName", "logEvents", "filterPattern",
                                               "queryString", "startTime", "endTime", "limit", "nextToken", "queryId",
                                               "retentionInDays", "logGroupNamePrefix", "tags", "tagKeys",
                                               "resourceArn"]), json_values, max_size=5)


@FUZZ
@given(st.sampled_from(OPERATIONS), logs_params.map(dumps) | st.binary(max_size=100))
@example("PutLogEvents", DEEP_JSON)
@example("PutLogEvents", ('{"logGroupName":"%s","logStreamName":"s","logEvents":[{"timestamp":1,"message":%s}]}'
                          % (LOG_GROUP, LONE_SURROGATE)).encode())
@example("PutLogEvents", ('{"logGroupName":"%s","logStreamName":"s","logEvents":[{"timestamp":1e300,"message":"m"},'
                          '{"timestamp":NaN,"message":"n"}]}' % LOG_GROUP).encode())
@example("FilterLogEvents", dumps({"logGroupName": LOG_GROUP, "filterPattern": "(" * 300 + "a" + ")" * 300}))
@example("StartQuery", dumps({"logGroupName": LOG_GROUP, "startTime": 0, "endTime": 2**62,
                              "queryString": "filter " + "(" * 300 + "@message like /a/" + ")" * 300}))
@example("StartQuery", b'{"logGroupName": 1}')
@example("StartQuery", dumps({"logGroupName": LOG_GROUP, "startTime": -(2**62), "endTime": 2**62,
                              "queryString": "stats count(*) by bin(1s)"}))
@example("GetLogEvents", dumps({"logGroupName": LOG_GROUP, "logStreamName": "s", "startTime": -(2**62),
                                "endTime": 2**62, "limit": 2**62}))
@example("TagResource", dumps({"resourceArn": f"arn:aws:logs:us-east-1:000000000000:log-group:{LOG_GROUP}",
                               "tags": {"k": [1], "": "v", "aws:x": "y"}}))
def test_cloudwatch_logs_operations(fuzz_server: ApiaryProcess, operation: str, body: bytes) -> None:
    r = no_server_error(signed(fuzz_server, "logs", "/", body, {"X-Amz-Target": f"Logs_20140328.{operation}",
                                                           "Content-Type": "application/x-amz-json-1.1"}))
    if r.status_code >= 400:
        assert r.json()["__type"]  # AWS's error shape, which botocore turns into the client's exception


# -- Rollbar --------------------------------------------------------------------------------------

rollbar_items = st.fixed_dictionaries({"data": st.dictionaries(
    st.sampled_from(["environment", "body", "level", "timestamp", "platform", "language", "uuid", "title", "custom"]),
    json_values, max_size=5)})


@FUZZ
@given(rollbar_items.map(dumps) | st.binary(max_size=100))
@example(DEEP_JSON)
@example(b'{"data": {"body": {"message": {"body": ' + DEEP_OBJECT + b"}}}}")
@example(('{"data": {"environment": "x", "body": {"message": {"body": %s}}}}' % LONE_SURROGATE).encode())
@example(b'{"data": {"environment": "x", "timestamp": 1e300, "body": {"message": {"body": "m"}}, "custom": {"v": NaN}}}')
def test_rollbar_items(fuzz_server: ApiaryProcess, body: bytes) -> None:
    r = no_server_error(httpx.post(f"{fuzz_server.url}/api/1/item/", content=body, timeout=30,
                                   headers={"X-Rollbar-Access-Token": fuzz_server.key, "content-type": "application/json"}))
    assert "err" in r.json()  # Rollbar's answer shape, success or not
