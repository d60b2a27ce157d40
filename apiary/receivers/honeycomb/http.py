"""Honeycomb's own HTTP API: events in (``/1/events``, ``/1/batch``), columns and auth out.

Answers follow Honeycomb: JSON ``{"error": "..."}`` bodies, 401 for a bad
``X-Honeycomb-Team``, a per-event status list for batches.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import unquote

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from apiary.receivers.encoding import BadEncoding, BodyTooLarge, UnsupportedEncoding, decompress, read_body
from apiary.receivers.honeycomb.events import EventError, batch_events, single_event
from apiary.server.context import Apiary
from apiary.store.base import ColumnInfo, StoreOverloaded, StoreUnavailable
from apiary.store.meta import ApiKey

KEY_HEADER = "X-Honeycomb-Team"


def error(status: int, message: str, retry_after: int | None = None) -> JSONResponse:
    headers = {"Retry-After": str(retry_after)} if retry_after else None
    return JSONResponse({"error": message}, status, headers)


def authenticate(request: Request, *, read: bool = False) -> ApiKey | JSONResponse:
    ctx: Apiary = request.app.state.apiary
    key = request.headers.get(KEY_HEADER)
    if not key:
        return error(401, f"missing API key: set the {KEY_HEADER} header")
    found = ctx.authenticate(key)
    if found is None:
        return error(401, f"unknown API key - check the {KEY_HEADER} header")
    if read and not found.can_read:
        return error(401, "this API key can only send data; use a key created without --ingest-only to read")
    return found


async def _body(request: Request) -> bytes:
    ctx: Apiary = request.app.state.apiary
    limit = ctx.settings.max_body_bytes
    raw = await read_body(request, limit)
    return decompress(raw, request.headers.get("content-encoding"), limit)


async def _ingest(request: Request, batch_mode: bool) -> Response:
    ctx: Apiary = request.app.state.apiary
    key = authenticate(request)
    if isinstance(key, Response):
        return key
    dataset = unquote(request.path_params["dataset"]).strip()
    if not dataset:
        return error(400, "dataset name in the URL is empty")
    try:
        body = await _body(request)
        if batch_mode:  # a large batch is parsed in a decode worker, off the event loop, as OTLP bodies are
            batch, answers = await ctx.pool.run(len(body), batch_events, dataset, body, ctx.settings.span_limits)
        else:
            batch = single_event(dataset, body, request.headers.get("X-Honeycomb-Event-Time"),
                                 request.headers.get("X-Honeycomb-Samplerate"), ctx.settings.span_limits)
            answers = []
        await ctx.store.append(key.environment, batch)
    except BodyTooLarge as exc:
        return error(413, str(exc))
    except UnsupportedEncoding as exc:
        return error(415, str(exc))
    except (EventError, BadEncoding) as exc:
        return error(400, str(exc))
    except StoreOverloaded as exc:
        return error(429, "too many events waiting to be committed; retry later", exc.retry_after)
    except StoreUnavailable as exc:
        return error(503, str(exc), exc.retry_after)
    if batch_mode:
        return JSONResponse(answers, 200)
    return Response(status_code=200)


async def post_event(request: Request) -> Response:
    return await _ingest(request, batch_mode=False)


async def post_batch(request: Request) -> Response:
    return await _ingest(request, batch_mode=True)


def _iso(dt: datetime) -> str:
    return dt.isoformat().replace("+00:00", "Z")


def column_json(c: ColumnInfo) -> dict[str, Any]:
    return {"id": f"{c.name}:{c.type}", "key_name": c.name, "type": c.type, "description": "", "hidden": False,
            "last_written": _iso(c.last_seen), "created_at": _iso(c.first_seen), "updated_at": _iso(c.last_seen)}


async def get_columns(request: Request) -> Response:
    ctx: Apiary = request.app.state.apiary
    key = authenticate(request, read=True)
    if isinstance(key, Response):
        return key
    dataset = unquote(request.path_params["dataset"])
    if dataset == "__all__":
        cols = ctx.store.columns(key.environment, None)
    else:
        if dataset not in {d.name for d in ctx.store.datasets(key.environment)}:
            return error(404, f"dataset {dataset!r} not found in environment {key.environment!r}")
        cols = ctx.store.columns(key.environment, dataset)
    wanted = request.query_params.get("key_name")
    if wanted is not None:
        for c in cols:
            if c.name == wanted:
                return JSONResponse(column_json(c))
        return error(404, f"column {wanted!r} not found")
    return JSONResponse([column_json(c) for c in cols])


async def get_auth(request: Request) -> Response:
    key = authenticate(request)
    if isinstance(key, Response):
        return key
    return JSONResponse({
        "id": str(key.id),
        "type": "configuration" if key.can_read else "ingest",
        "api_key_access": {"events": True, "markers": key.can_read, "queries": key.can_read, "columns": key.can_read},
        "environment": {"name": key.environment, "slug": key.environment},
        "team": {"name": "apiary", "slug": "apiary"},
    })


routes = [
    Route("/1/events/{dataset:path}", post_event, methods=["POST"]),
    Route("/1/batch/{dataset:path}", post_batch, methods=["POST"]),
    Route("/1/columns/{dataset:path}", get_columns, methods=["GET"]),
    Route("/1/auth", get_auth, methods=["GET"]),
]
