"""The errors pages: items with sparklines, one item's occurrences, and an item's status (as Rollbar's PATCH)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from apiary.permissions import Permission, needs
from apiary.keyed_routes import error
from apiary.server.ui.access import context
from apiary.server.ui.params import int_param
from apiary.store.base import ErrorStore
from apiary.ui import queries

SPARK_BUCKETS = 48
SPARK_BUCKET_S = 1800


def _store(request: Request) -> ErrorStore | Response:
    errors = context(request).errors
    return error(503, "the errors store is not open") if errors is None else errors


@needs(Permission.READ)
async def error_items(request: Request, env: str) -> Response:
    errors = _store(request)
    if isinstance(errors, Response):
        return errors
    status = request.query_params.get("status") or None
    if status not in (None, "active", "resolved", "muted"):
        return error(400, "status must be active, resolved or muted")
    items = errors.items(env, status)[:500]
    now = datetime.now(timezone.utc)
    start = now.replace(second=0, microsecond=0, minute=0 if now.minute < 30 else 30)
    start = datetime.fromtimestamp(start.timestamp() - (SPARK_BUCKETS - 1) * SPARK_BUCKET_S, timezone.utc)
    spark = await asyncio.to_thread(queries.error_sparklines, errors, env, [i.id for i in items], start,
                                    SPARK_BUCKET_S, SPARK_BUCKETS)
    return JSONResponse({"environment": env,
                         "spark": {"start": queries.seconds_iso(start.timestamp()), "bucket_s": SPARK_BUCKET_S},
                         "items": [{**queries.item_json(i), "sparkline": spark.get(i.id, [])} for i in items]})


@needs(Permission.READ)
async def error_item(request: Request, env: str) -> Response:
    errors = _store(request)
    if isinstance(errors, Response):
        return errors
    try:
        item_id = int(request.path_params["item_id"])
        offset = int_param(request, "offset", 0, 0, 10**9) or 0
    except ValueError:
        return error(400, "item ids and offsets are integers")
    item = errors.item(env, item_id)
    if item is None:
        return error(404, f"error item {request.path_params['item_id']} not found")
    rows = await asyncio.to_thread(errors.occurrences, env, item_id, 20, offset)
    return JSONResponse({"environment": env, "item": queries.item_json(item), "offset": offset,
                         "occurrences": [queries.occurrence_json(r) for r in rows]})


@needs(Permission.CONFIGURE)
async def error_item_status(request: Request, env: str) -> Response:
    """Body ``{"status": "resolved" | "muted" | "active"}``: through the error store, as Rollbar's PATCH does."""
    errors = _store(request)
    if isinstance(errors, Response):
        return errors
    try:
        body = await request.json()
        item_id = int(request.path_params["item_id"])
    except ValueError:
        return error(400, "body must be JSON: {\"status\": \"resolved\"}")
    status = body.get("status") if isinstance(body, dict) else None
    if status not in ("active", "resolved", "muted"):
        return error(400, "status must be active, resolved or muted")
    item = await errors.set_status(env, item_id, status, None)
    if item is None:
        return error(404, f"error item {item_id} not found")
    return JSONResponse({"environment": env, "item": queries.item_json(item)})
