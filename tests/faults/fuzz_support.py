"""What the fuzz tests share: one server with every receiver, signed AWS requests, and the check that an answer is no 5xx."""

from __future__ import annotations

import json
from typing import Any

import boto3
import httpx
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError, ParamValidationError
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from tests.server import ApiaryProcess

#: Bounded so the whole fuzz set runs in a couple of minutes on the shared two cores.
FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
                database=None)

scalars = (st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
           | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=30))
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=25)

#: Inputs every receiver must answer with 400, named once (each test adds them as explicit examples).
DEEP_JSON = b"[" * 100_000 + b"]" * 100_000
DEEP_OBJECT = b'{"a":' * 5_000 + b"1" + b"}" * 5_000
LONE_SURROGATE = '"\\ud800"'
NESTED_PARENS = "(" * 300 + "a" + ")" * 300
LOG_GROUP = "fuzz-group"


def no_server_error(r: httpx.Response) -> httpx.Response:
    """The server answered (a dropped connection raises before this) and not with a 5xx."""
    assert r.status_code < 500, f"{r.status_code}: {r.text[:300]}"
    return r


def dumps(doc: Any) -> bytes:
    """JSON as a client could send it, NaN and Infinity written bare (Python's json and libhoney do)."""
    return json.dumps(doc).encode("utf-8", "surrogatepass")


def signed(server: ApiaryProcess, service: str, path: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    """A request signed by botocore's own SigV4 signer, as boto3 signs it, with any body."""
    req = AWSRequest(method="POST", url=f"{server.url}{path}", data=body, headers=headers)
    SigV4Auth(Credentials(server.key, server.key), service, "us-east-1").add_auth(req)
    return httpx.post(f"{server.url}{path}", content=body, headers=dict(req.headers.items()), timeout=30)


def aws_client(server: ApiaryProcess, service: str) -> Any:
    return boto3.client(service, endpoint_url=server.url, region_name="us-east-1", aws_access_key_id=server.key,
                        aws_secret_access_key=server.key, config=Config(retries={"total_max_attempts": 1}))


def no_aws_server_error(call: Any, **params: Any) -> dict[str, Any] | None:
    """Run a boto3 call; an AWS error is fine when it is not a 5xx (a dropped connection raises)."""
    try:
        return call(**params)
    except ParamValidationError:  # refused by botocore before sending: nothing reached the server
        return None
    except ClientError as exc:
        status = exc.response["ResponseMetadata"]["HTTPStatusCode"]
        assert status < 500, f"{status}: {exc}"
        return None

