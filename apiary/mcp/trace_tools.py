"""MCP tools for traces: search, a trace's summary, its spans by page or subtree, its critical path."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import Field

from apiary.mcp.answers import READ_ONLY, Offset, TraceId, caller_of, dumps, trace_id_of
from apiary.mcp.http import Caller
from apiary.mcp.trace_view import TraceView
from apiary.model.critical_path import critical_path_of_table
from apiary.query.spec import SpecError
from apiary.query.trace_search import search_traces as run_trace_search


#: Log lines of a trace counted for its summary; past this the summary says "at least".
LOG_LINES_COUNTED = 1000


def register(server: MCPServer) -> None:
    @server.tool(annotations=READ_ONLY, structured_output=False)
    async def search_traces(ctx: Context, search: Annotated[dict[str, Any], Field(description=(
                                'a trace search, e.g. {"time_range": 3600, "spans": {"c": {"service": "api", '
                                '"name": "checkout"}, "d": {"name": "db-query", "min_duration_ms": 100, "where": '
                                '[{"column": "db.rows", "op": ">", "value": 5}]}, "e": {"error": true}}, '
                                '"match": "d under c and not e", "min_trace_duration_ms": 500, "order": "slowest"}'))],
                            limit: Annotated[int, Field(ge=1, le=100)] = 20) -> str:
        """Find traces by named span conditions (each matched by any span of a trace: service, name,
        min_duration_ms/max_duration_ms, error, Honeycomb filters in where), combined in `match` with and, or,
        not and `a under b` (a span matching a below one matching b); min/max_trace_duration_ms bound the
        whole trace; order newest or slowest; trace_id/trace_ids look traces up whatever the time. Returns
        at most `limit` traces (default 20, max 100; it overrides a limit in the search), each with its
        root span, start, duration, span and error counts and services, and `matched`: how many matched in
        all."""
        c = caller_of(ctx)
        doc = {**search, "limit": limit}
        try:
            outcome = await asyncio.to_thread(run_trace_search, c.ctx.store, c.env, doc)
        except SpecError as exc:
            raise ToolError(f"search: {exc}") from None
        data = outcome.data
        data.pop("elapsed_ms", None)
        if data["matched"] > data["returned"]:
            data["more"] = (f"{data['returned']} of {data['matched']} matching traces shown; narrow the search "
                            "(time, conditions) or order it differently")
        return dumps(data)

    async def _trace(c: Caller, trace_id: str) -> tuple[str, Any]:
        tid = trace_id_of(trace_id)
        table = await asyncio.to_thread(c.ctx.store.trace, c.env, tid)
        if table.num_rows == 0:
            raise ToolError(f"trace {tid} not found in environment {c.env!r} (search_traces finds traces)")
        return tid, table

    @server.tool(annotations=READ_ONLY, structured_output=False)
    async def get_trace(ctx: Context, trace_id: TraceId) -> str:
        """A trace's summary, not its spans: span count, duration, services, the root span, how deep it is,
        its error spans (first 5) and slowest spans (5), the spans right under the root (first 10, each with
        its number of descendants), and how many log lines (counted to 1,000) and error occurrences carry its id. Read spans
        next with get_trace_spans (a page, or the subtree under one span) and critical_path."""
        c = caller_of(ctx)
        tid, table = await _trace(c, trace_id)

        def work() -> dict[str, Any]:
            view = TraceView(tid, table)
            logs = c.ctx.logs.trace_logs(c.env, tid, LOG_LINES_COUNTED).num_rows if c.ctx.logs is not None else None
            errors = len(c.ctx.errors.trace_errors(c.env, tid)) if c.ctx.errors is not None else None
            doc = view.summary(logs, errors)
            if logs == LOG_LINES_COUNTED:
                doc["log_lines_at_least"] = True  # counting stopped there
            doc["next"] = ("get_trace_spans for spans (under_span_id for one subtree, max_depth to stay shallow), "
                           "critical_path for where the time went, search_logs with insights_query "
                           f"'filter @traceId = \"{tid}\"' for its log lines")
            return doc

        return dumps(await asyncio.to_thread(work))

    @server.tool(annotations=READ_ONLY, structured_output=False)
    async def get_trace_spans(ctx: Context, trace_id: TraceId,
                              under_span_id: Annotated[str | None, Field(
                                  description="only this span and its descendants")] = None,
                              max_depth: Annotated[int | None, Field(
                                  ge=0, le=1000, description="levels below the top to include (0: the top only)")] = None,
                              offset: Offset = 0, limit: Annotated[int, Field(ge=1, le=200)] = 50,
                              attributes: Annotated[bool, Field(
                                  description="include each span's attributes (at most 50, values cut at 300 chars)")] = False
                              ) -> str:
        """A trace's spans in tree order (depth first, children by start time), each as span_id, parent_id,
        name, service, start_ms (from the trace's start), duration_ms, depth, number of children, error and
        status message, event names; with attributes=true also its attributes. The whole trace, or only the
        subtree under `under_span_id`, to `max_depth` levels; at most `limit` spans (default 50, max 200),
        "N of M" with next_offset for the next page."""
        c = caller_of(ctx)
        tid, table = await _trace(c, trace_id)

        def work() -> dict[str, Any]:
            view = TraceView(tid, table)
            try:
                return view.page(under_span_id, max_depth, offset, limit, attributes)
            except KeyError:
                raise ToolError(f"under_span_id: span {under_span_id!r} is not in trace {tid}") from None

        return dumps(await asyncio.to_thread(work))

    @server.tool(annotations=READ_ONLY, structured_output=False)
    async def critical_path(ctx: Context, trace_id: TraceId, offset: Offset = 0,
                            limit: Annotated[int, Field(ge=1, le=200)] = 20) -> str:
        """The trace's critical path (Jaeger's definition: what the end of the root waited on): the spans that
        hold most of it (time on the path and share of the trace, at most `limit`), and the path's segments
        in time order (at most `limit` from `offset`, default 20, max 200, "N of M" with next_offset)."""
        c = caller_of(ctx)
        tid, table = await _trace(c, trace_id)

        def work() -> dict[str, Any]:
            view = TraceView(tid, table)
            return view.path_view(critical_path_of_table(table), offset, limit)

        return dumps(await asyncio.to_thread(work))
