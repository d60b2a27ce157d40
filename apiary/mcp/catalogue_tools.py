"""MCP tools for what an environment holds: the environment, its datasets and columns, and Honeycomb queries."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import Field

from apiary.mcp.answers import READ_ONLY, Offset, caller_of, dumps, iso
from apiary.mcp.paging import window
from apiary.query.engine import ALL_DATASETS, DatasetNotFound, run_query as run_spec
from apiary.query.spec import SpecError, parse_spec


def register(server: MCPServer) -> None:
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
            rows = [{"name": d.name, "rows": counts.get(d.name, 0), "last_written": iso(d.last_written)} for d in shown]
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
