"""MCP tools for log events: the log groups, and a search by CloudWatch filter pattern or Logs Insights query."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import Field

from apiary.mcp import log_search
from apiary.mcp.answers import READ_ONLY, Offset, TimeRange, UnixTime, caller_of, dumps, time_window
from apiary.mcp.paging import window
from apiary.query.insights import QueryError
from apiary.receivers.cloudwatch.filter_pattern import PatternError

#: Log groups one search reads (Insights itself takes at most 50).
MAX_LOG_GROUPS = 50


def register(server: MCPServer) -> None:
    @server.tool(annotations=READ_ONLY, structured_output=False)
    async def list_log_groups(ctx: Context, prefix: str = "", offset: Offset = 0,
                              limit: Annotated[int, Field(ge=1, le=200)] = 50) -> str:
        """Log groups of the key's environment (CloudWatch's, e.g. from watchtower; OTLP logs land in one per
        service), with stored bytes and retention; at most `limit` (default 50, max 200), "N of M"."""
        c = caller_of(ctx)
        logs = c.ctx.logs
        if logs is None:
            raise ToolError("this server keeps no log events")

        def work() -> dict[str, Any]:
            groups = logs.groups(c.env, prefix)
            shown = groups[offset:offset + limit]
            return {"log_groups": [{"name": g.name, "stored_bytes": g.stored_bytes, "retention_days": g.retention_days}
                                   for g in shown], **window(len(shown), len(groups), offset, "log groups")}

        return dumps(await asyncio.to_thread(work))

    @server.tool(annotations=READ_ONLY, structured_output=False)
    async def search_logs(ctx: Context,
                          log_groups: Annotated[list[str] | None, Field(
                              description=f"groups to search, at most {MAX_LOG_GROUPS} (default: every group)")] = None,
                          filter_pattern: Annotated[str | None, Field(description=(
                              'a CloudWatch filter pattern: terms ("ERROR" -health), JSON ({ $.level = "error" }) '
                              'or space-delimited ([ip, user, ..., status = 5*])'))] = None,
                          insights_query: Annotated[str | None, Field(description=(
                              "a Logs Insights query, e.g. 'fields @timestamp, @message | filter @message like "
                              "/timeout/ | sort @timestamp desc' or 'stats count(*) by bin(5m)'; @traceId, @spanId "
                              "and @severity are fields too"))] = None,
                          time_range: TimeRange = 3600, start_time: UnixTime = None, end_time: UnixTime = None,
                          limit: Annotated[int, Field(ge=1, le=500)] = 50) -> str:
        """Search log events with either a CloudWatch filter pattern (the newest matching lines, each with time,
        group, stream, message cut at 2,000 characters, and trace/span ids when the line carries them) or a
        Logs Insights query (its rows and how many records it matched and scanned). Give exactly one of
        filter_pattern and insights_query. At most `limit` lines or rows (default 50, max 500); the answer
        says when more exist. A filter-pattern search reads at most 200,000 lines per group."""
        c = caller_of(ctx)
        logs = c.ctx.logs
        if logs is None:
            raise ToolError("this server keeps no log events")
        if (filter_pattern is None) == (insights_query is None):
            raise ToolError("give exactly one of filter_pattern and insights_query")
        start_s, end_s = time_window(time_range, start_time, end_time)

        def work() -> dict[str, Any]:
            if log_groups:
                if len(log_groups) > MAX_LOG_GROUPS:
                    raise ToolError(f"log_groups: at most {MAX_LOG_GROUPS} groups per search")
                missing = [g for g in log_groups if logs.group(c.env, g) is None]
                if missing:
                    raise ToolError(f"log group {missing[0]!r} not found in environment {c.env!r}: "
                                    "list_log_groups names them")
                groups = list(log_groups)
            else:
                groups = [g.name for g in logs.groups(c.env)]
                if len(groups) > MAX_LOG_GROUPS:
                    raise ToolError(f"environment {c.env!r} has {len(groups)} log groups: name at most "
                                    f"{MAX_LOG_GROUPS} in log_groups (list_log_groups names them)")
            if not groups:
                return {"events" if filter_pattern is not None else "rows": [], "returned": 0, "log_groups": [],
                        "note": f"environment {c.env!r} has no log groups"}
            if filter_pattern is not None:
                return log_search.filter_events(logs, c.env, groups, filter_pattern, start_s * 1000, end_s * 1000, limit)
            return log_search.run_insights(logs, c.env, groups, insights_query or "", start_s, end_s, limit)

        try:
            return dumps(await asyncio.to_thread(work))
        except PatternError as exc:
            raise ToolError(f"filter_pattern: {exc}") from None
        except QueryError as exc:
            raise ToolError(f"insights_query: {exc}") from None
