"""``POST /mcp``: MCP's streamable HTTP transport on the main port, behind the one key check of every read API.

The key travels as ``Authorization: Bearer <key>`` (what MCP clients' configs send) or ``X-Honeycomb-Team``
(what every other Apiary read API takes); `apiary.permissions.resolve` decides, so an ingest-only key is
refused (403) and an unknown or missing one gets 401 with ``WWW-Authenticate: Bearer``, before any MCP
message is read. The tools then see only the key's environment (`Caller`, put in the ASGI scope).

The transport runs stateless, answering JSON: every POST carries its key and is served on its own, so no
MCP session can outlive (or be borrowed past) the key that opened it, and nothing is kept between requests.
No tool needs a server-to-client request (sampling, elicitation), which is all stateless mode gives up.
The SDK and the tools are imported and built at the first ``/mcp`` request, not at start-up: they were
two fifths of what ``apiary serve`` imported, and most servers (every test's among them) never see one.
The SDK's DNS-rebinding check (Host/Origin allow-list) is left off: it would have to know every name the
server is reached by, and a page that rebinds a name still cannot send a key it does not hold.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from apiary.permissions import Permission, Refusal, needs, permission_of, resolve
from apiary.server.context import Apiary
from apiary.store.meta import ApiKey

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer
    from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

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
    """The ASGI endpoint of ``/mcp``; `start`/`stop` bracket the server's lifespan.

    ``build`` makes the SDK's server at the first request. The SDK's session manager runs a task group, which
    must be left by the task that entered it: one task of the lifespan's (started by `start`) owns it, waiting
    until a request asks for it and then until `stop`.
    """

    def __init__(self, build: Callable[[], "MCPServer"]) -> None:
        self._build = build
        self.server: MCPServer | None = None
        self._owner: asyncio.Task[None] | None = None
        self._wanted = self._up = self._stopping = asyncio.Event()  # replaced by `start`, in the server's loop
        self._failed: BaseException | None = None

    async def start(self) -> None:
        self._wanted, self._up, self._stopping = asyncio.Event(), asyncio.Event(), asyncio.Event()
        self._owner = asyncio.create_task(self._own())

    async def stop(self) -> None:
        if self._owner is None:
            return
        self._stopping.set()
        if not self._wanted.is_set():
            self._owner.cancel()
        await asyncio.gather(self._owner, return_exceptions=True)

    async def _own(self) -> None:
        await self._wanted.wait()
        try:
            server = self._build()
            # Builds the SDK's session manager (kept on ``server.session_manager``); its own Starlette app is not used.
            server.streamable_http_app(stateless_http=True, json_response=True, max_request_body_size=MAX_REQUEST_BYTES)
            async with server.session_manager.run():
                self.server = server
                self._up.set()
                await self._stopping.wait()
        except Exception as exc:  # noqa: BLE001 - said to every request, as a 500, rather than lost in a task
            self._failed = exc
        finally:
            self._up.set()

    async def _session_manager(self) -> "StreamableHTTPSessionManager":
        self._wanted.set()
        await self._up.wait()
        if self.server is None:
            raise RuntimeError("the MCP server is not running") from self._failed
        return self.server.session_manager

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
        await (await self._session_manager()).handle_request(scope, receive, send)
