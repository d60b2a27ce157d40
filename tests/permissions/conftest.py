"""Servers for the permission tests: each store, each exposure, with a read key, an ingest-only key and another
environment's key, and data in ``dev`` that nobody else may see.

"Network" exposure is chosen with ``--exposure network`` while the server still listens on 127.0.0.1: the policy
follows that setting (which defaults from ``--host``), so the tests never bind anything but loopback.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.clickhouse.conftest import clickhouse_url, drop_database
from tests.server import ApiaryProcess, create_key

#: Every piece of ``dev`` data carries this, so a leak to another environment's key shows in any answer.
SECRET = "s3cr3t-dev-data"
SERVICE = f"{SECRET}-svc"
LOG_GROUP = f"{SECRET}-group"
TRACE_ID = "5759e988bd862e3fe1be46a994272793"
XRAY_TRACE_ID = "1-5759e988-bd862e3fe1be46a994272793"
RUNS = ("matrix-run-a", "matrix-run-b")


@dataclass
class Keys:
    read: str
    ingest: str
    other: str  # a full key of environment ``staging``


@dataclass
class Server:
    proc: ApiaryProcess
    store: str
    exposure: str
    keys: Keys
    ids: dict[str, Any] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.proc.url


def aws(url: str, service: str, key: str | None, path: str, body: bytes, target: str | None = None,
        region: str = "us-east-1") -> httpx.Response:
    """A request signed as botocore signs it (``key`` as both credentials), or unsigned without a key."""
    headers = {"Content-Type": "application/x-amz-json-1.1" if target else "application/json"}
    if target:
        headers["X-Amz-Target"] = target
    if key is not None:
        req = AWSRequest(method="POST", url=url + path, data=body, headers=headers)
        SigV4Auth(Credentials(key, key), service, region).add_auth(req)
        headers = dict(req.headers)
    return httpx.post(url + path, content=body, headers=headers, timeout=60)


def logs_call(server: Server, key: str | None, op: str, params: dict[str, Any]) -> httpx.Response:
    return aws(server.url, "logs", key, "/", json.dumps(params).encode(), f"Logs_20140328.{op}")


def xray_call(server: Server, key: str | None, path: str, params: dict[str, Any]) -> httpx.Response:
    return aws(server.url, "xray", key, path, json.dumps(params).encode())


def _ok(r: httpx.Response) -> httpx.Response:
    assert r.status_code < 300, (r.status_code, r.text)
    return r


def seed(server: Server) -> None:
    """``dev``'s data, written with the read key: a trace, log events, an error item, X-Ray groups and rules,
    saved queries, an Insights query; and the ``doomed-*`` resources the delete operations may remove."""
    k, url = server.keys.read, server.url
    now = int(time.time())
    span = {"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": SERVICE}}]},
            "scopeSpans": [{"spans": [{"traceId": TRACE_ID, "spanId": "53995c3f42cd8ad8", "name": f"GET /{SECRET}",
                                       "kind": 2, "startTimeUnixNano": str((now - 60) * 10**9),
                                       "endTimeUnixNano": str((now - 59) * 10**9)}]}]}]}
    _ok(httpx.post(f"{url}/v1/traces", json=span, headers={"x-honeycomb-team": k}, timeout=60))
    for run in RUNS:  # two runs to compare (their names carry no SECRET: a refusal may echo what was asked)
        tagged = json.loads(json.dumps(span))
        tagged["resourceSpans"][0]["resource"]["attributes"].append({"key": "apiary.run", "value": {"stringValue": run}})
        tagged["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["spanId"] = "53995c3f42cd8ad9" if run == RUNS[0] else "53995c3f42cd8ada"
        _ok(httpx.post(f"{url}/v1/traces", json=tagged, headers={"x-honeycomb-team": k}, timeout=60))
    for group in (LOG_GROUP, "doomed-group"):
        _ok(logs_call(server, k, "CreateLogGroup", {"logGroupName": group}))
    for stream in ("s", "doomed-stream"):
        _ok(logs_call(server, k, "CreateLogStream", {"logGroupName": LOG_GROUP, "logStreamName": stream}))
    _ok(logs_call(server, k, "PutLogEvents", {"logGroupName": LOG_GROUP, "logStreamName": "s",
                                              "logEvents": [{"timestamp": now * 1000, "message": f"{SECRET} line"}]}))
    for table in ("dev_table", "doomed_table"):
        _ok(logs_call(server, k, "CreateLookupTable", {"lookupTableName": table, "tableBody": f"k,v\nx,{SECRET}\n"}))
    server.ids["query_id"] = _ok(logs_call(server, k, "StartQuery", {
        "logGroupName": LOG_GROUP, "startTime": now - 3600, "endTime": now + 60,
        "queryString": "fields @message"})).json()["queryId"]
    item = {"access_token": k, "data": {"environment": "production", "platform": "python", "level": "error",
                                        "body": {"message": {"body": f"{SECRET} failed"}}}}
    _ok(httpx.post(f"{url}/api/1/item/", json=item, timeout=60))
    items = _ok(httpx.get(f"{url}/api/1/items", headers={"X-Rollbar-Access-Token": k}, timeout=60)).json()
    server.ids["item_id"] = items["result"]["items"][0]["id"]
    instances = _ok(httpx.get(f"{url}/api/1/item/{server.ids['item_id']}/instances",
                              headers={"X-Rollbar-Access-Token": k}, timeout=60)).json()
    server.ids["instance"] = instances["result"]["instances"][0]["id"]
    for group in (LOG_GROUP, "doomed-group"):
        _ok(xray_call(server, k, "/CreateGroup", {"GroupName": group, "FilterExpression": f'service("{SERVICE}")'}))
    for rule in (f"{SECRET}-rule", "doomed-rule"):
        _ok(xray_call(server, k, "/CreateSamplingRule", {"SamplingRule": rule_doc(rule)}))
    for name in ("retrieval", "doomed_retrieval"):
        server.ids[name] = _ok(xray_call(server, k, "/StartTraceRetrieval", {
            "TraceIds": [XRAY_TRACE_ID], "StartTime": now - 3600, "EndTime": now + 60})).json()["RetrievalToken"]
    hc = {"x-honeycomb-team": k}
    spec = {"calculations": [{"op": "COUNT"}], "time_range": 7200}
    server.ids["qid"] = _ok(httpx.post(f"{url}/1/queries/{SERVICE}", json=spec, headers=hc, timeout=60)).json()["id"]
    server.ids["rid"] = _ok(httpx.post(f"{url}/1/query_results/{SERVICE}", json={"query_id": server.ids["qid"]},
                                       headers=hc, timeout=60)).json()["id"]
    for name in (f"{SECRET}-saved", "doomed-saved", *(f"doomed-saved-{cell}" for cell in
                                                      ("none", "unknown", "other", "ingest", "read"))):
        _ok(httpx.post(f"{url}/api/queries/saved", json={"name": name, "dataset": SERVICE, "query": spec}, headers=hc,
                       timeout=60))


def rule_doc(name: str) -> dict[str, Any]:
    return {"RuleName": name, "Priority": 100, "FixedRate": 0.1, "ReservoirSize": 1, "ServiceName": "*",
            "ServiceType": "*", "Host": "*", "HTTPMethod": "*", "URLPath": "*", "ResourceARN": "*", "Version": 1}


def start(tmp: Path, store: str, exposure: str) -> Server:
    data_dir = tmp / "data"
    url = clickhouse_url(tmp) if store == "clickhouse" else "duckdb"
    # Keys before the server: chdb lets one process at a time open its directory.
    keys = Keys(read=create_key(data_dir, "dev", store=url), ingest=create_key(data_dir, "dev", True, url),
                other=create_key(data_dir, "staging", store=url))
    args = ["--decode-workers", "0"] + (["--exposure", "network"] if exposure == "network" else [])
    if store == "clickhouse":
        args += ["--store", url]
    proc = ApiaryProcess(data_dir, key=keys.read, extra_args=args)
    proc.start(timeout=90)
    server = Server(proc, url, exposure, keys)
    try:
        seed(server)
    except BaseException:
        proc.stop()
        raise
    return server


@pytest.fixture(scope="module", params=["duckdb", "clickhouse"])
def store(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="module", params=["loopback", "network"])
def server(store: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    s = start(tmp_path_factory.mktemp(f"perm-{store}-{request.param}"), store, request.param)
    try:
        yield s
    finally:
        s.proc.stop()
        if store == "clickhouse":
            drop_database(s.store)


@pytest.fixture(scope="module")
def seeded(store: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One seeded server per store, loopback exposure: for the stories told with the real clients."""
    s = start(tmp_path_factory.mktemp(f"clients-{store}"), store, "loopback")
    try:
        yield s
    finally:
        s.proc.stop()
        if store == "clickhouse":
            drop_database(s.store)
