"""``GET /api/traces/{trace_id}``: one trace, every span under Honeycomb's column names."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from apiary.model.ids import normalise_trace_id
from apiary.model.trace import rows_to_spans
from apiary.receivers.honeycomb.http import authenticate, error
from apiary.server.context import Apiary


async def get_trace(request: Request) -> Response:
    ctx: Apiary = request.app.state.apiary
    key = authenticate(request, read=True)
    if isinstance(key, Response):
        return key
    try:
        trace_id = normalise_trace_id(request.path_params["trace_id"])
    except ValueError as exc:
        return error(400, str(exc))
    table = ctx.store.trace(key.environment, trace_id)
    if table.num_rows == 0:
        return error(404, f"trace {trace_id} not found in environment {key.environment!r}")
    return JSONResponse({"trace_id": trace_id, "environment": key.environment, "spans": rows_to_spans(table)})


routes = [Route("/api/traces/{trace_id}", get_trace, methods=["GET"])]
