"""``apiary mcp``: MCP over stdio for agents that launch their servers, bridged to a running server's ``/mcp``.

Why a bridge and not the tools run in this process on a data directory: the running server already holds
the stores (DuckDB and chdb let one process open their files), and ``/mcp`` already checks the key through
`apiary.permissions`, so the rules for who sees what stay in one place. This process only relays: the
agent's ``tools/list`` and ``tools/call`` go to ``/mcp`` with ``Authorization: Bearer <key>``, and the
answers (tool errors included) come back unchanged. The key is checked once, before stdio is served, so a
wrong key or an unreachable server is one line on stderr and exit status 1 rather than a silent agent.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from typing import Any, AsyncIterator

import anyio
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.server.lowlevel import Server
from mcp.server.context import ServerRequestContext
from mcp.server.stdio import stdio_server
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import MCPError
from mcp.types import CallToolRequestParams, CallToolResult, ListToolsResult, PaginatedRequestParams, TextContent

from apiary.server.settings import DEFAULT_PORT


@contextlib.asynccontextmanager
async def remote(url: str, key: str) -> AsyncIterator[Client]:
    """A client of ``{url}/mcp`` carrying the key, connected (and so the key accepted) on entry."""
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {key}"})
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


def cmd_mcp(args: argparse.Namespace) -> int:
    key = args.key or os.environ.get("APIARY_KEY") or os.environ.get("HONEYCOMB_API_KEY")
    if not key:
        print("apiary mcp: give a read key with --key or APIARY_KEY", file=sys.stderr)
        return 2
    return anyio.run(serve, args.url.rstrip("/"), key)


def add_parser(sub: Any) -> None:
    p = sub.add_parser("mcp", help="MCP over stdio for coding agents, relayed to a running server's /mcp",
                       description="Serve Apiary's MCP tools over stdio (for agents that launch MCP servers). "
                                   "Every call is relayed to the running server's /mcp with the key, which "
                                   "decides what may be read.")
    p.add_argument("--url", default=os.environ.get("APIARY_URL", f"http://127.0.0.1:{DEFAULT_PORT}"),
                   help=f"the running Apiary (env APIARY_URL, default http://127.0.0.1:{DEFAULT_PORT})")
    p.add_argument("--key", default=None, help="a read key of the environment to read (env APIARY_KEY)")
    p.set_defaults(func=cmd_mcp)
