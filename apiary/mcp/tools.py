"""The MCP tools: what an agent may read from the caller's environment, each answer compact JSON with its limits.

Every tool reads through the same layers as the HTTP read APIs (the query engine, trace search, the
stores), for the one environment of the key that made the request (`apiary.mcp.http.Caller`). Every list
is cut to a stated limit and says "N of M" and how to get the rest, so one call cannot flood an agent's
context. Bad arguments raise the SDK's `ToolError` with a message saying what to fix: the agent reads
it as the tool's answer (``isError``), never a stack trace.

"Compare runs" (traces grouped by the resource attribute ``apiary.run``) is not here yet.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timezone
from typing import Annotated, Any

import orjson
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import Field

from apiary.mcp import log_search
from apiary.mcp.http import SCOPE_KEY, Caller
from apiary.mcp.trace_view import TraceView, window
from apiary.model.error import LEVELS, STATUSES
from apiary.model.critical_path import critical_path_of_table
from apiary.model.ids import normalise_trace_id
from apiary.query.engine import ALL_DATASETS, DatasetNotFound, run_query as run_spec
from apiary.query.insights import QueryError
from apiary.query.spec import SpecError, parse_spec
from apiary.query.trace_search import search_traces as run_trace_search
from apiary.receivers.cloudwatch.filter_pattern import PatternError

#: Log groups one search reads (Insights itself takes at most 50).
MAX_LOG_GROUPS = 50
READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False)
INSTRUCTIONS = (
    "Apiary holds one environment's traces (Honeycomb-style datasets, one per service.name), log events "
    "(CloudWatch log groups) and errors (Rollbar items). Start with list_datasets / list_columns, find traces "
    "with search_traces or run_query, read one with get_trace (a summary) and then get_trace_spans (pages or "
    "subtrees) and critical_path. Every list is limited; answers say 'N of M' and the offset for more.")

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


def _trace_id(text: str) -> str:
    try:
        return normalise_trace_id(text.strip())
    except ValueError as exc:
        raise ToolError(f"trace_id: {exc}") from None


def _window(time_range: int, start_time: int | None, end_time: int | None) -> tuple[int, int]:
    if start_time is not None or end_time is not None:
        if start_time is None or end_time is None:
            raise ToolError("give both start_time and end_time (unix seconds), or neither and a time_range")
        if end_time <= start_time:
            raise ToolError("end_time must be after start_time")
        return start_time, end_time
    now = int(time.time())
    return now - time_range, now + 1


def build_server() -> MCPServer:
    server: MCPServer = MCPServer("apiary", instructions=INSTRUCTIONS, log_level="WARNING")

    @server.tool(annotations=READ_ONLY, structured_output=False)
    async def list_environments(ctx: Context) -> str:
        """The environment this key reads, with how much it holds (datasets, spans, log groups, error items).

        A key reads exactly one environment: another environment needs a key of its own, so the list has
        one entry."""
        c = caller_of(ctx)

        def work() -> dict[str, Any]:
            counts = c.ctx.store.span_counts(c.env)
            doc: dict[str, Any] = {"name": c.env, "datasets": len(c.ctx.store.datasets(c.env)),
                                   "rows": sum(counts.values())}
            if c.ctx.logs is not None:
                doc["log_groups"] = len(c.ctx.logs.groups(c.env))
            if c.ctx.errors is not None:
                doc["error_items"] = len(c.ctx.errors.items(c.env))
            return doc

        return dumps({"environments": [await asyncio.to_thread(work)], "total": 1})

    @server.tool(annotations=READ_ONLY, structured_output=False)
    async def list_datasets(ctx: Context, offset: Offset = 0,
                            limit: Annotated[int, Field(ge=1, le=200)] = 50) -> str:
        """Datasets of the key's environment (one per service.name), each with its row count (spans, span
        events, links, metric points) and when it was last written; at most `limit` (default 50, max 200)
        per call, "N of M" with next_offset for more."""
        c = caller_of(ctx)

        def work() -> dict[str, Any]:
            counts = c.ctx.store.span_counts(c.env)
            found = c.ctx.store.datasets(c.env)
            shown = found[offset:offset + limit]
            rows = [{"name": d.name, "rows": counts.get(d.name, 0), "last_written": _iso(d.last_written)} for d in shown]
            return {"environment": c.env, "datasets": rows, **window(len(rows), len(found), offset, "datasets")}

        return dumps(await asyncio.to_thread(work))

    @server.tool(annotations=READ_ONLY, structured_output=False)
    async def list_columns(ctx: Context, dataset: Annotated[str, Field(
                               description="a dataset name from list_datasets, or __all__ for every dataset")],
                           name_contains: Annotated[str, Field(description="only columns whose name has this")] = "",
                           offset: Offset = 0, limit: Annotated[int, Field(ge=1, le=500)] = 100) -> str:
        """Columns of a dataset (Honeycomb's: name and type string/integer/float/boolean/timestamp), sorted by
        name, optionally only those containing `name_contains`; at most `limit` (default 100, max 500) per
        call, "N of M" with next_offset for more. Use the names in run_query and search_traces."""
        c = caller_of(ctx)

        def work() -> dict[str, Any]:
            if dataset != ALL_DATASETS and dataset not in {d.name for d in c.ctx.store.datasets(c.env)}:
                raise ToolError(f"dataset {dataset!r} not found in environment {c.env!r}: list_datasets names them")
            cols = sorted(c.ctx.store.columns(c.env, None if dataset == ALL_DATASETS else dataset), key=lambda x: x.name)
            cols = [x for x in cols if name_contains.lower() in x.name.lower()]
            shown = cols[offset:offset + limit]
            return {"dataset": dataset, "columns": [{"name": x.name, "type": x.type} for x in shown],
                    **window(len(shown), len(cols), offset, "columns")}

        return dumps(await asyncio.to_thread(work))

    @server.tool(annotations=READ_ONLY, structured_output=False)
    async def run_query(ctx: Context, dataset: Annotated[str, Field(description="a dataset, or __all__")],
                        query: Annotated[dict[str, Any], Field(description=(
                            'a Honeycomb query spec, e.g. {"calculations": [{"op": "P99", "column": "duration_ms"}, '
                            '{"op": "COUNT"}], "filters": [{"column": "error", "op": "=", "value": true}], '
                            '"breakdowns": ["name"], "orders": [{"op": "COUNT", "order": "descending"}], '
                            '"time_range": 3600}'))],
                        limit: Annotated[int, Field(ge=1, le=1000)] = 50) -> str:
        """Run a Honeycomb query spec (calculations COUNT, SUM, AVG, MIN, MAX, COUNT_DISTINCT, P50..P999,
        HEATMAP, RATE, INCREASE...; filters; breakdowns; orders; having; time_range or start_time/end_time)
        on a dataset. Returns the result rows (each with its breakdown values, calculations and an example
        trace id), at most `limit` (default 50, max 1000), with "N of M". The time series and heatmap cells
        are left out: to see change over time, break down or narrow start_time/end_time."""
        c = caller_of(ctx)
        try:
            spec = parse_spec(query)
            outcome = await asyncio.to_thread(run_spec, c.ctx.store, c.env, dataset, spec, None, None, True)
        except SpecError as exc:
            raise ToolError(f"query: {exc}") from None
        except DatasetNotFound as exc:
            raise ToolError(f"{exc}: list_datasets names them") from None
        results = outcome.data["results"]
        rows = []
        for r in results[:limit]:
            row = dict(r.get("data") or {})
            if r.get("examples"):
                row["example_trace_id"] = r["examples"][0]
            rows.append(row)
        doc = {"dataset": dataset, "start_time": outcome.data.get("start_time"), "end_time": outcome.data.get("end_time"),
               "results": rows, "returned": len(rows), "total": len(results)}
        if len(rows) < len(results):
            doc["more"] = f"{len(rows)} of {len(results)} result rows shown; add orders and a limit to the spec, or raise limit"
        return dumps(doc)

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
        tid = _trace_id(trace_id)
        table = await asyncio.to_thread(c.ctx.store.trace, c.env, tid)
        if table.num_rows == 0:
            raise ToolError(f"trace {tid} not found in environment {c.env!r} (search_traces finds traces)")
        return tid, table

    @server.tool(annotations=READ_ONLY, structured_output=False)
    async def get_trace(ctx: Context, trace_id: TraceId) -> str:
        """A trace's summary, not its spans: span count, duration, services, the root span, how deep it is,
        its error spans (first 5) and slowest spans (5), the spans right under the root (first 10, each with
        its number of descendants), and how many log lines and error occurrences carry its id. Read spans
        next with get_trace_spans (a page, or the subtree under one span) and critical_path."""
        c = caller_of(ctx)
        tid, table = await _trace(c, trace_id)

        def work() -> dict[str, Any]:
            view = TraceView(tid, table)
            logs = c.ctx.logs.trace_logs(c.env, tid, 1000).num_rows if c.ctx.logs is not None else None
            errors = len(c.ctx.errors.trace_errors(c.env, tid)) if c.ctx.errors is not None else None
            doc = view.summary(logs, errors)
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
        start_s, end_s = _window(time_range, start_time, end_time)

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
                             "occurrences": it.total_occurrences, "first_seen": _iso_s(it.first_occurrence_timestamp),
                             "last_seen": _iso_s(it.last_occurrence_timestamp),
                             "trace_ids": list(dict.fromkeys(o["trace_id"] for o in recent if o.get("trace_id")))})
            return {"items": rows, **window(len(rows), len(items), offset, "error items")}

        return dumps(await asyncio.to_thread(work))

    return server


def _iso(dt: Any) -> str:
    return dt.isoformat().replace("+00:00", "Z")


def _iso_s(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat().replace("+00:00", "Z")
