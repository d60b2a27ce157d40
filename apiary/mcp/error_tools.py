"""MCP tools for errors: Rollbar's items, each with the traces of its latest occurrences."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import Field

from apiary.mcp.answers import READ_ONLY, Offset, caller_of, dumps, iso_s
from apiary.mcp.paging import window
from apiary.model.error import LEVELS, STATUSES


def register(server: MCPServer) -> None:
    @server.tool(annotations=READ_ONLY, structured_output=False)
    async def list_errors(ctx: Context,
                          status: Annotated[str | None, Field(description=f"one of {', '.join(STATUSES)}")] = None,
                          level: Annotated[str | None, Field(description=f"one of {', '.join(LEVELS)}")] = None,
                          offset: Offset = 0, limit: Annotated[int, Field(ge=1, le=100)] = 20) -> str:
        """Error items (Rollbar's: occurrences grouped by fingerprint), most recently seen first: title, level,
        status, environment, occurrence count, first and last seen, and the trace ids of its latest
        occurrences (at most 3 each: open them with get_trace). At most `limit` items (default 20, max 100),
        "N of M" with next_offset."""
        c = caller_of(ctx)
        errors = c.ctx.errors
        if errors is None:
            raise ToolError("this server keeps no errors")
        if status is not None and status not in STATUSES:
            raise ToolError(f"status: one of {', '.join(STATUSES)}")
        if level is not None and level not in LEVELS:
            raise ToolError(f"level: one of {', '.join(LEVELS)}")

        def work() -> dict[str, Any]:
            items = errors.items(c.env, status=status, level=level)
            shown = items[offset:offset + limit]
            rows = []
            for it in shown:
                recent = errors.occurrences(c.env, it.id, limit=3)
                rows.append({"id": it.id, "counter": it.counter, "title": it.title, "level": it.level,
                             "status": it.status, "environment": it.environment,
                             "occurrences": it.total_occurrences, "first_seen": iso_s(it.first_occurrence_timestamp),
                             "last_seen": iso_s(it.last_occurrence_timestamp),
                             "trace_ids": list(dict.fromkeys(o["trace_id"] for o in recent if o.get("trace_id")))})
            return {"items": rows, **window(len(rows), len(items), offset, "error items")}

        return dumps(await asyncio.to_thread(work))
