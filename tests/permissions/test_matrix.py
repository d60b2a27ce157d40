"""The permission matrix: every operation of the HTTP port x {read key, ingest-only key, another environment's key,
unknown key, no key} x {loopback, network exposure} x {DuckDB, ClickHouse}, each cell's exact answer in the
protocol's own words. One table below lists every operation; `test_the_table_lists_every_route` fails when the
app gains a route (or a CloudWatch Logs operation) the table does not list.

Cells run in the order no key, unknown key, other environment, ingest-only, read key, so a delete that a refused
key must not perform is still there for the key that may: the read key's success proves the refusals removed
nothing.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from typing import Any

import httpx
import pytest
from starlette.routing import Mount, Route

from apiary.receivers.cloudwatch.http import OPERATIONS
from apiary.server.app import create_app
from apiary.server.settings import Settings
from tests.permissions.conftest import (LOG_GROUP, RUNS, SECRET, SERVICE, TRACE_ID, XRAY_TRACE_ID, Server, aws, rule_doc)

@dataclass(frozen=True)
class Op:
    proto: str  # otlp | honeycomb | logs | xray | rollbar | ui | mcp | public
    method: str
    route: str  # as the app declares it; "/ <Operation>" for CloudWatch Logs' X-Amz-Target
    need: str  # public | ingest | read | configure
    path: str = ""  # the request path, with {placeholders} from the seeded ids; default: route
    body: Any = None  # JSON, or a function of (server, cell) for names that must be new per cell
    ok: int = 200
    ok_code: str | None = None  # the AWS error type of an ``ok`` that is an error (an id no environment has)
    foreign: int | None = None  # what another environment's full key gets; default: ok
    foreign_code: str | None = None  # and the AWS error type with it
    network_ok: int | None = None  # what the read key gets under network exposure, when not ok

    @property
    def key(self) -> str:
        return f"{self.method} {self.route}"


def now() -> int:
    return int(time.time())


def cw(op: str, need: str, body: Any = None, ok: int = 200, foreign: int | None = None,
       foreign_code: str | None = None) -> Op:
    return Op("logs", "POST", f"/ {op}", need, body=body or {}, ok=ok, foreign=foreign, foreign_code=foreign_code)


def xr(path: str, need: str, body: Any = None, foreign: int | None = None, foreign_code: str | None = None,
       ok: int = 200, ok_code: str | None = None) -> Op:
    return Op("xray", "POST", path, need, body=body or {}, ok=ok, ok_code=ok_code, foreign=foreign,
              foreign_code=foreign_code)


NOT_FOUND = dict(foreign=400, foreign_code="ResourceNotFoundException")
LOOKUP_TABLE = "arn:aws:logs:us-east-1:000000000000:lookup-table:dev_table"
XRAY_MISSING = dict(foreign=400, foreign_code="InvalidRequestException")
NO_INSIGHT = "5f5e1000-0000-5000-8000-000000000000"
UNKNOWN_INSIGHT = dict(ok=400, ok_code="InvalidRequestException")
XRAY_NO_RESOURCE = dict(foreign=404, foreign_code="ResourceNotFoundException")
GROUP_ARN = f"arn:aws:logs:us-east-1:000000000000:log-group:{LOG_GROUP}"
XRAY_GROUP_ARN = f"arn:aws:xray:us-east-1:000000000000:group/{LOG_GROUP}/{LOG_GROUP}"
SPEC = {"calculations": [{"op": "COUNT"}], "time_range": 7200}
OTLP_SPAN = {"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "0af7651916cd43dd8448eb211c80319c",
                                                            "spanId": "b7ad6b7169203331", "name": "matrix",
                                                            "startTimeUnixNano": "1", "endTimeUnixNano": "2"}]}]}]}
OTLP_LOG = {"resourceLogs": [{"scopeLogs": [{"logRecords": [{"timeUnixNano": "1", "body": {"stringValue": "matrix"}}]}]}]}
ITEM = {"data": {"environment": "production", "platform": "browser", "level": "error",
                 "body": {"message": {"body": "matrix item"}}}}


def segment(_: Server, cell: str) -> dict[str, Any]:
    doc = {"trace_id": "1-5759e988-bd862e3fe1be46a994272794", "id": "70de5b6f19ff9a0a", "name": f"matrix-{cell}",
           "start_time": now() - 5, "end_time": now() - 4}
    return {"TraceSegmentDocuments": [json.dumps(doc)]}


def window(_: Server, __: str) -> dict[str, Any]:
    return {"StartTime": now() - 7200, "EndTime": now() + 60}


QUERY_OPS = [
    Op("honeycomb", "POST", "/1/queries/{dataset}", "read", f"/1/queries/{SERVICE}", SPEC, foreign=404),
    Op("honeycomb", "GET", "/1/queries/{dataset}/{query_id}", "read", f"/1/queries/{SERVICE}/{{qid}}", foreign=404),
    Op("honeycomb", "POST", "/1/query_results/{dataset}", "read", f"/1/query_results/{SERVICE}",
       lambda s, c: {"query_id": s.ids["qid"]}, ok=201, foreign=404),
    Op("honeycomb", "GET", "/1/query_results/{dataset}/{result_id}", "read", f"/1/query_results/{SERVICE}/{{rid}}",
       foreign=404),
    Op("honeycomb", "GET", "/api/queries/history", "read"),
    Op("honeycomb", "GET", "/api/queries/saved", "read"),
    Op("honeycomb", "POST", "/api/queries/saved", "configure", body=lambda s, c: {
        "name": f"new-{c}", "dataset": SERVICE, "query": SPEC}, ok=201, foreign=404),
    Op("honeycomb", "GET", "/api/queries/saved/{name}", "read", f"/api/queries/saved/{SECRET}-saved", foreign=404),
    Op("honeycomb", "DELETE", "/api/queries/saved/{name}", "configure", "/api/queries/saved/doomed-saved", ok=204,
       foreign=404),
    Op("honeycomb", "POST", "/api/queries/saved/{name}/run", "read", f"/api/queries/saved/{SECRET}-saved/run", ok=201,
       foreign=404),
    Op("honeycomb", "GET", "/1/columns/{dataset:path}", "read", f"/1/columns/{SERVICE}", foreign=404),
    Op("honeycomb", "POST", "/api/bubbleup", "read", body={
        "dataset": SERVICE, "query": SPEC, "selection": {"filters": [{"column": "duration_ms", "op": ">", "value": 0}]}},
       foreign=404),
]

UI = "?env=dev"
def otlp_metric(_: Server, __: str) -> dict[str, Any]:
    point = {"timeUnixNano": str(now() * 1_000_000_000), "asInt": "1"}
    return {"resourceMetrics": [{"scopeMetrics": [{"metrics": [{"name": "matrix.gauge", "gauge": {"dataPoints": [point]}}]}]}]}


TRACE_OPS = [
    Op("honeycomb", "POST", "/api/traces/search", "read", body={}),
    Op("honeycomb", "GET", "/api/traces/compare/{a}/{b}", "read", f"/api/traces/compare/{TRACE_ID}/{TRACE_ID}",
       foreign=404),
]

COMPARE_RUNS = f"/api/runs/compare?a={RUNS[0]}&b={RUNS[1]}"
RUN_OPS = [
    Op("honeycomb", "GET", "/api/runs", "read"),
    Op("honeycomb", "GET", "/api/runs/compare", "read", COMPARE_RUNS, foreign=404),
]

TABLE: list[Op] = [
    Op("public", "GET", "/api/health", "public"),
    Op("otlp", "POST", "/v1/traces", "ingest", body=OTLP_SPAN),
    Op("otlp", "POST", "/v1/logs", "ingest", body=OTLP_LOG),
    Op("otlp", "POST", "/v1/metrics", "ingest", body=otlp_metric),
    Op("honeycomb", "POST", "/1/events/{dataset:path}", "ingest", "/1/events/matrix", {"a": 1}),
    Op("honeycomb", "POST", "/1/batch/{dataset:path}", "ingest", "/1/batch/matrix", [{"data": {"a": 1}}]),
    Op("honeycomb", "GET", "/1/auth", "ingest"),
    *QUERY_OPS,
    Op("honeycomb", "GET", "/api/traces/{trace_id}", "read", f"/api/traces/{TRACE_ID}", foreign=404),
    *TRACE_OPS,
    Op("honeycomb", "GET", "/api/datasets", "read"),
    *RUN_OPS,
    # MCP's streamable HTTP: a tool call that reads dev's trace (another environment's key: the tool's "not found").
    Op("mcp", "POST", "/mcp", "read", body={"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                                            "params": {"name": "get_trace", "arguments": {"trace_id": TRACE_ID}}}),
    # The daemon is off on these servers (the next module tests it on); the answer is still keyed.
    Op("honeycomb", "GET", "/api/xray/daemon", "read", ok=404),
    Op("rollbar", "POST", "/api/1/", "ingest", body=ITEM),  # the Node.js SDK posts items to its endpoint as given
    Op("rollbar", "POST", "/api/1/item/", "ingest", body=ITEM),
    Op("rollbar", "POST", "/api/1/item", "ingest", body=ITEM),
    Op("rollbar", "GET", "/api/1/items", "read"),
    Op("rollbar", "GET", "/api/1/items/", "read"),
    Op("rollbar", "GET", "/api/1/item/{item_id}", "read", "/api/1/item/{item_id}", foreign=404),
    Op("rollbar", "PATCH", "/api/1/item/{item_id}", "configure", "/api/1/item/{item_id}", {"status": "resolved"},
       foreign=404),
    Op("rollbar", "GET", "/api/1/item/{item_id}/instances", "read", "/api/1/item/{item_id}/instances", foreign=404),
    Op("rollbar", "GET", "/api/1/instance/{instance}", "read", "/api/1/instance/{instance}", foreign=404),
    Op("rollbar", "GET", "/api/1/occurrence/{instance}", "read", "/api/1/occurrence/{instance}", foreign=404),
    # Any other Rollbar path: Rollbar's JSON 404, whoever asks.
    *(Op("public", m, "/api/1/{rest:path}", "public", "/api/1/deploys", ok=404)
      for m in ("GET", "POST", "PUT", "PATCH", "DELETE")),
    cw("CreateLogGroup", "ingest", lambda s, c: {"logGroupName": f"new-{c}"}),
    cw("CreateLogStream", "ingest", lambda s, c: {"logGroupName": LOG_GROUP, "logStreamName": f"new-{c}"}, **NOT_FOUND),
    cw("PutLogEvents", "ingest", lambda s, c: {"logGroupName": LOG_GROUP, "logStreamName": "s", "logEvents": [
        {"timestamp": now() * 1000, "message": f"from {c}"}]}, **NOT_FOUND),
    cw("DeleteLogGroup", "configure", {"logGroupName": "doomed-group"}, **NOT_FOUND),
    cw("DeleteLogStream", "configure", {"logGroupName": LOG_GROUP, "logStreamName": "doomed-stream"}, **NOT_FOUND),
    cw("PutRetentionPolicy", "configure", {"logGroupName": LOG_GROUP, "retentionInDays": 7}, **NOT_FOUND),
    cw("DeleteRetentionPolicy", "configure", {"logGroupName": LOG_GROUP}, **NOT_FOUND),
    cw("DescribeLogGroups", "read"),
    cw("ListLogGroups", "read", {"logGroupNamePattern": "^matrix|dev"}),
    cw("DescribeLogStreams", "read", {"logGroupName": LOG_GROUP}, **NOT_FOUND),
    cw("GetLogEvents", "read", {"logGroupName": LOG_GROUP, "logStreamName": "s"}, **NOT_FOUND),
    cw("FilterLogEvents", "read", {"logGroupName": LOG_GROUP}, **NOT_FOUND),
    cw("TestMetricFilter", "read", {"filterPattern": "[a, b]", "logEventMessages": ["x y"]}),
    cw("StartQuery", "read", lambda s, c: {"logGroupName": LOG_GROUP, "startTime": now() - 3600, "endTime": now(),
                                          "queryString": "fields @message"}, **NOT_FOUND),
    cw("GetQueryResults", "read", lambda s, c: {"queryId": s.ids["query_id"]}, **NOT_FOUND),
    cw("StopQuery", "read", lambda s, c: {"queryId": s.ids["query_id"]}, **NOT_FOUND),
    cw("DescribeQueries", "read"),
    cw("CreateLookupTable", "configure", lambda s, c: {"lookupTableName": f"new_{c}", "tableBody": "k\n1\n"}),
    cw("DescribeLookupTables", "read"),
    cw("GetLookupTable", "read", {"lookupTableArn": LOOKUP_TABLE}, **NOT_FOUND),
    cw("UpdateLookupTable", "configure", {"lookupTableArn": LOOKUP_TABLE, "tableBody": "k,v\ny,2\n"}, **NOT_FOUND),
    cw("DeleteLookupTable", "configure", {"lookupTableArn": LOOKUP_TABLE.replace("dev_table", "doomed_table")},
       **NOT_FOUND),
    cw("TagResource", "configure", {"resourceArn": GROUP_ARN, "tags": {"k": "v"}}, **NOT_FOUND),
    cw("UntagResource", "configure", {"resourceArn": GROUP_ARN, "tagKeys": ["k"]}, **NOT_FOUND),
    cw("ListTagsForResource", "read", {"resourceArn": GROUP_ARN}, **NOT_FOUND),
    cw("TagLogGroup", "configure", {"logGroupName": LOG_GROUP, "tags": {"k": "v"}}, **NOT_FOUND),
    cw("UntagLogGroup", "configure", {"logGroupName": LOG_GROUP, "tags": ["k"]}, **NOT_FOUND),
    cw("ListTagsLogGroup", "read", {"logGroupName": LOG_GROUP}, **NOT_FOUND),
    xr("/TraceSegments", "ingest", segment),
    xr("/GetSamplingRules", "ingest"),
    xr("/SamplingTargets", "ingest", {"SamplingStatisticsDocuments": []}),
    xr("/TraceSummaries", "read", window),
    xr("/Traces", "read", {"TraceIds": [XRAY_TRACE_ID]}),
    xr("/TraceGraph", "read", {"TraceIds": [XRAY_TRACE_ID]}),
    xr("/ServiceGraph", "read", window),
    xr("/TimeSeriesServiceStatistics", "read", window),
    xr("/InsightSummaries", "read", lambda s, c: {**window(s, c), "GroupName": "Default"}),
    # No insight exists in the matrix's environments: an id no group has is X-Ray's InvalidRequestException.
    xr("/Insight", "read", {"InsightId": NO_INSIGHT}, **UNKNOWN_INSIGHT),
    xr("/InsightEvents", "read", {"InsightId": NO_INSIGHT}, **UNKNOWN_INSIGHT),
    xr("/InsightImpactGraph", "read", lambda s, c: {**window(s, c), "InsightId": NO_INSIGHT}, **UNKNOWN_INSIGHT),
    xr("/GetGroup", "read", {"GroupName": LOG_GROUP}, **XRAY_MISSING),
    xr("/Groups", "read"),
    xr("/SamplingStatisticSummaries", "read"),
    xr("/CreateGroup", "configure", lambda s, c: {"GroupName": f"new-{c}"}),
    xr("/UpdateGroup", "configure", {"GroupName": LOG_GROUP, "FilterExpression": 'service("x")'}, **XRAY_MISSING),
    xr("/DeleteGroup", "configure", {"GroupName": "doomed-group"}, **XRAY_MISSING),
    xr("/CreateSamplingRule", "configure", lambda s, c: {"SamplingRule": rule_doc(f"new-{c}")}),
    xr("/UpdateSamplingRule", "configure", {"SamplingRuleUpdate": {"RuleName": f"{SECRET}-rule", "FixedRate": 0.5}},
       **XRAY_MISSING),
    xr("/DeleteSamplingRule", "configure", {"RuleName": "doomed-rule"}, **XRAY_MISSING),
    xr("/TagResource", "configure", {"ResourceARN": XRAY_GROUP_ARN, "Tags": [{"Key": "k", "Value": "v"}]},
       **XRAY_NO_RESOURCE),
    xr("/UntagResource", "configure", {"ResourceARN": XRAY_GROUP_ARN, "TagKeys": ["k"]}, **XRAY_NO_RESOURCE),
    xr("/ListTagsForResource", "read", {"ResourceARN": XRAY_GROUP_ARN}, **XRAY_NO_RESOURCE),
    xr("/EncryptionConfig", "read"),
    xr("/PutEncryptionConfig", "configure", {"Type": "NONE"}),
    xr("/TelemetryRecords", "ingest", {"TelemetryRecords": []}),
    xr("/PutResourcePolicy", "configure", {"PolicyName": "matrix", "PolicyDocument": json.dumps(
        {"Statement": [{"Effect": "Allow", "Principal": {"Service": "sns.amazonaws.com"},
                        "Action": "xray:PutTraceSegments", "Resource": "*"}]})}),
    xr("/ListResourcePolicies", "read"),
    xr("/DeleteResourcePolicy", "configure", {"PolicyName": "doomed-policy"}),
    xr("/GetIndexingRules", "read"),
    xr("/UpdateIndexingRule", "configure", {"Name": "Default", "Rule": {"Probabilistic": {"DesiredSamplingPercentage": 5}}}),
    xr("/GetTraceSegmentDestination", "read"),
    xr("/UpdateTraceSegmentDestination", "configure", {"Destination": "XRay"}),
    xr("/StartTraceRetrieval", "read", lambda s, c: {"TraceIds": [XRAY_TRACE_ID], "StartTime": now() - 3600,
                                                     "EndTime": now() + 60}),
    xr("/ListRetrievedTraces", "read", lambda s, c: {"RetrievalToken": s.ids["retrieval"]}, **XRAY_NO_RESOURCE),
    xr("/GetRetrievedTracesGraph", "read", lambda s, c: {"RetrievalToken": s.ids["retrieval"]}, **XRAY_NO_RESOURCE),
    xr("/CancelTraceRetrieval", "read", lambda s, c: {"RetrievalToken": s.ids["doomed_retrieval"]},
       **XRAY_NO_RESOURCE),
    *(Op("public", "GET", p, "public", p.replace("{trace_id}", TRACE_ID).replace("{item_id}", "1"))
      for p in ("/", "/trace/{trace_id}", "/traces", "/query", "/services", "/history", "/settings", "/logs", "/errors",
                "/errors/{item_id}", "/xray", "/metrics", "/runs")),
    Op("public", "GET", "/compare/{a}/{b}", "public", f"/compare/{TRACE_ID}/{TRACE_ID}"),
    Op("public", "GET", "/ui/static/{path}", "public", "/ui/static/app.css"),
    Op("public", "GET", "/ui/api/config", "public"),
    Op("ui", "GET", "/ui/api/home", "read", "/ui/api/home" + UI, foreign=403),
    Op("ui", "GET", "/ui/api/trace/{trace_id}", "read", f"/ui/api/trace/{TRACE_ID}" + UI, foreign=403),
    Op("ui", "GET", "/ui/api/columns", "read", "/ui/api/columns" + UI, foreign=403),
    Op("ui", "GET", "/ui/api/datasets", "read", "/ui/api/datasets" + UI, foreign=403),
    Op("ui", "GET", "/ui/api/services", "read", "/ui/api/services" + UI, foreign=403),
    Op("ui", "GET", "/ui/api/settings", "read"),  # the environments in scope: for another key, its own
    # Under network exposure keys are made on the server (`apiary keys create`), whatever the key.
    Op("ui", "POST", "/ui/api/keys", "configure", body={"environment": "ui-made"}, ok=201, network_ok=403, foreign=403),
    Op("ui", "POST", "/ui/api/traces_for", "read", "/ui/api/traces_for" + UI,
       {"dataset": SERVICE, "query": {**SPEC, "breakdowns": ["trace.trace_id"]}}, foreign=403),
    Op("ui", "GET", "/ui/api/logs/groups", "read", "/ui/api/logs/groups" + UI, foreign=403),
    Op("ui", "GET", "/ui/api/logs/events", "read", f"/ui/api/logs/events{UI}&group={LOG_GROUP}", foreign=403),
    Op("ui", "POST", "/ui/api/logs/insights", "read", "/ui/api/logs/insights" + UI,
       {"query": "fields @message", "groups": [LOG_GROUP]}, foreign=403),
    Op("ui", "GET", "/ui/api/errors/items", "read", "/ui/api/errors/items" + UI, foreign=403),
    Op("ui", "GET", "/ui/api/errors/items/{item_id}", "read", "/ui/api/errors/items/{item_id}" + UI, foreign=403),
    Op("ui", "POST", "/ui/api/errors/items/{item_id}/status", "configure",
       "/ui/api/errors/items/{item_id}/status" + UI, {"status": "muted"}, foreign=403),
    Op("ui", "GET", "/ui/api/xray", "read", "/ui/api/xray" + UI, foreign=403),
    # The UI's pass-through to the Honeycomb query API: the key's environment decides, as on /1/*.
    # Under loopback exposure every cell may delete, so each deletes a saved query of its own.
    *(replace(op, proto="ui", route="/ui/api/hc" + op.route,
              path="/ui/api/hc" + (op.path or op.route).replace("doomed-saved", "doomed-saved-{cell}") + UI)
      for op in (*QUERY_OPS, *TRACE_OPS)),
    Op("ui", "GET", "/ui/api/hc/api/runs", "read", "/ui/api/hc/api/runs" + UI),
    Op("ui", "GET", "/ui/api/hc/api/runs/compare", "read", COMPARE_RUNS.replace("/api/", "/ui/api/hc/api/", 1) + "&env=dev",
       foreign=404),
]

CELLS = ["none", "unknown", "other", "ingest", "read"]


def _key(server: Server, cell: str) -> str | None:
    return {"none": None, "unknown": "not-a-key-of-any-environment", "other": server.keys.other,
            "ingest": server.keys.ingest, "read": server.keys.read}[cell]


def send(server: Server, op: Op, cell: str) -> httpx.Response:
    key = _key(server, cell)
    body = op.body(server, cell) if callable(op.body) else op.body
    raw = json.dumps(body).encode() if body is not None else b""
    path = (op.path or op.route).format(**server.ids, cell=cell)
    if op.proto == "logs":
        return aws(server.url, "logs", key, "/", raw, f"Logs_20140328.{op.route[2:]}")
    if op.proto == "xray":
        return aws(server.url, "xray", key, path, raw)
    headers = {"Content-Type": "application/json", "X-Apiary-UI": "1"}
    if op.proto == "mcp":
        headers["Accept"] = "application/json, text/event-stream"
    if key is not None:
        headers["X-Rollbar-Access-Token" if op.proto == "rollbar" else "X-Honeycomb-Team"] = key
    return httpx.request(op.method, server.url + path, content=raw or None, headers=headers, timeout=60)


def expected(server: Server, op: Op, cell: str) -> tuple[int, str | None, str | None]:
    """(status, AWS error type or None, refusal kind or None) for one cell."""
    open_ui = op.proto == "ui" and server.exposure == "loopback"  # this machine only: the UI asks for no key
    read_ok = op.network_ok if (op.network_ok and server.exposure == "network") else op.ok
    if op.need == "public" or open_ui or cell == "read":
        return read_ok, op.ok_code, None
    if cell in ("none", "unknown"):
        return {"logs": 400, "xray": 403}.get(op.proto, 401), {
            "none": "MissingAuthenticationTokenException", "unknown": "UnrecognizedClientException"}[cell], cell
    if cell == "ingest":
        if op.need == "ingest":
            return op.ok, op.ok_code, None
        return {"logs": 400}.get(op.proto, 403), "AccessDeniedException", "forbidden"
    return (op.foreign or op.ok), op.foreign_code or op.ok_code, None


#: Names of ``dev``'s things that a request may carry and an error may echo back; nothing else of ``dev``'s may show.
ECHOED = [SERVICE, LOG_GROUP, f"{SECRET}-saved", f"{SECRET}-rule", TRACE_ID, XRAY_TRACE_ID]


def leaked(r: httpx.Response) -> bool:
    sent = r.request.url.path + r.request.content.decode()
    text = r.text
    for name in ECHOED:
        if name in sent:
            text = text.replace(name, "")
    return SECRET in text or TRACE_ID in text


def check(server: Server, op: Op, cell: str, r: httpx.Response) -> None:
    status, aws_code, refusal = expected(server, op, cell)
    where = f"{op.key} [{cell}, {server.exposure}, {server.store[:6]}]: {r.status_code} {r.text[:300]}"
    assert r.status_code == status, where
    if op.proto in ("logs", "xray"):
        assert r.headers.get("x-amzn-ErrorType") == aws_code, where
        if op.proto == "logs" and aws_code:
            assert r.json()["__type"] == aws_code, where
    elif refusal and op.proto == "otlp":
        assert r.json()["code"] == {"none": 16, "unknown": 16, "forbidden": 7}[refusal], where
    elif refusal and op.proto == "rollbar":
        assert r.json()["err"] == 1 and r.json()["message"], where
    elif refusal:
        assert r.json()["error"], where
    if refusal == "forbidden":
        assert "ingest-only" in r.text, where
    if (cell == "other" or refusal) and not (op.proto == "ui" and server.exposure == "loopback"):
        assert not leaked(r), f"dev's data leaked: {where}"


@pytest.mark.parametrize("op", TABLE, ids=[op.key for op in TABLE])
def test_permission_matrix(server: Server, op: Op) -> None:
    for cell in CELLS:
        check(server, op, cell, send(server, op, cell))


def app_operations() -> set[str]:
    """Every (method, route) the app serves, CloudWatch Logs operations one by one, the UI's mounts opened."""
    app = create_app(Settings())
    found: set[str] = set()

    def add(route: Any, prefix: str = "") -> None:
        if isinstance(route, Mount):
            inner = getattr(route.app, "router", None)
            if callable(inner):
                for sub in inner().routes:
                    add(sub, prefix + route.path)
            else:
                found.add(f"GET {prefix}{route.path}/{{path}}")
            return
        assert isinstance(route, Route), route
        for method in sorted((route.methods or set()) - {"HEAD"}):
            if prefix + route.path == "/" and method == "POST":
                found.update(f"POST / {name}" for name in OPERATIONS)
            else:
                found.add(f"{method} {prefix}{route.path}")

    for route in app.routes:
        add(route)
    return found


def test_the_table_lists_every_route() -> None:
    listed = [op.key for op in TABLE]
    assert len(listed) == len(set(listed)), "an operation is listed twice"
    served = app_operations()
    assert sorted(served - set(listed)) == [], "routes the permission table does not list"
    assert sorted(set(listed) - served) == [], "operations listed that the app no longer serves"
