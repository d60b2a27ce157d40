"""Request bodies: size limits and Content-Encoding, shared by every HTTP receiver.

Decompression is bounded by output size, not input size: a 50 KB gzip bomb
that inflates to gigabytes is refused after ``limit`` bytes, never held in
memory whole.
"""

from __future__ import annotations

import asyncio
import time
import zlib

from starlette.requests import Request

from apiary.receivers.body_budget import (HELD_OFF_ANSWER_DELAY_S, SCOPE_KEY, BodyAllowance, BodyTimeout,
                                          EnvironmentOverShare)
from apiary.receivers.refusals import MalformedPayload, PayloadTooLarge, UnsupportedPayload
from apiary.store import read_scope


class BodyTooLarge(PayloadTooLarge):
    @classmethod
    def over(cls, limit: int) -> "BodyTooLarge":
        return cls(f"request body exceeds the limit of {limit} bytes (after decompression); send smaller batches")


class UnsupportedEncoding(UnsupportedPayload):
    pass


class BadEncoding(MalformedPayload):
    pass


SUPPORTED = ("gzip", "deflate", "identity")


def decompress(body: bytes, encoding: str | None, limit: int) -> bytes:
    enc = (encoding or "identity").strip().lower()
    if enc in ("", "identity"):
        if len(body) > limit:
            raise BodyTooLarge.over(limit)
        return body
    if enc == "gzip":
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    elif enc == "deflate":
        d = zlib.decompressobj()
    else:
        raise UnsupportedEncoding(f"Content-Encoding {encoding!r} is not supported; use one of {', '.join(SUPPORTED)}")
    try:
        out = d.decompress(body, limit + 1)
    except zlib.error as exc:
        raise BadEncoding(f"body is not valid {enc} data: {exc}") from None
    if len(out) > limit or d.unconsumed_tail:
        raise BodyTooLarge.over(limit)
    if not d.eof:
        raise BadEncoding(f"body is truncated {enc} data")
    return out


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body, refusing as soon as it passes ``limit`` bytes on the wire.

    Its bytes count against the server's body budget (``body_budget.py``) before they are buffered:
    the declared Content-Length at once, or chunk by chunk without one. ``BodyOverBudget`` (a
    ``StoreOverloaded``: every receiver answers it 429 with Retry-After) when they do not fit, and
    ``BodyTimeout`` when the body takes longer than the body timeout to arrive.

    When the one permission check has let a key through (`apiary.store.read_scope` names its
    environment), the bytes count against that environment's share too, and a body of an environment
    past its share (or held off) is refused here, before a byte of it is read or decoded.
    """
    allowance: BodyAllowance | None = request.scope.get(SCOPE_KEY)
    env = read_scope.environment()
    if allowance is not None and env is not None:
        try:
            allowance.charge_to(env)
        except EnvironmentOverShare as exc:  # held off: answered later, so a sender ignoring Retry-After is slowed
            await asyncio.sleep(min(exc.held_off_s, HELD_OFF_ANSWER_DELAY_S))
            raise
    declared = request.headers.get("content-length")
    expected = int(declared) if declared and declared.isdigit() else None
    if expected is not None and expected > limit:
        raise BodyTooLarge.over(limit)
    if allowance is not None and expected:
        allowance.take(expected, expected)
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout_at(_loop_deadline(allowance)):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise BodyTooLarge.over(limit)
                if allowance is not None and (expected is None or size > expected):
                    allowance.take(len(chunk), size)
                chunks.append(chunk)
    except TimeoutError:
        raise BodyTimeout(f"request body not received within {allowance.timeout_s if allowance else 0:g} s") from None
    return b"".join(chunks)


def _loop_deadline(allowance: BodyAllowance | None) -> float | None:
    """The allowance's monotonic deadline on the event loop's clock (None: no deadline)."""
    if allowance is None:
        return None
    return asyncio.get_running_loop().time() + (allowance.deadline - time.monotonic())
