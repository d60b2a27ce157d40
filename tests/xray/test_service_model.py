"""Every operation of botocore's X-Ray service model is served and answers in X-Ray's words.

A path Apiary did not serve used to answer the UI's plain-text 404, which botocore cannot parse; later the
operations Apiary lacked (the four Insights ones, the last) were refused by name. Now every one is served.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import botocore.exceptions
import botocore.session
import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from apiary.receivers.xray.api import routes
from tests.server import ApiaryProcess

#: Every operation's answer shape; the reads run on both stores in the other modules.
STORES = ["duckdb"]

MODEL = botocore.session.get_session().get_service_model("xray")


def _signed_post(apiary: ApiaryProcess, path: str, body: bytes) -> httpx.Response:
    req = AWSRequest(method="POST", url=apiary.url + path, data=body, headers={"Content-Type": "application/json"})
    SigV4Auth(Credentials(apiary.key, apiary.key), "xray", "us-east-1").add_auth(req)
    return httpx.post(apiary.url + path, content=body, headers=dict(req.headers), timeout=60)


@pytest.mark.parametrize("operation", MODEL.operation_names)
def test_every_operation_answers_in_xrays_words(xray_apiary: ApiaryProcess, operation: str) -> None:
    http = MODEL.operation_model(operation).http
    assert http["method"] == "POST"
    r = _signed_post(xray_apiary, http["requestUri"], b"{}")
    assert r.headers["content-type"].startswith("application/json"), (operation, r.status_code, r.text)
    if r.status_code >= 300:
        assert r.headers.get("x-amzn-ErrorType"), (operation, r.status_code, r.text)
        assert r.json()["message"], (operation, r.text)


def test_apiary_serves_every_operation_of_the_model() -> None:
    served = {route.path for route in routes}
    assert {MODEL.operation_model(op).http["requestUri"] for op in MODEL.operation_names} <= served


def test_encryption_config_and_the_daemons_telemetry(xray: Any) -> None:
    assert xray.get_encryption_config()["EncryptionConfig"] == {"Status": "ACTIVE", "Type": "NONE"}
    assert xray.put_encryption_config(Type="NONE")["EncryptionConfig"]["Type"] == "NONE"
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        xray.put_encryption_config(Type="KMS", KeyId="alias/cruddur")
    assert caught.value.response["Error"]["Code"] == "InvalidRequestException"
    record = {"Timestamp": datetime.now(timezone.utc), "SegmentsReceivedCount": 12, "SegmentsSentCount": 12,
              "SegmentsSpilloverCount": 0, "SegmentsRejectedCount": 0}
    answer = xray.put_telemetry_records(TelemetryRecords=[record], EC2InstanceId="i-0123", Hostname="cruddur")
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 200
