"""The trace pages' reads: the home page (datasets, recent traces), one trace with its logs and errors, the
service map, columns and datasets for the query builder, and the traces behind part of a query result."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from apiary.model.critical_path import critical_path_of_table
from apiary.model.ids import normalise_trace_id
from apiary.model.trace import rows_to_spans
from apiary.permissions import Permission, needs
from apiary.query.engine import DatasetNotFound, run_query
from apiary.query.spec import parse_spec
from apiary.keyed_routes import error
from apiary.receivers.honeycomb.http import column_json
from apiary.server.ui.access import Access, context
from apiary.ui import queries

MAX_SERVICE_MAP_S = 7 * 86400


@needs(Permission.READ)
async def home(request: Request, access: Access) -> Response:
    """Every environment in scope with its datasets' statistics, and the recent traces of the one asked for."""
    env = access.environment(request.query_params.get("env"))
    if isinstance(env, Response):
        return env
    store = context(request).store
    try:
        limit = min(max(int(request.query_params.get("limit", "50") or 50), 1), 500)
    except ValueError:
        return error(400, "limit must be an integer")

    def work() -> dict[str, Any]:
        return {"environment": env,
                "environments": [{"name": e, "datasets": queries.dataset_stats(store, e)} for e in access.environments],
                "recent": queries.recent_traces(store, env, limit, request.query_params.get("dataset") or None)}

    return JSONResponse(await asyncio.to_thread(work))


@needs(Permission.READ)
async def trace(request: Request, access: Access) -> Response:
    """One trace with its log lines, error occurrences and critical path. A bare ``/trace/<id>`` link in open mode
    (no ``env``) looks in every environment and answers the first that holds it."""
    ctx = context(request)
    try:
        trace_id = normalise_trace_id(request.path_params["trace_id"])
    except ValueError as exc:
        return error(400, str(exc))
    wanted = request.query_params.get("env")
    if wanted or not access.open:
        env = access.environment(wanted)
        if isinstance(env, Response):
            return env
        candidates = [env]
    else:
        candidates = access.environments

    def work() -> tuple[str, Any, list[Any], list[Any], dict[str, Any]] | None:
        for e in candidates:
            table = ctx.store.trace(e, trace_id)
            logs = queries.trace_logs(ctx.logs, e, trace_id) if ctx.logs is not None else []
            errs = queries.trace_errors(ctx.errors, e, trace_id) if ctx.errors is not None else []
            if table.num_rows or logs or errs:
                return e, rows_to_spans(table) if table.num_rows else [], logs, errs, critical_path_of_table(table)
        return None

    found = await asyncio.to_thread(work)
    if found is None:
        return error(404, f"trace {trace_id} not found")
    return JSONResponse({"trace_id": trace_id, "environment": found[0], "spans": found[1], "logs": found[2],
                         "errors": found[3], "critical_path": found[4]})


@needs(Permission.READ)
async def columns(request: Request, env: str) -> Response:
    dataset = request.query_params.get("dataset") or None
    cols = context(request).store.columns(env, None if dataset in (None, "__all__") else dataset)
    return JSONResponse([column_json(c) for c in cols])


@needs(Permission.READ)
async def datasets(request: Request, env: str) -> Response:
    return JSONResponse({"environment": env, "datasets": [d.name for d in context(request).store.datasets(env)]})


@needs(Permission.READ)
async def services(request: Request, env: str) -> Response:
    try:
        seconds = min(max(int(request.query_params.get("time_range", "3600")), 60), MAX_SERVICE_MAP_S)
    except ValueError:
        return error(400, "time_range must be a number of seconds")
    doc = await asyncio.to_thread(queries.service_map, context(request).store, env, seconds)
    return JSONResponse({"environment": env, "time_range": seconds, **doc})


@needs(Permission.READ)
async def traces_for(request: Request, env: str) -> Response:
    """Traces behind part of a query result (a heatmap region, a table row): the engine run directly, kept out of the history.

    Body: ``{"dataset": ..., "query": <spec>}`` -- the client narrows the spec (time, value range, breakdown values)
    and groups by ``trace.trace_id``.
    """
    try:
        body = await request.json()
        spec = parse_spec(body.get("query") if isinstance(body, dict) else None)
        dataset = str(body.get("dataset") or "__all__")
        outcome = await asyncio.to_thread(run_query, context(request).store, env, dataset, spec)
    except ValueError as exc:  # SpecError is a ValueError, as is bad JSON
        return error(400, str(exc))
    except DatasetNotFound as exc:
        return error(404, str(exc))
    return JSONResponse({"environment": env, "results": outcome.data["results"], "elapsed_ms": round(outcome.elapsed_ms, 3)})
