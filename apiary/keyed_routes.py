"""Routes keyed by ``X-Honeycomb-Team``: Honeycomb's APIs, Apiary's own JSON API and the UI's calls.

The check lives outside every receiver so that the query API, the trace API
and the UI use it without importing a receiver (``tests/test_layering.py``).
It reads only ``app.state.key_lookup``, the server's cached key check, never
the server itself. Answers are Honeycomb's: JSON ``{"error": ...}``, 401 for
a missing or unknown key, 403 for a key without the permission.
"""

from __future__ import annotations

import functools
from typing import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from apiary.permissions import Permission, Refusal, permission_of, resolve
from apiary.store.meta import ApiKey

KEY_HEADER = "X-Honeycomb-Team"
#: What ``app.state.key_lookup`` is: a key's record, or None for a missing or unknown key.
KeyLookup = Callable[[str | None], ApiKey | None]


def error(status: int, message: str, retry_after: int | None = None) -> JSONResponse:
    headers = {"Retry-After": str(retry_after)} if retry_after else None
    return JSONResponse({"error": message}, status, headers)


def refused(exc: Refusal) -> JSONResponse:
    """Honeycomb's answer: 401 for a missing or unknown key, 403 for a key without the permission."""
    return error(403 if exc.authenticated else 401, exc.message)


def authorize(request: Request, need: Permission) -> ApiKey | JSONResponse:
    """The ``X-Honeycomb-Team`` key if it may do ``need`` (`apiary.permissions.resolve`), else the refusal."""
    lookup: KeyLookup = request.app.state.key_lookup
    try:
        key = resolve(request.headers.get(KEY_HEADER), need, lookup, f"{request.method} {request.url.path}",
                      f"the {KEY_HEADER} header")
    except Refusal as exc:
        return refused(exc)
    assert key is not None, "a keyed route declared PUBLIC"
    return key


KeyedEndpoint = Callable[[Request, ApiKey], Awaitable[Response]]


def guarded(endpoint: KeyedEndpoint) -> Callable[[Request], Awaitable[Response]]:
    """The route endpoint for ``endpoint(request, key)``: it runs once the key holds what ``endpoint`` `needs`.

    Every route keyed by ``X-Honeycomb-Team`` is built with it, so a route without a declared permission
    cannot be built at all.
    """
    need = permission_of(endpoint)

    @functools.wraps(endpoint)
    async def run(request: Request) -> Response:
        key = authorize(request, need)
        if isinstance(key, Response):
            return key
        return await endpoint(request, key)

    run.permission = need  # type: ignore[attr-defined]
    return run
