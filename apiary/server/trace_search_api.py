"""``POST /api/traces/search`` and ``GET /api/traces/compare/{a}/{b}``: routes only, the work is in apiary/query and apiary/model."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from apiary.model.ids import normalise_trace_id
from apiary.model.trace import rows_to_spans
from apiary.model.trace_compare import compare_traces
from apiary.query.spec import SpecError
from apiary.query.trace_search import search_traces
from apiary.permissions import Permission, needs
from apiary.keyed_routes import error, guarded
from apiary.store.meta import ApiKey
from apiary.server.context import Apiary

_MAX_BODY = 1 << 20


@needs(Permission.READ)
async def search(request: Request, key: ApiKey) -> Response:
    ctx: Apiary = request.app.state.apiary
    body = await request.body()
    if len(body) > _MAX_BODY:
        return error(413, "a trace search is at most 1 MiB")
    try:
        doc = json.loads(body or b"{}")
    except ValueError as exc:
        return error(400, f"body is not valid JSON: {exc}")
    try:
        outcome = await asyncio.to_thread(search_traces, ctx.store, key.environment, doc)
    except SpecError as exc:
        return error(400, str(exc))
    return JSONResponse({"environment": key.environment, **outcome.data})


@needs(Permission.READ)
async def compare(request: Request, key: ApiKey) -> Response:
    ctx: Apiary = request.app.state.apiary
    try:
        ids = [normalise_trace_id(request.path_params[p]) for p in ("a", "b")]
    except ValueError as exc:
        return error(400, str(exc))

    def work() -> list[list[dict]] | str:
        found = []
        for trace_id in ids:
            table = ctx.store.trace(key.environment, trace_id)
            if table.num_rows == 0:
                return trace_id
            found.append(rows_to_spans(table))
        return found

    found = await asyncio.to_thread(work)
    if isinstance(found, str):
        return error(404, f"trace {found} not found in environment {key.environment!r}")
    a, b = found
    return JSONResponse({"environment": key.environment, "a": _head(ids[0], a), "b": _head(ids[1], b),
                         "rows": compare_traces(a, b)})


def _head(trace_id: str, spans: list[dict]) -> dict:
    """What the compare page titles each side with."""
    own = [s for s in spans if s.get("meta.annotation_type") is None]
    ids = {s.get("trace.span_id") for s in own}
    root = next((s for s in own if s.get("trace.parent_id") not in ids), own[0] if own else {})
    starts = [datetime.fromisoformat(s["timestamp"].replace("Z", "+00:00")).timestamp() for s in own if s.get("timestamp")]
    ends = [t + (s.get("duration_ms") or 0.0) / 1000 for t, s in zip(starts, own)]
    return {"trace_id": trace_id, "root_name": root.get("name"), "root_service": root.get("service.name"),
            "spans": len(own), "duration_ms": round((max(ends) - min(starts)) * 1000, 3) if starts else 0.0}


routes = [
    Route("/api/traces/search", guarded(search), methods=["POST"]),
    Route("/api/traces/compare/{a}/{b}", guarded(compare), methods=["GET"]),
]
