"""Why a request was refused, said once for every transport that answers it.

A receiver raises what went wrong (a malformed payload, a body past the
limit, a store that cannot take more yet); `refusal_for` turns that into one
`Refusal` carrying both the HTTP status and the gRPC code, so OTLP/HTTP,
OTLP/gRPC and any other receiver answer the same error the same way instead
of each keeping its own ``except`` ladder. Codes follow the OTLP
specification's tables: only overload and unavailability are retryable, and
those carry how long to wait.
"""

from __future__ import annotations

from dataclasses import dataclass

from google.rpc import code_pb2

from apiary.receivers.body_budget import BodyOverBudget
from apiary.store.base import EnvironmentOverloaded, StoreOverloaded, StoreUnavailable


class MalformedPayload(ValueError):
    """The body cannot be decoded as the protocol's message; the text says what to fix."""


class PayloadTooLarge(ValueError):
    """The body (after decompression) is past the configured limit."""


class UnsupportedPayload(ValueError):
    """The body is in an encoding or content type the receiver does not take."""


@dataclass(frozen=True)
class Refusal:
    http_status: int
    #: A ``google.rpc.Code`` value, as gRPC status codes and OTLP/HTTP ``Status`` bodies use.
    grpc_code: int
    message: str
    #: Seconds the client should wait before retrying; None for an error retrying cannot fix.
    retry_after: int | None = None


def refusal_for(exc: BaseException, noun: str = "records") -> Refusal | None:
    """The answer for one of Apiary's errors, or None for an error that is a bug (let it propagate)."""
    if isinstance(exc, PayloadTooLarge):
        return Refusal(413, code_pb2.INVALID_ARGUMENT, str(exc))
    if isinstance(exc, UnsupportedPayload):
        return Refusal(415, code_pb2.INVALID_ARGUMENT, str(exc))
    if isinstance(exc, MalformedPayload):
        return Refusal(400, code_pb2.INVALID_ARGUMENT, str(exc))
    if isinstance(exc, (BodyOverBudget, EnvironmentOverloaded)):  # the bytes in flight or an environment's share: its message says which
        return Refusal(429, code_pb2.RESOURCE_EXHAUSTED, str(exc), exc.retry_after)
    if isinstance(exc, StoreOverloaded):
        return Refusal(429, code_pb2.RESOURCE_EXHAUSTED, f"too many {noun} waiting to be committed; retry later",
                       exc.retry_after)
    if isinstance(exc, StoreUnavailable):
        return Refusal(503, code_pb2.UNAVAILABLE, str(exc), exc.retry_after)
    return None


def unauthenticated(message: str) -> Refusal:
    return Refusal(401, code_pb2.UNAUTHENTICATED, message)
