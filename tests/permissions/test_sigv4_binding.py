"""SigV4 as AWS verifies it for JSON services: the body is bound to the signature, and the scope must name the
API's service and a region. A captured request replayed with another body stores nothing."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from typing import Any

import boto3
import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from apiary.receivers import aws_sigv4
from tests.permissions.conftest import LOG_GROUP, SECRET, Server

MISMATCH = "The request signature we calculated does not match the signature you provided."


def signed(url: str, key: str, body: bytes, headers: dict[str, str], service: str = "logs",
           region: str = "us-east-1") -> dict[str, str]:
    """Headers botocore's signer makes; an ``X-Amz-Content-SHA256`` header given here is what it signs as the payload."""
    req = AWSRequest(method="POST", url=url, data=body, headers=headers)
    SigV4Auth(Credentials(key, key), service, region).add_auth(req)
    return dict(req.headers)


def put(message: str) -> bytes:
    return json.dumps({"logGroupName": LOG_GROUP, "logStreamName": "s",
                       "logEvents": [{"timestamp": int(time.time() * 1000), "message": message}]}).encode()


def messages(server: Server) -> list[str]:
    logs = boto3.session.Session().client("logs", endpoint_url=server.url, region_name="us-east-1",
                                          aws_access_key_id=server.keys.read, aws_secret_access_key=server.keys.read)
    return [e["message"] for e in logs.get_log_events(logGroupName=LOG_GROUP, logStreamName="s")["events"]]


def captured_put_log_events(server: Server) -> tuple[dict[str, str], bytes]:
    """A real boto3 PutLogEvents, sent and stored; its signed headers and body as an eavesdropper would keep them."""
    logs = boto3.session.Session().client("logs", endpoint_url=server.url, region_name="us-east-1",
                                          aws_access_key_id=server.keys.ingest,
                                          aws_secret_access_key=server.keys.ingest)
    seen: dict[str, Any] = {}

    def keep(request: Any, **_: Any) -> None:
        seen["headers"], seen["body"] = dict(request.headers), request.body

    logs.meta.events.register("before-send.logs.PutLogEvents", keep)
    logs.put_log_events(logGroupName=LOG_GROUP, logStreamName="s",
                        logEvents=[{"timestamp": int(time.time() * 1000), "message": "genuine"}])
    headers = {k: v.decode() if isinstance(v, bytes) else v for k, v in seen["headers"].items()}
    return headers, seen["body"]


def test_a_captured_request_replayed_with_another_body_is_refused(seeded: Server) -> None:
    headers, body = captured_put_log_events(seeded)
    assert "genuine" in messages(seeded)
    forged = body.replace(b"genuine", b"forged!")
    r = httpx.post(seeded.url + "/", content=forged, headers=headers)
    assert r.status_code == 400 and r.json()["__type"] == "InvalidSignatureException", r.text
    assert r.json()["message"].startswith(MISMATCH)
    assert "forged!" not in messages(seeded)


@pytest.mark.parametrize("claimed", ["UNSIGNED-PAYLOAD", "hash of the body it was signed for"])
def test_a_signed_payload_hash_that_is_not_the_body_is_refused(seeded: Server, claimed: str) -> None:
    """The attack of the review: sign a claimed X-Amz-Content-SHA256, then send any body under it."""
    original = put("the body that was signed")
    value = claimed if claimed == "UNSIGNED-PAYLOAD" else hashlib.sha256(original).hexdigest()
    headers = signed(seeded.url + "/", seeded.keys.ingest, original,
                     {"X-Amz-Target": "Logs_20140328.PutLogEvents", "Content-Type": "application/x-amz-json-1.1",
                      "X-Amz-Content-SHA256": value})
    r = httpx.post(seeded.url + "/", content=put("another body"), headers=headers)
    assert r.status_code == 400 and r.json()["__type"] == "InvalidSignatureException", r.text
    assert "X-Amz-Content-SHA256 does not match the body" in r.json()["message"]
    if claimed == "UNSIGNED-PAYLOAD":
        assert "S3 only" in r.json()["message"]
    # The same header with the true hash is what botocore sends over https to S3-style services; it is accepted.
    ok = signed(seeded.url + "/", seeded.keys.ingest, original,
                {"X-Amz-Target": "Logs_20140328.PutLogEvents", "Content-Type": "application/x-amz-json-1.1",
                 "X-Amz-Content-SHA256": hashlib.sha256(original).hexdigest()})
    assert httpx.post(seeded.url + "/", content=original, headers=ok).status_code == 200
    assert "another body" not in messages(seeded)


@pytest.mark.parametrize("service, region, status, message", [
    ("s3", "us-east-1", 400, "Credential should be scoped to correct service: 'logs'."),
    ("xray", "us-east-1", 400, "Credential should be scoped to correct service: 'logs'."),
    ("logs", "not a region", 400, "Credential should be scoped to a valid region."),
])
def test_logs_refuses_a_scope_of_another_service_or_no_region(seeded: Server, service: str, region: str, status: int,
                                                              message: str) -> None:
    body = put("scoped wrong")
    headers = signed(seeded.url + "/", seeded.keys.ingest, body,
                     {"X-Amz-Target": "Logs_20140328.PutLogEvents", "Content-Type": "application/x-amz-json-1.1"},
                     service=service, region=region)
    r = httpx.post(seeded.url + "/", content=body, headers=headers)
    assert r.status_code == status and r.json()["__type"] == "InvalidSignatureException", r.text
    assert r.json()["message"].strip() == message
    assert "scoped wrong" not in messages(seeded)


def test_xray_refuses_a_logs_scope_and_accepts_any_region_it_was_signed_for(seeded: Server) -> None:
    body = b"{}"
    r = httpx.post(seeded.url + "/Groups", content=body,
                   headers=signed(seeded.url + "/Groups", seeded.keys.read, body, {}, service="logs"))
    assert r.status_code == 403 and r.headers["x-amzn-ErrorType"] == "InvalidSignatureException"
    assert r.json()["message"].strip() == "Credential should be scoped to correct service: 'xray'."
    xray = boto3.session.Session().client("xray", endpoint_url=seeded.url, region_name="ap-southeast-2",
                                          aws_access_key_id=seeded.keys.read, aws_secret_access_key=seeded.keys.read)
    assert LOG_GROUP in {g["GroupName"] for g in xray.get_groups()["Groups"]}


def test_an_amazonaws_host_must_name_the_signed_region() -> None:
    key = "k" * 32
    url = "https://logs.eu-west-1.amazonaws.com/"
    target = {"X-Amz-Target": "Logs_20140328.DescribeLogGroups", "Host": "logs.eu-west-1.amazonaws.com"}
    headers = signed(url, key, b"{}", target, region="us-east-1")
    with pytest.raises(aws_sigv4.SignatureError) as exc:
        aws_sigv4.verify("POST", "/", "", headers, b"{}", lambda k: k, service="logs")
    assert exc.value.message.strip() == "Credential should be scoped to a valid region."
    headers = signed(url, key, b"{}", target, region="eu-west-1")
    assert aws_sigv4.verify("POST", "/", "", headers, b"{}", lambda k: k, service="logs").region == "eu-west-1"


def awscli(server: Server, key: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": key, "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_PAGER": ""}
    env.pop("AWS_PROFILE", None)
    return subprocess.run([sys.executable, "-m", "awscli", *args, "--endpoint-url", server.url, "--output", "json"],
                          capture_output=True, text=True, env=env, timeout=60)


def test_awscli_still_signs_what_the_server_verifies_and_hears_the_refusals(seeded: Server) -> None:
    done = awscli(seeded, seeded.keys.read, "xray", "create-group", "--group-name", "from-cli")
    assert done.returncode == 0, done.stderr
    done = awscli(seeded, seeded.keys.read, "logs", "filter-log-events", "--log-group-name", LOG_GROUP)
    assert done.returncode == 0 and SECRET in done.stdout, done.stderr
    done = awscli(seeded, seeded.keys.ingest, "logs", "delete-log-group", "--log-group-name", LOG_GROUP)
    assert done.returncode != 0 and "(AccessDeniedException) when calling the DeleteLogGroup operation" in done.stderr
    done = awscli(seeded, seeded.keys.ingest, "xray", "delete-group", "--group-name", "from-cli")
    assert done.returncode != 0 and "(AccessDeniedException) when calling the DeleteGroup operation" in done.stderr
    done = awscli(seeded, seeded.keys.read, "xray", "get-group", "--group-name", "from-cli")
    assert done.returncode == 0 and json.loads(done.stdout)["Group"]["GroupName"] == "from-cli"
