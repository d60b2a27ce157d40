"""``GET /api/traces/{trace_id}``: one trace, every span under Honeycomb's column names."""

from __future__ import annotations

import asyncio
from datetime import datetime

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from apiary.model.critical_path import critical_path_of_table
from apiary.model.ids import normalise_trace_id
from apiary.model.trace import rows_to_spans
from apiary.permissions import Permission, needs
from apiary.keyed_routes import error, guarded
from apiary.server.context import Apiary
from apiary.store.meta import ApiKey


@needs(Permission.READ)
async def get_trace(request: Request, key: ApiKey) -> Response:
    ctx: Apiary = request.app.state.apiary
    try:
        trace_id = normalise_trace_id(request.path_params["trace_id"])
    except ValueError as exc:
        return error(400, str(exc))
    table = await asyncio.to_thread(ctx.store.trace, key.environment, trace_id)
    if table.num_rows == 0:
        return error(404, f"trace {trace_id} not found in environment {key.environment!r}")
    spans, path = await asyncio.to_thread(lambda: (rows_to_spans(table), critical_path_of_table(table)))
    return JSONResponse({"trace_id": trace_id, "environment": key.environment, "spans": spans, "critical_path": path})


@needs(Permission.READ)
async def list_datasets(request: Request, key: ApiKey) -> Response:
    """The key's environment's datasets with row counts and last write, for the home page and scripts."""
    ctx: Apiary = request.app.state.apiary
    counts = await asyncio.to_thread(ctx.store.span_counts, key.environment)
    return JSONResponse({"environment": key.environment, "datasets": [
        {"name": d.name, "count": counts.get(d.name, 0), "created_at": _iso(d.created_at), "last_written": _iso(d.last_written)}
        for d in ctx.store.datasets(key.environment)]})


def _iso(dt: datetime) -> str:
    return dt.isoformat().replace("+00:00", "Z")


routes = [
    Route("/api/traces/{trace_id}", guarded(get_trace), methods=["GET"]),
    Route("/api/datasets", guarded(list_datasets), methods=["GET"]),
]
