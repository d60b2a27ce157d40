"""``apiary mcp``: MCP over stdio for agents that launch their servers, bridged to a running server's ``/mcp``.

Why a bridge and not the tools run in this process on a data directory: the running server already holds
the stores (DuckDB and chdb let one process open their files), and ``/mcp`` already checks the key through
`apiary.permissions`, so the rules for who sees what stay in one place. This process only relays: the
agent's ``tools/list`` and ``tools/call`` go to ``/mcp`` with ``Authorization: Bearer <key>``, and the
answers (tool errors included) come back unchanged. The key is checked once, before stdio is served, so a
wrong key or an unreachable server is one line on stderr and exit status 1 rather than a silent agent.
"""

from __future__ import annotations

import contextlib
import sys
from typing import Any, AsyncIterator

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.server.lowlevel import Server
from mcp.server.context import ServerRequestContext
from mcp.server.stdio import stdio_server
from mcp.shared.exceptions import MCPError
from mcp.types import CallToolRequestParams, CallToolResult, ListToolsResult, PaginatedRequestParams, TextContent


@contextlib.asynccontextmanager
async def remote(url: str, key: str) -> AsyncIterator[Client]:
    """A client of ``{url}/mcp`` carrying the key, connected (and so the key accepted) on entry."""
    # The SDK's own timeouts: a tool call may take minutes to answer (a wide query), connecting should not.
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=httpx2.Timeout(30, read=300))
    async with http, Client(streamable_http_client(url.rstrip("/") + "/mcp", http_client=http)) as client:
        yield client


def bridge(client: Client, url: str) -> Server[Any]:
    """A stdio-facing server whose tools are the remote server's, relayed call by call."""

    async def list_tools(ctx: ServerRequestContext[Any], params: PaginatedRequestParams | None) -> ListToolsResult:
        return await client.list_tools(cursor=params.cursor if params else None)

    async def call_tool(ctx: ServerRequestContext[Any], params: CallToolRequestParams) -> CallToolResult:
        try:
            return await client.call_tool(params.name, params.arguments or {})
        except httpx2.TransportError as exc:
            return CallToolResult(content=[TextContent(type="text", text=(
                f"cannot reach Apiary at {url} ({exc}); is `apiary serve` running?"))], is_error=True)

    return Server("apiary", instructions="Apiary's traces, logs and errors (relayed to " + url + "/mcp).",
                  on_list_tools=list_tools, on_call_tool=call_tool)


async def serve(url: str, key: str) -> int:
    try:
        async with remote(url, key) as client:
            await client.list_tools()  # the key and the server, checked before the agent is answered
            server = bridge(client, url)
            async with stdio_server() as (read, write):
                await server.run(read, write, server.create_initialization_options())
    except Exception as exc:  # noqa: BLE001 - task groups wrap the cause; one line on stderr says it
        cause = _innermost(exc)
        if isinstance(cause, MCPError):
            print(f"apiary mcp: {url}/mcp refused: {cause}", file=sys.stderr)
        elif isinstance(cause, (httpx2.TransportError, OSError)):
            print(f"apiary mcp: cannot reach {url} ({cause}); is `apiary serve` running?", file=sys.stderr)
        else:
            raise
        return 1
    return 0


def _innermost(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc
