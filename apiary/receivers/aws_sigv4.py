"""AWS Signature Version 4 verification, for every AWS-compatible API Apiary answers (X-Ray, CloudWatch Logs).

An Apiary key is both the access key id and the secret, so the server can
recompute the signature the client made with it. The algorithm is AWS's
documented one (the same botocore's ``SigV4Auth`` signs with):

    canonical request  = method, URI, query, headers, signed header names, sha256(body)
    string to sign     = "AWS4-HMAC-SHA256", X-Amz-Date, scope, sha256(canonical request)
    signing key        = HMAC chain over "AWS4"+secret, date, region, service, "aws4_request"

Usage::

    access_key = verify("POST", "/TraceSummaries", "", headers, body, lookup_secret, service="xray")

As AWS verifies it for its JSON services (X-Ray, CloudWatch Logs): the payload hash in the canonical
request is always the server's own SHA-256 of the body, so a body swapped under a captured signature
fails; an ``X-Amz-Content-SHA256`` header that disagrees with the body, ``UNSIGNED-PAYLOAD`` included
(which AWS accepts from S3 clients only), is refused before the signature is computed. The scope's
service must be the API's (``logs``, ``xray``); its region may be any AWS-shaped region name, but it is
the one the signing key was derived from, and a ``Host`` of ``<service>.<region>.amazonaws.com`` must
name the same region.

``lookup_secret(access_key_id)`` answers the secret, or None for an unknown key.
The answer is a `Verified`: a ``str`` (the access key id) that also carries ``.access_key_id``,
``.region`` and ``.service`` from the credential scope. Errors are `SigV4Error` carrying AWS's own
error code, for the caller's AWS error shape: `UnknownAccessKey` (UnrecognizedClientException) or
`SignatureError` (InvalidSignatureException, IncompleteSignatureException, ...).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import datetime, timedelta, timezone
from typing import Callable, Mapping
from urllib.parse import parse_qsl, quote

ALGORITHM = "AWS4-HMAC-SHA256"
#: AWS refuses requests signed more than 15 minutes away from its clock.
MAX_SKEW = timedelta(minutes=15)
_AUTH = re.compile(r"^AWS4-HMAC-SHA256\s+(.*)$", re.S)
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$")
_AWS_HOST = re.compile(r"^([a-z0-9-]+)\.([a-z0-9-]+)\.amazonaws\.com(:\d+)?$")
MISMATCH = ("The request signature we calculated does not match the signature you provided. "
            "Check your AWS Secret Access Key and signing method.")


class SigV4Error(Exception):
    """``code`` is the AWS error type (``x-amzn-ErrorType``); ``status`` the HTTP status AWS answers with."""

    def __init__(self, code: str, message: str, status: int = 403) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


class UnknownAccessKey(SigV4Error):
    """``lookup_secret`` did not know the access key id."""


class SignatureError(SigV4Error):
    """The signature is missing, malformed, expired or wrong."""


class Verified(str):
    """The access key id a request was signed with, plus its credential scope."""

    access_key_id: str
    region: str
    service: str

    def __new__(cls, access_key_id: str, region: str, service: str) -> "Verified":
        self = super().__new__(cls, access_key_id)
        self.access_key_id = access_key_id
        self.region = region
        self.service = service
        return self


def verify(request_method: str, path: str, query: str, headers: Mapping[str, str], body: bytes,
           lookup_secret: Callable[[str], str | None], *, service: str, now: datetime | None = None) -> Verified:
    """Check the request's SigV4 ``Authorization`` header; return the access key id it was signed with.

    ``path`` is the path as sent (still percent-encoded), ``query`` the raw query string,
    ``headers`` the request headers (any case) and ``service`` the signing name of the API answering.
    """
    lower = {k.lower(): v for k, v in headers.items()}
    auth = lower.get("authorization")
    if not auth:
        raise SignatureError("MissingAuthenticationTokenException", "Missing Authentication Token: sign the request "
                         "with SigV4, using an Apiary key as both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
    m = _AUTH.match(auth.strip())
    if not m:
        raise SignatureError("IncompleteSignatureException", f"Authorization header must use {ALGORITHM}", 400)
    parts: dict[str, str] = {}
    for item in m.group(1).split(","):
        k, sep, v = item.strip().partition("=")
        if sep:
            parts[k.strip()] = v.strip()
    missing = [k for k in ("Credential", "SignedHeaders", "Signature") if k not in parts]
    if missing:
        raise SignatureError("IncompleteSignatureException",
                         f"Authorization header requires {', '.join(missing)} parameter(s)", 400)
    scope_parts = parts["Credential"].split("/")
    if len(scope_parts) != 5 or scope_parts[4] != "aws4_request":
        raise SignatureError("IncompleteSignatureException",
                         "Credential must look like <key>/<yyyymmdd>/<region>/<service>/aws4_request", 400)
    access_key, date, region, scoped_service, _ = scope_parts
    if scoped_service != service:
        raise SignatureError("InvalidSignatureException", f"Credential should be scoped to correct service: '{service}'. ")
    on_aws = _AWS_HOST.match(lower.get("host", ""))
    if not _REGION.match(region) or (on_aws and on_aws.group(2) != region):
        raise SignatureError("InvalidSignatureException", "Credential should be scoped to a valid region. ")
    amz_date = lower.get("x-amz-date", "")
    try:
        signed_at = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
    except ValueError:
        raise SignatureError("IncompleteSignatureException", "X-Amz-Date header missing or not yyyymmddThhmmssZ", 400) from None
    secret = lookup_secret(access_key)
    if secret is None:
        raise UnknownAccessKey("UnrecognizedClientException", "The security token included in the request is invalid: "
                         "unknown access key id (use an Apiary key: `apiary keys create <env>`)")
    current = now or datetime.now(timezone.utc)
    if abs(current - signed_at) > MAX_SKEW:
        raise SignatureError("InvalidSignatureException", f"Signature expired: {amz_date} is more than 15 minutes "
                         f"from the server's time {current:%Y%m%dT%H%M%SZ}")
    if not amz_date.startswith(date):
        raise SignatureError("InvalidSignatureException", "Credential date does not match X-Amz-Date")
    signed_headers = parts["SignedHeaders"].lower().split(";")
    if "host" not in signed_headers:
        raise SignatureError("InvalidSignatureException", "SignedHeaders must include host")
    body_hash = hashlib.sha256(body).hexdigest()
    claimed = lower.get("x-amz-content-sha256")
    if claimed is not None and claimed.lower() != body_hash:
        # Not S3: the body is always hashed here, so a claimed hash is a signature over another payload.
        raise SignatureError("InvalidSignatureException", MISMATCH + " The payload must be signed: "
                             "X-Amz-Content-SHA256 does not match the body" +
                             (" (UNSIGNED-PAYLOAD is accepted by S3 only)" if claimed == "UNSIGNED-PAYLOAD" else ""))
    scope = f"{date}/{region}/{service}/aws4_request"
    expected = signature(secret, request_method, path, query, lower, signed_headers, body_hash, amz_date, scope)
    if not hmac.compare_digest(expected, parts["Signature"].lower()):
        raise SignatureError("InvalidSignatureException", MISMATCH)
    return Verified(access_key, region, service)


def signature(secret: str, method: str, path: str, query: str, lower_headers: Mapping[str, str],
              signed_headers: list[str], payload_hash: str, amz_date: str, scope: str) -> str:
    """The hex signature a client holding ``secret`` computes for a request whose body hashes to ``payload_hash``."""
    canonical = "\n".join([
        method.upper(),
        quote(path or "/", safe="/~"),
        _canonical_query(query),
        "".join(f"{h}:{_collapse(lower_headers.get(h, ''))}\n" for h in signed_headers),
        ";".join(signed_headers),
        payload_hash,
    ])
    to_sign = "\n".join([ALGORITHM, amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    date, region, service, terminal = scope.split("/")
    key = _hmac(("AWS4" + secret).encode(), date)
    for part in (region, service, terminal):
        key = _hmac(key, part)
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def _collapse(value: str) -> str:
    return " ".join(value.strip().split())


def _canonical_query(query: str) -> str:
    if not query:
        return ""
    pairs = parse_qsl(query, keep_blank_values=True)
    return "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in sorted(pairs))
