"""Request bodies: size limits and Content-Encoding, shared by every HTTP receiver.

Decompression is bounded by output size, not input size: a 50 KB gzip bomb
that inflates to gigabytes is refused after ``limit`` bytes, never held in
memory whole.
"""

from __future__ import annotations

import zlib

from starlette.requests import Request

from apiary.receivers.refusals import MalformedPayload, PayloadTooLarge, UnsupportedPayload


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
    """The raw body, refusing as soon as it passes ``limit`` bytes on the wire."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge.over(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge.over(limit)
        chunks.append(chunk)
    return b"".join(chunks)
