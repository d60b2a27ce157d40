"""ASGI middleware: a read that could not see every acknowledged row answers ``X-Apiary-Unloaded-Rows: <n>``.

``apiary.store.read_freshness`` explains when that happens (the database
refuses loads, e.g. its disk is full). The header is on every kind of
answer -- Honeycomb query results, the X-Ray and CloudWatch read APIs, the
UI's JSON -- because each of them reads through the same store.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from apiary.store.read_freshness import watching

HEADER = b"x-apiary-unloaded-rows"


class FreshnessHeader:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        with watching() as unloaded:
            async def send_marked(message: Message) -> None:
                if message["type"] == "http.response.start" and unloaded:
                    message = {**message, "headers": [*message.get("headers", []), (HEADER, str(max(unloaded)).encode())]}
                await send(message)

            await self.app(scope, receive, send_marked)
