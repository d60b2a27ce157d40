"""What every HTTP request passes through: security headers, its share of the body budget, timeouts.

* ``Guard`` (ASGI middleware, outermost): every response gets
  ``X-Content-Type-Options: nosniff``, and the UI's Content-Security-Policy and
  frame options (the static app shell at ``/ui/static/index.html`` was served
  without them, while the page routes set them). It also gives each request its
  ``BodyAllowance`` of the server's body budget and gives the bytes back once the
  response is sent; a body that does not arrive in time is answered 408
  (``EXCEPTION_HANDLERS``). A response that starts before the application has
  had the whole request body (a 429, 413 or 401 given before reading it) says
  ``Connection: close``: the body is not read to keep the connection alive,
  the connection ends with a lingering close (``lingering_close.py``).
* ``HeaderTimeoutProtocol`` (uvicorn's HTTP protocol with one timer more, and the lingering close):
  uvicorn closes idle keep-alive connections but never times out a request's
  headers, so 1,200 slowloris connections sending a header byte now and then
  were all held open. Here a connection that has not finished its headers
  ``header_timeout_s`` after it opened (or after its previous response) is closed.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from apiary.receivers.body_budget import SCOPE_KEY, BodyAllowance, BodyBudget, BodyTimeout
from apiary.server.lingering_close import LingeringCloseProtocol
from apiary.store.base import StoreUnavailable

#: The UI's policy: its own scripts and styles only, never framed.
CONTENT_SECURITY_POLICY = ("default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
                           "object-src 'none'; frame-ancestors 'none'")
SECURITY_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
)


class Guard:
    def __init__(self, app: ASGIApp, budget: BodyBudget, body_timeout_s: float) -> None:
        self.app = app
        self.budget = budget
        self.body_timeout_s = body_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        allowance = BodyAllowance(self.budget, self.body_timeout_s)
        scope[SCOPE_KEY] = allowance
        body_unread = _has_body(scope)

        async def receive_tracked() -> Message:
            nonlocal body_unread
            message = await receive()
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_unread = False
            return message

        async def send_secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS:
                    if name.decode() not in headers:
                        headers.append(name.decode(), value.decode())
                if body_unread:  # answered before reading it: the body is not read just to reuse the connection
                    headers["connection"] = "close"
            await send(message)

        try:
            await self.app(scope, receive_tracked, send_secured)
        finally:
            allowance.release()


def _has_body(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"transfer-encoding" or (name == b"content-length" and value.strip() not in (b"", b"0")):
            return True
    return False


async def body_too_slow(request: Request, exc: Exception) -> Response:
    return PlainTextResponse(f"{exc}; send the whole body promptly", 408, headers={"Connection": "close"})


async def store_unavailable(request: Request, exc: Exception) -> Response:
    """A store that cannot answer completely (a read whose acknowledged rows are not loaded yet) says so."""
    return JSONResponse({"error": str(exc)}, 503, headers={"Retry-After": str(getattr(exc, "retry_after", 5))})


#: For ``Starlette(exception_handlers=...)``: what reaches no receiver's own handling.
EXCEPTION_HANDLERS = {BodyTimeout: body_too_slow, StoreUnavailable: store_unavailable}


class HeaderTimeoutProtocol(LingeringCloseProtocol):
    """uvicorn's httptools protocol, closing connections whose request headers do not arrive in time."""

    header_timeout_s = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._header_timer is None:
            self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._disarm()  # the keep-alive timer now watches the idle connection; a new request re-arms this

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._headers_too_slow)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            self.transport.close()


def protocol_with_header_timeout(seconds: float) -> type[HeaderTimeoutProtocol]:
    """The protocol class uvicorn is given (``uvicorn.Config(http=...)``), with this server's timeout."""
    return type("ApiaryHttpProtocol", (HeaderTimeoutProtocol,), {"header_timeout_s": seconds})
