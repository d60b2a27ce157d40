"""Bad input gets X-Ray's own clear error, and nothing already stored is harmed."""

from __future__ import annotations

import hashlib
import json
import socket
import time
from typing import Any

import botocore.exceptions
import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.server import ApiaryProcess
from tests.xray.conftest import datagram, eventually, xray_client


def _segment(name: str, **extra: Any) -> dict[str, Any]:
    now = time.time()
    return {"trace_id": f"1-{int(now):08x}-{hashlib.sha256(name.encode()).hexdigest()[:24]}", "id": "3333333333333333", "name": name,
            "start_time": now - 0.2, "end_time": now, **extra}


def _error(exc: pytest.ExceptionInfo[botocore.exceptions.ClientError]) -> tuple[str, str]:
    return exc.value.response["Error"]["Code"], exc.value.response["Error"]["Message"]


def _signed(apiary: ApiaryProcess, path: str, body: dict[str, Any]) -> httpx.Response:
    req = AWSRequest(method="POST", url=f"{apiary.url}{path}", data=json.dumps(body).encode(),
                     headers={"Content-Type": "application/json"})
    SigV4Auth(Credentials(apiary.key, apiary.key), "xray", "us-east-1").add_auth(req)
    return httpx.post(req.url, content=req.body, headers=dict(req.headers))


def test_malformed_datagrams_are_counted_and_the_listener_keeps_going(xray_apiary: ApiaryProcess, xray: Any) -> None:
    address = ("127.0.0.1", xray_apiary.xray_port)  # type: ignore[attr-defined]
    bad = [b"", b"garbage", b'{"format": "json", "version": 1}\nnot json', b'{"format": "xml"}\n{}',
           datagram({"name": "x", "id": "zz", "trace_id": "1-0-0", "start_time": 1}),
           datagram(_segment("bad-trace", trace_id="5759e988bd862e3fe1be46a994272793")),
           datagram(_segment("no-end", end_time=None)),
           b'{"format": "json", "version": 1}\n' + b"[" * 5000 + b"]" * 5000,
           b'{"format": "json", "version": 1}\n' + json.dumps(_segment("big", metadata={"x": {"y": "a" * 70000}})).encode()[:60000]]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for d in bad:
            s.sendto(d, address)
        s.sendto(datagram(_segment("survivor")), address)
    headers = {"x-honeycomb-team": xray_apiary.key}
    stats = eventually(lambda: (lambda st: st if st["malformed"] >= len(bad) else None)(
        httpx.get(f"{xray_apiary.url}/api/xray/daemon", headers=headers).json()))
    assert stats["malformed"] == len(bad)
    window = {"StartTime": time.time() - 600, "EndTime": time.time() + 60}
    assert eventually(lambda: xray.get_trace_summaries(**window, FilterExpression='service("survivor")')["TraceSummaries"])
    assert "malformed datagram" in xray_apiary.output()


def test_put_trace_segments_reports_each_bad_document(xray: Any) -> None:
    good = _segment("api-put")
    answer = xray.put_trace_segments(TraceSegmentDocuments=[
        json.dumps(good), "{not json", json.dumps(_segment("bad-id", trace_id="1-xyz")),
        json.dumps(_segment("huge", metadata={"default": {"blob": "a" * 70_000}}))])
    unprocessed = answer["UnprocessedTraceSegments"]
    assert len(unprocessed) == 3
    assert "not valid JSON" in unprocessed[0]["Message"]
    assert unprocessed[1]["Id"] == "3333333333333333" and "trace_id" in unprocessed[1]["Message"]
    assert "64" in unprocessed[2]["Message"] or "larger" in unprocessed[2]["Message"]
    window = {"StartTime": time.time() - 600, "EndTime": time.time() + 60}
    # Acknowledged means committed: readable at once.
    assert xray.get_trace_summaries(**window, FilterExpression='service("api-put")')["TraceSummaries"]
    assert xray.batch_get_traces(TraceIds=["1-nope", "1-00000000-000000000000000000000000"])["UnprocessedTraceIds"]


@pytest.mark.parametrize("expression, position", [
    ('service("backend-flask" AND fault', 25),
    ('http.status = "500"', 15),
    ('annotation. = 3', 1),
    ('responsetime >', 15),
    ('nosuchkeyword = 3', 1),
    ('service("a") {', 15),
])
def test_bad_filter_expressions_name_the_position(xray: Any, expression: str, position: int) -> None:
    with pytest.raises(botocore.exceptions.ClientError) as exc:
        xray.get_trace_summaries(StartTime=time.time() - 60, EndTime=time.time(), FilterExpression=expression)
    code, message = _error(exc)
    assert code == "InvalidRequestException"
    assert f"position {position}" in message
    with pytest.raises(botocore.exceptions.ClientError) as exc:
        xray.create_group(GroupName="broken", FilterExpression=expression)
    assert _error(exc)[0] == "InvalidRequestException"


def test_sampling_rule_errors(xray_apiary: ApiaryProcess, xray: Any) -> None:
    rule = {"RuleName": "too-much", "ResourceARN": "*", "Priority": 100, "FixedRate": 2, "ReservoirSize": 1,
            "ServiceName": "*", "ServiceType": "*", "Host": "*", "HTTPMethod": "*", "URLPath": "*", "Version": 1}
    resp = _signed(xray_apiary, "/CreateSamplingRule", {"SamplingRule": rule})
    assert resp.status_code == 400
    assert resp.headers["x-amzn-ErrorType"] == "InvalidRequestException"
    assert "FixedRate must be between 0 and 1" in resp.json()["message"]
    with pytest.raises(botocore.exceptions.ClientError) as exc:
        xray.delete_sampling_rule(RuleName="Default")
    assert _error(exc) == ("InvalidRequestException", "the Default rule cannot be deleted")
    names = [r["SamplingRule"]["RuleName"] for r in xray.get_sampling_rules()["SamplingRuleRecords"]]
    assert "too-much" not in names and "Default" in names


def test_unknown_key_and_bad_signature(xray_apiary: ApiaryProcess) -> None:
    with pytest.raises(botocore.exceptions.ClientError) as exc:
        xray_client(xray_apiary, key="not-a-key-at-all-0000000000000000").get_groups()
    assert _error(exc)[0] == "UnrecognizedClientException"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    with pytest.raises(botocore.exceptions.ClientError) as exc:
        xray_client(xray_apiary, key=xray_apiary.key, secret="the-wrong-secret").get_groups()
    assert _error(exc)[0] == "InvalidSignatureException"
    resp = httpx.post(f"{xray_apiary.url}/Groups", json={})
    assert resp.headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"
