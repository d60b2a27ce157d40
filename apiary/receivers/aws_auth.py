"""Who may call an AWS-compatible operation: the SigV4 signature, then the permission the operation declares.

X-Ray and CloudWatch Logs share it; each turns an `AwsDenied` into its own error shape (the JSON 1.1
``__type`` for Logs, the REST ``x-amzn-ErrorType`` for X-Ray) and its own status.
"""

from __future__ import annotations

from typing import Callable, Mapping

from apiary.permissions import Permission, Refusal, check
from apiary.receivers import aws_sigv4
from apiary.store.meta import ApiKey

CREDENTIALS = "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (an Apiary key as both)"


class AwsDenied(Exception):
    """``code`` is AWS's error type; ``forbidden`` tells a known key without the permission from a bad signature."""

    def __init__(self, code: str, message: str, forbidden: bool = False) -> None:
        super().__init__(message)
        self.code, self.message, self.forbidden = code, message, forbidden


def authorize(lookup: Callable[[str], ApiKey | None], method: str, raw_path: str, query: str,
              headers: Mapping[str, str], body: bytes, *, service: str, action: str,
              need: Permission) -> tuple[ApiKey, str]:
    """(key, signed region) of a correctly signed request whose key may do ``need``; `AwsDenied` otherwise."""
    if not any(k.lower() == "authorization" for k in headers):
        raise AwsDenied("MissingAuthenticationTokenException", "Missing Authentication Token: sign the request with "
                        f"SigV4, using {CREDENTIALS}")
    found: dict[str, ApiKey] = {}

    def lookup_secret(access_key_id: str) -> str | None:
        key = lookup(access_key_id)
        if key is None:
            return None
        found["key"] = key
        return access_key_id  # an Apiary key is its own secret

    try:
        verified = aws_sigv4.verify(method, raw_path, query, headers, body, lookup_secret, service=service)
    except aws_sigv4.UnknownAccessKey:
        raise AwsDenied("UnrecognizedClientException", "The security token included in the request is invalid. "
                        f"Use an Apiary key (`apiary keys list`) as {CREDENTIALS}.") from None
    except aws_sigv4.SigV4Error as exc:
        raise AwsDenied(exc.code, exc.message) from None
    key = found["key"]
    try:
        check(key, need, f"{service}:{action}")
    except Refusal as exc:
        raise AwsDenied("AccessDeniedException", f"User: apiary key {key.masked} is not authorized to perform: "
                        f"{service}:{action} ({exc.message})", forbidden=True) from None
    return key, verified.region
