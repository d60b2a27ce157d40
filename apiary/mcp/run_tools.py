"""MCP tools for runs (telemetry tagged with the resource attribute ``apiary.run``): list them, compare two."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import Field

from apiary.mcp.answers import READ_ONLY, Offset, caller_of, dumps
from apiary.mcp.paging import window
from apiary.query.runs import DEFAULT_LOOKBACK_S, PERCENTILES, RunNotFound, compare_runs, list_runs
from apiary.query.spec import SpecError

Lookback = Annotated[int, Field(ge=60, le=90 * 86400, description="seconds back from now to look for runs "
                                                                  f"(default {DEFAULT_LOOKBACK_S // 86400} days)")]


def register(server: MCPServer) -> None:
    @server.tool(name="list_runs", annotations=READ_ONLY, structured_output=False)
    async def list_runs_tool(ctx: Context, time_range: Lookback = DEFAULT_LOOKBACK_S, offset: Offset = 0,
                             limit: Annotated[int, Field(ge=1, le=100)] = 20) -> str:
        """Runs (a test session, a benchmark, a build: spans whose resource attribute apiary.run names them),
        latest first: name, first and last seen, span count, services. At most `limit` runs (default 20, max 100),
        "N of M" with next_offset. Compare two with compare_runs."""
        c = caller_of(ctx)
        runs = await asyncio.to_thread(list_runs, c.ctx.store, c.env, time_range)
        shown = runs[offset:offset + limit]
        return dumps({"runs": shown, **window(len(shown), len(runs), offset, "runs")})

    @server.tool(name="compare_runs", annotations=READ_ONLY, structured_output=False)
    async def compare_runs_tool(ctx: Context, a: Annotated[str, Field(min_length=1, description="the baseline run")],
                                b: Annotated[str, Field(min_length=1, description="the run compared with it")],
                                percentile: Annotated[str, Field(description=f"one of {', '.join(PERCENTILES)}")] = "p50",
                                time_range: Lookback = DEFAULT_LOOKBACK_S,
                                limit: Annotated[int, Field(ge=1, le=100)] = 20) -> str:
        """Run b against run a, per (service, span name): count, errors and the latency percentile in each and the
        change, ranked by how much changed (score 0-1: latency change, error share, share of the run's spans);
        span names new in b or gone from it; attribute columns one run never set; the columns whose values differ
        most (BubbleUp's ranking). At most `limit` span rows (default 20, max 100), "N of M"."""
        c = caller_of(ctx)
        try:
            doc: dict[str, Any] = await asyncio.to_thread(compare_runs, c.ctx.store, c.env, a, b, percentile, time_range)
        except (RunNotFound, SpecError) as exc:
            raise ToolError(str(exc)) from None
        rows = doc["spans"]
        doc["spans"] = rows[:limit]
        doc["changed_columns"] = doc["changed_columns"][:10]
        doc.update(returned=len(doc["spans"]), total=len(rows))
        if len(rows) > limit:
            doc["more"] = f"{limit} of {len(rows)} span rows shown, the most changed first; a larger limit (up to 100) shows more"
        return dumps(doc)
