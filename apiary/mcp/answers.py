"""What every MCP tool shares: who is calling, compact JSON answers, and the argument types with their limits."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Annotated, Any

import orjson
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import Field

from apiary.mcp.http import SCOPE_KEY, Caller
from apiary.model.ids import normalise_trace_id

#: Every tool only reads, and only this server's data.
READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False)

Offset = Annotated[int, Field(ge=0, description="skip this many (from a previous answer's next_offset)")]
TraceId = Annotated[str, Field(description="a W3C trace id (32 hex digits) or an X-Ray one (1-5759e988-...)")]
TimeRange = Annotated[int, Field(ge=60, le=90 * 86400, description="seconds back from now (default one hour)")]
UnixTime = Annotated[int | None, Field(ge=0, description="unix seconds; with start_time, instead of time_range")]


def caller_of(ctx: Context) -> Caller:
    request = ctx.request_context.request
    found = getattr(request, "scope", {}).get(SCOPE_KEY) if request is not None else None
    if not isinstance(found, Caller):
        raise ToolError("this MCP request carries no Apiary key: connect to /mcp with a read key")
    return found


def dumps(doc: Any) -> str:
    """Compact JSON (no indentation: every byte lands in the agent's context); NaN becomes null."""
    return orjson.dumps(doc, default=str).decode()


def trace_id_of(text: str) -> str:
    try:
        return normalise_trace_id(text.strip())
    except ValueError as exc:
        raise ToolError(f"trace_id: {exc}") from None


def time_window(time_range: int, start_time: int | None, end_time: int | None) -> tuple[int, int]:
    if start_time is not None or end_time is not None:
        if start_time is None or end_time is None:
            raise ToolError("give both start_time and end_time (unix seconds), or neither and a time_range")
        if end_time <= start_time:
            raise ToolError("end_time must be after start_time")
        return start_time, end_time
    now = int(time.time())
    return now - time_range, now + 1


def iso(dt: Any) -> str:
    return dt.isoformat().replace("+00:00", "Z")


def iso_s(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat().replace("+00:00", "Z")
