"""``apiary mcp``'s flags, kept apart from the bridge itself: building the CLI's parser must not import the MCP
SDK (it added 3.5 s to every ``apiary`` command on this machine, ``apiary keys create`` included)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from apiary.server.settings import DEFAULT_PORT


def cmd_mcp(args: argparse.Namespace) -> int:
    key = args.key or os.environ.get("APIARY_KEY") or os.environ.get("HONEYCOMB_API_KEY")
    if not key:
        print("apiary mcp: give a read key with --key or APIARY_KEY", file=sys.stderr)
        return 2
    import anyio

    from apiary.mcp.stdio import serve

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
