"""PutLogEvents and the Logs API refuse bad input in AWS's words, and leave what is stored untouched."""

from __future__ import annotations

import time
from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config

from tests.stores import Tenant


@pytest.fixture
def stream(logs: Any) -> list[str]:
    logs.create_log_group(logGroupName="app")
    logs.create_log_stream(logGroupName="app", logStreamName="s")
    now = int(time.time() * 1000)
    kept = [f"kept {i}" for i in range(3)]
    logs.put_log_events(logGroupName="app", logStreamName="s", logEvents=[{"timestamp": now, "message": m} for m in kept])
    return kept


def stored(logs: Any) -> list[str]:
    return [e["message"] for e in logs.get_log_events(logGroupName="app", logStreamName="s", startFromHead=True)["events"]]


def put(logs: Any, events: list[dict[str, Any]], stream: str = "s") -> dict[str, Any]:
    return logs.put_log_events(logGroupName="app", logStreamName=stream, logEvents=events)


def test_limits_and_order(logs: Any, stream: list[str]) -> None:
    now = int(time.time() * 1000)
    with pytest.raises(logs.exceptions.InvalidParameterException, match="less than or equal to 10000"):
        put(logs, [{"timestamp": now, "message": "x"} for _ in range(10_001)])
    with pytest.raises(logs.exceptions.InvalidParameterException, match="Upload too large"):
        put(logs, [{"timestamp": now, "message": "y" * 100_000} for _ in range(11)])  # 11 * (100,000 + 26) > 1 MiB
    with pytest.raises(logs.exceptions.InvalidParameterException, match="chronological order"):
        put(logs, [{"timestamp": now, "message": "b"}, {"timestamp": now - 1, "message": "a"}])
    with pytest.raises(logs.exceptions.InvalidParameterException, match="24 hours"):
        put(logs, [{"timestamp": now - 25 * 3600_000, "message": "a"}, {"timestamp": now, "message": "b"}])
    with pytest.raises(logs.exceptions.ResourceNotFoundException, match="log stream does not exist"):
        put(logs, [{"timestamp": now, "message": "x"}], stream="missing")
    assert stored(logs) == stream
    # 10,000 events inside 1 MiB are fine.
    r = put(logs, [{"timestamp": now + i // 100, "message": f"e{i}"} for i in range(10_000)])
    assert "rejectedLogEventsInfo" not in r
    page = logs.get_log_events(logGroupName="app", logStreamName="s", startFromHead=True)  # at most 10,000 a page
    rest = logs.get_log_events(logGroupName="app", logStreamName="s", nextToken=page["nextForwardToken"])
    assert len(page["events"]) + len(rest["events"]) == 10_003 and page["events"][0]["message"] == "kept 0"


def test_too_old_and_too_new_events_are_rejected_not_fatal(logs: Any, stream: list[str]) -> None:
    now = int(time.time() * 1000)
    events = [{"timestamp": now - 15 * 86_400_000 + i, "message": f"old {i}"} for i in range(2)]
    # A batch cannot span 24 h, so "too old" and "too new" are tried in two calls.
    r = put(logs, events)
    assert r["rejectedLogEventsInfo"] == {"tooOldLogEventEndIndex": 2}
    r = put(logs, [{"timestamp": now, "message": "fresh"}, {"timestamp": now + 3 * 3600_000, "message": "future"}])
    assert r["rejectedLogEventsInfo"] == {"tooNewLogEventStartIndex": 1}
    assert stored(logs) == stream + ["fresh"]


def test_malformed_json_unknown_key_and_bad_signature(aws_env: Tenant, logs: Any, stream: list[str]) -> None:
    r = httpx.post(aws_env.url + "/", content=b'{"logGroupName": ', headers={
        "X-Amz-Target": "Logs_20140328.DescribeLogGroups", "Content-Type": "application/x-amz-json-1.1"})
    assert r.status_code == 400 and r.json()["__type"] == "MissingAuthenticationTokenException"
    # A correctly signed request whose body is not JSON.
    signed = logs._endpoint  # noqa: F841 - botocore signs bodies it builds, so sign a raw one by hand
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    req = AWSRequest("POST", aws_env.url + "/", data=b'{"logGroupName": ', headers={
        "X-Amz-Target": "Logs_20140328.DescribeLogGroups", "Content-Type": "application/x-amz-json-1.1"})
    SigV4Auth(Credentials(aws_env.key, aws_env.key), "logs", "us-east-1").add_auth(req)
    r = httpx.post(aws_env.url + "/", content=req.body, headers=dict(req.headers))
    assert r.status_code == 400 and r.json()["__type"] == "SerializationException"

    unknown = boto3.session.Session().client("logs", aws_access_key_id="A" * 32, aws_secret_access_key="A" * 32,
                                             config=Config(retries={"max_attempts": 1}))
    with pytest.raises(unknown.exceptions.ClientError, match="UnrecognizedClientException"):
        unknown.put_log_events(logGroupName="app", logStreamName="s", logEvents=[{"timestamp": 1, "message": "x"}])
    wrong = boto3.session.Session().client("logs", aws_access_key_id=aws_env.key, aws_secret_access_key="not-the-key",
                                           config=Config(retries={"max_attempts": 1}))
    with pytest.raises(wrong.exceptions.ClientError, match="InvalidSignatureException"):
        wrong.put_log_events(logGroupName="app", logStreamName="s",
                             logEvents=[{"timestamp": int(time.time() * 1000), "message": "x"}])
    assert stored(logs) == stream
