"""Honeycomb's own HTTP API: events in (``/1/events``, ``/1/batch``), columns and auth out.

Answers follow Honeycomb: JSON ``{"error": "..."}`` bodies, 401 for a bad
``X-Honeycomb-Team``, a per-event status list for batches.
"""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any, Awaitable, Callable
from urllib.parse import unquote

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from apiary.permissions import Permission, Refusal, needs, permission_of, resolve
from apiary.receivers.encoding import BadEncoding, BodyTooLarge, UnsupportedEncoding, decompress, read_body
from apiary.receivers.honeycomb.events import EventError, batch_events, single_event
from apiary.server.context import Apiary
from apiary.store.base import ColumnInfo, StoreOverloaded, StoreUnavailable
from apiary.store.meta import ApiKey

KEY_HEADER = "X-Honeycomb-Team"


def error(status: int, message: str, retry_after: int | None = None) -> JSONResponse:
    headers = {"Retry-After": str(retry_after)} if retry_after else None
    return JSONResponse({"error": message}, status, headers)


def refused(exc: Refusal) -> JSONResponse:
    """Honeycomb's answer: 401 for a missing or unknown key, 403 for a key without the permission."""
    return error(403 if exc.authenticated else 401, exc.message)


def authorize(request: Request, need: Permission) -> ApiKey | JSONResponse:
    """The ``X-Honeycomb-Team`` key if it may do ``need`` (`apiary.permissions.resolve`), else the refusal."""
    ctx: Apiary = request.app.state.apiary
    try:
        key = resolve(request.headers.get(KEY_HEADER), need, ctx.authenticate, f"{request.method} {request.url.path}",
                      f"the {KEY_HEADER} header")
    except Refusal as exc:
        return refused(exc)
    assert key is not None, "a keyed route declared PUBLIC"
    return key


KeyedEndpoint = Callable[[Request, ApiKey], Awaitable[Response]]


def guarded(endpoint: KeyedEndpoint) -> Callable[[Request], Awaitable[Response]]:
    """The route endpoint for ``endpoint(request, key)``: it runs once the key holds what ``endpoint`` `needs`.

    Every route keyed by ``X-Honeycomb-Team`` (Honeycomb's APIs, Apiary's own JSON API) is built with it, so
    a route without a declared permission cannot be built at all.
    """
    need = permission_of(endpoint)

    @functools.wraps(endpoint)
    async def run(request: Request) -> Response:
        key = authorize(request, need)
        if isinstance(key, Response):
            return key
        return await endpoint(request, key)

    run.permission = need  # type: ignore[attr-defined]
    return run


async def _body(request: Request) -> bytes:
    ctx: Apiary = request.app.state.apiary
    limit = ctx.settings.max_body_bytes
    raw = await read_body(request, limit)
    return decompress(raw, request.headers.get("content-encoding"), limit)


async def _ingest(request: Request, key: ApiKey, batch_mode: bool) -> Response:
    ctx: Apiary = request.app.state.apiary
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


@needs(Permission.INGEST)
async def post_event(request: Request, key: ApiKey) -> Response:
    return await _ingest(request, key, batch_mode=False)


@needs(Permission.INGEST)
async def post_batch(request: Request, key: ApiKey) -> Response:
    return await _ingest(request, key, batch_mode=True)


def _iso(dt: datetime) -> str:
    return dt.isoformat().replace("+00:00", "Z")


def column_json(c: ColumnInfo) -> dict[str, Any]:
    return {"id": f"{c.name}:{c.type}", "key_name": c.name, "type": c.type, "description": "", "hidden": False,
            "last_written": _iso(c.last_seen), "created_at": _iso(c.first_seen), "updated_at": _iso(c.last_seen)}


@needs(Permission.READ)
async def get_columns(request: Request, key: ApiKey) -> Response:
    ctx: Apiary = request.app.state.apiary
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


@needs(Permission.INGEST)  # as Honeycomb's /1/auth: any valid key may ask what it is
async def get_auth(request: Request, key: ApiKey) -> Response:
    return JSONResponse({
        "id": str(key.id),
        "type": "configuration" if key.can_read else "ingest",
        "api_key_access": {"events": True, "markers": key.can_read, "queries": key.can_read, "columns": key.can_read},
        "environment": {"name": key.environment, "slug": key.environment},
        "team": {"name": "apiary", "slug": "apiary"},
    })


routes = [
    Route("/1/events/{dataset:path}", guarded(post_event), methods=["POST"]),
    Route("/1/batch/{dataset:path}", guarded(post_batch), methods=["POST"]),
    Route("/1/columns/{dataset:path}", guarded(get_columns), methods=["GET"]),
    Route("/1/auth", guarded(get_auth), methods=["GET"]),
]
