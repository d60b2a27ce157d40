"""Honeycomb's own HTTP API: events in (``/1/events``, ``/1/batch``), columns and auth out.

Answers follow Honeycomb: JSON ``{"error": "..."}`` bodies, 401 for a bad
``X-Honeycomb-Team`` (`apiary.keyed_routes`), a per-event status list for
batches. The receiver sees the server only through `HoneycombSink`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import unquote

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from apiary.keyed_routes import error, guarded
from apiary.permissions import Permission, needs
from apiary.receivers.encoding import decompress, read_body
from apiary.receivers.honeycomb.events import batch_events, single_event
from apiary.receivers.honeycomb.sink import HoneycombSink
from apiary.receivers.refusals import refusal_for
from apiary.store.base import ColumnInfo
from apiary.store.meta import ApiKey

def _sink(request: Request) -> HoneycombSink:
    return request.app.state.honeycomb


async def _body(request: Request) -> bytes:
    limit = _sink(request).max_body_bytes
    raw = await read_body(request, limit)
    return decompress(raw, request.headers.get("content-encoding"), limit)


async def _ingest(request: Request, key: ApiKey, batch_mode: bool) -> Response:
    sink = _sink(request)
    dataset = unquote(request.path_params["dataset"]).strip()
    if not dataset:
        return error(400, "dataset name in the URL is empty")
    try:
        body = await _body(request)
        if batch_mode:  # a large batch is parsed in a decode worker, off the event loop, as OTLP bodies are
            batch, answers = await sink.decode(len(body), batch_events, dataset, body, sink.span_limits)
        else:
            batch = single_event(dataset, body, request.headers.get("X-Honeycomb-Event-Time"),
                                 request.headers.get("X-Honeycomb-Samplerate"), sink.span_limits)
            answers = []
        await sink.append_spans(key.environment, batch)
    except Exception as exc:
        refusal = refusal_for(exc, "events")
        if refusal is None:
            raise
        return error(refusal.http_status, refusal.message, refusal.retry_after)
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
    store = _sink(request).store
    dataset = unquote(request.path_params["dataset"])
    if dataset == "__all__":
        cols = store.columns(key.environment, None)
    else:
        if dataset not in {d.name for d in store.datasets(key.environment)}:
            return error(404, f"dataset {dataset!r} not found in environment {key.environment!r}")
        cols = store.columns(key.environment, dataset)
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
