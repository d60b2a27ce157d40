"""``POST /mcp``: MCP's streamable HTTP transport on the main port, behind the one key check of every read API.

The key travels as ``Authorization: Bearer <key>`` (what MCP clients' configs send) or ``X-Honeycomb-Team``
(what every other Apiary read API takes); `apiary.permissions.resolve` decides, so an ingest-only key is
refused (403) and an unknown or missing one gets 401 with ``WWW-Authenticate: Bearer``, before any MCP
message is read. The tools then see only the key's environment (`Caller`, put in the ASGI scope).

The transport runs stateless, answering JSON: every POST carries its key and is served on its own, so no
MCP session can outlive (or be borrowed past) the key that opened it, and nothing is kept between requests.
No tool needs a server-to-client request (sampling, elicitation), which is all stateless mode gives up.
The SDK's DNS-rebinding check (Host/Origin allow-list) is left off: it would have to know every name the
server is reached by, and a page that rebinds a name still cannot send a key it does not hold.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from mcp.server.mcpserver import MCPServer
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from apiary.permissions import Permission, Refusal, needs, permission_of, resolve
from apiary.server.context import Apiary
from apiary.store.meta import ApiKey

#: Where the endpoint leaves the resolved caller for the tools (``ctx.request_context.request.scope``).
SCOPE_KEY = "apiary.mcp.caller"
#: A tool call's arguments are small; a query spec or a search is far below this.
MAX_REQUEST_BYTES = 1 << 20
WHERE = "an Authorization: Bearer <key> header (or X-Honeycomb-Team)"


@dataclass(frozen=True)
class Caller:
    """Who is asking: the server's stores and the key (hence the one environment) the answer may show."""

    ctx: Apiary
    key: ApiKey

    @property
    def env(self) -> str:
        return self.key.environment


def credential(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return request.headers.get("x-honeycomb-team")


def refusal_response(exc: Refusal) -> JSONResponse:
    """A JSON-RPC error body (no request id: no message was read) with the HTTP status MCP clients act on."""
    status = 403 if exc.authenticated else 401
    headers = {} if exc.authenticated else {"WWW-Authenticate": 'Bearer realm="apiary"'}
    return JSONResponse({"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": exc.message}}, status,
                        headers)


@needs(Permission.READ)
class McpEndpoint:
    """The ASGI endpoint of ``/mcp``; `start`/`stop` bracket the server's lifespan (the SDK's task group)."""

    def __init__(self, server: MCPServer) -> None:
        self.server = server
        # Builds the SDK's session manager (kept on ``server.session_manager``); its own Starlette app is not used.
        server.streamable_http_app(stateless_http=True, json_response=True, max_request_body_size=MAX_REQUEST_BYTES)
        self._running = contextlib.AsyncExitStack()

    async def start(self) -> None:
        await self._running.enter_async_context(self.server.session_manager.run())

    async def stop(self) -> None:
        await self._running.aclose()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        ctx: Apiary = request.app.state.apiary
        try:
            key = resolve(credential(request), permission_of(self), ctx.authenticate, "MCP tools", WHERE)
        except Refusal as exc:
            await refusal_response(exc)(scope, receive, send)
            return
        assert key is not None
        scope[SCOPE_KEY] = Caller(ctx, key)
        await self.server.session_manager.handle_request(scope, receive, send)
