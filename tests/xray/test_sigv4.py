"""SigV4 verification agrees with botocore's own signer."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from apiary.receivers import aws_sigv4

KEY = "k3y0f32charactersXXXXXXXXXXXXXXX"


def _signed(url: str, body: bytes, secret: str = KEY, service: str = "xray") -> tuple[str, str, dict[str, str]]:
    req = AWSRequest(method="POST", url=url, data=body, headers={"Content-Type": "application/json"})
    SigV4Auth(Credentials(KEY, secret), service, "eu-west-1").add_auth(req)
    parts = urlsplit(url)
    return parts.path, parts.query, {**dict(req.headers), "Host": parts.netloc}


def lookup(key: str) -> str | None:
    return key if key == KEY else None


@pytest.mark.parametrize("url", ["http://127.0.0.1:4318/TraceSummaries", "http://localhost/",
                                 "http://h:1/a%20b/c?x=1&b=hello%20world&a=", "http://h/Groups?z=2&z=1"])
def test_botocore_signatures_verify(url: str) -> None:
    path, query, headers = _signed(url, b'{"a": 1}')
    verified = aws_sigv4.verify("POST", path, query, headers, b'{"a": 1}', lookup, service="xray")
    assert verified == KEY and verified.region == "eu-west-1" and verified.service == "xray"


def test_tampering_and_unknown_keys_are_refused() -> None:
    path, query, headers = _signed("http://h/TraceSummaries", b"{}")
    with pytest.raises(aws_sigv4.SignatureError) as exc:
        aws_sigv4.verify("POST", path, query, headers, b'{"x": 1}', lookup, service="xray")
    assert exc.value.code == "InvalidSignatureException"
    with pytest.raises(aws_sigv4.SignatureError):
        aws_sigv4.verify("POST", "/Traces", query, headers, b"{}", lookup, service="xray")
    path, query, headers = _signed("http://h/TraceSummaries", b"{}", secret="wrong")
    with pytest.raises(aws_sigv4.SignatureError):
        aws_sigv4.verify("POST", path, query, headers, b"{}", lookup, service="xray")
    with pytest.raises(aws_sigv4.UnknownAccessKey) as unknown:
        aws_sigv4.verify("POST", path, query, headers, b"{}", lambda k: None, service="xray")
    assert unknown.value.code == "UnrecognizedClientException"
    with pytest.raises(aws_sigv4.SignatureError) as expired:
        aws_sigv4.verify("POST", path, query, headers, b"{}", lookup, service="xray",
                         now=datetime.now(timezone.utc) + timedelta(hours=1))
    assert "expired" in expired.value.message
