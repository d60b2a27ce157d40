"""Rollbar's API on the main port: ``POST /api/1/item/`` to report, and the read API basics.

pyrollbar reaches it with ``rollbar.init(key, endpoint='http://127.0.0.1:4318/api/1/')``.
The access token is an Apiary key, in ``X-Rollbar-Access-Token`` or the body's
``access_token``. Rollbar's token scopes map onto Apiary's key kinds: a full
key acts as a ``post_server_item`` + ``read`` + ``write`` token; an
ingest-only key -- the kind safe to ship inside a browser bundle -- acts as a
``post_client_item`` token and may only report items from client platforms.

Answers are Rollbar's: ``{"err": 0, "result": ...}``, or ``{"err": 1,
"message": ...}`` with 400 (not JSON), 401 (no or unknown token), 403 (token
lacks the scope), 413 (too large), 422 (JSON but not an item), 429 (slow down).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from apiary.input_limits import InputError, load_json
from apiary.model.error import LEVELS, STATUSES
from apiary.permissions import Permission, Refusal, needs, permission_of, resolve
from apiary.receivers.encoding import decompress, read_body
from apiary.receivers.refusals import refusal_for
from apiary.receivers.rollbar.items import CLIENT_PLATFORMS, PayloadError, decode
from apiary.receivers.rollbar.sink import RollbarSink
from apiary.store.base import ErrorItem
from apiary.store.meta import ApiKey

TOKEN_HEADER = "X-Rollbar-Access-Token"
MAX_PAYLOAD = 1024 * 1024  # Rollbar refuses items over 1 MiB
PAGE = 100


def error(status: int, message: str, retry_after: int | None = None) -> JSONResponse:
    headers = {"Retry-After": str(retry_after)} if retry_after else None
    return JSONResponse({"err": 1, "message": message}, status, headers)


def ok(result: Any) -> JSONResponse:
    return JSONResponse({"err": 0, "result": result})


def refused(exc: Exception) -> JSONResponse:
    """Rollbar's words for the answer `apiary.receivers.refusals` gives ``exc``; an error that is a bug propagates."""
    refusal = refusal_for(exc, "items")
    if refusal is None:
        raise exc
    message = refusal.message
    if refusal.http_status == 413:
        message = f"request entity too large: items may be at most {MAX_PAYLOAD} bytes"
    elif refusal.http_status == 429:
        message = f"rate limit reached: {refusal.message}"
    # Rollbar's API documents no 415: a body it cannot read is a 400.
    return error(400 if refusal.http_status == 415 else refusal.http_status, message, refusal.retry_after)


def _sink(request: Request) -> RollbarSink:
    return request.app.state.rollbar


def _authorize(sink: RollbarSink, token: str | None, endpoint: Any) -> ApiKey | JSONResponse:
    """The token's key if it holds what ``endpoint`` `needs`; Rollbar's 401 (no or unknown token) or 403 otherwise."""
    need = permission_of(endpoint)
    try:
        key = resolve(token, need, sink.authenticate, endpoint.__name__, f"the {TOKEN_HEADER} header or as access_token")
    except Refusal as exc:
        if exc.kind == "missing":
            return error(401, f"access token required: send an Apiary key in the {TOKEN_HEADER} header or as access_token")
        if exc.kind == "unknown":
            return error(401, "invalid access token: use an Apiary key (`apiary keys list`)")
        return error(403, f"access token does not have {need.value} scope: a post_client_item token (an ingest-only "
                          "Apiary key) may only report items; use a full Apiary key")
    assert key is not None
    return key


@needs(Permission.INGEST)
async def post_item(request: Request) -> Response:
    sink = _sink(request)
    errors = sink.errors
    if errors is None:
        return error(503, "the error store is not open", 5)
    try:
        raw = await read_body(request, MAX_PAYLOAD)
        body = decompress(raw, request.headers.get("content-encoding"), MAX_PAYLOAD)
    except Exception as exc:  # too large, unreadable, or the server's body budget spent for now
        return refused(exc)
    try:
        payload = load_json(body)
    except InputError as exc:
        return error(400, f"invalid JSON: {exc}")
    except (ValueError, UnicodeDecodeError):
        return error(400, "invalid JSON: the body must be a JSON object {\"access_token\": ..., \"data\": {...}}")
    token = request.headers.get(TOKEN_HEADER) or (payload.get("access_token") if isinstance(payload, dict) else None)
    key = _authorize(sink, token if isinstance(token, str) else None, post_item)
    if isinstance(key, Response):
        return key
    try:
        occurrence = decode(payload)
    except PayloadError as exc:
        return error(422, f"invalid item: {exc}")
    if not key.can_read and (occurrence.platform or "").lower() not in CLIENT_PLATFORMS:
        return error(403, "access token not authorized for this item: a post_client_item token (an ingest-only Apiary "
                          f"key) may only report items from client platforms ({', '.join(sorted(CLIENT_PLATFORMS))}), "
                          f"not platform {occurrence.platform!r}; use a post_server_item token (a full key)")
    try:
        await errors.report(key.environment, [occurrence])
    except Exception as exc:
        return refused(exc)
    return ok({"id": None, "uuid": occurrence.uuid})


def _read_key(request: Request, endpoint: Any) -> ApiKey | JSONResponse:
    sink = _sink(request)
    if sink.errors is None:
        return error(503, "the error store is not open", 5)
    return _authorize(sink, request.headers.get(TOKEN_HEADER) or request.query_params.get("access_token"), endpoint)


def item_json(item: ErrorItem) -> dict[str, Any]:
    return {
        "id": item.id, "counter": item.counter, "project_id": 1, "environment": item.environment,
        "framework": item.framework, "platform": item.platform, "language": item.language, "hash": item.key,
        "title": item.title, "level": item.level, "level_lock": 0, "status": item.status,
        "total_occurrences": item.total_occurrences, "unique_occurrences": None,
        "first_occurrence_id": item.first_occurrence_id, "first_occurrence_timestamp": int(item.first_occurrence_timestamp),
        "last_occurrence_id": item.last_occurrence_id, "last_occurrence_timestamp": int(item.last_occurrence_timestamp),
        "activating_occurrence_id": item.activating_occurrence_id,
        "last_activated_timestamp": int(item.last_activated_timestamp),
        "last_resolved_timestamp": int(item.last_resolved_timestamp) if item.last_resolved_timestamp else None,
        "last_muted_timestamp": int(item.last_muted_timestamp) if item.last_muted_timestamp else None,
        "assigned_user_id": None, "resolved_in_version": None,
        "trace_id": item.last_trace_id,  # Apiary: the trace of the latest occurrence that carried one
    }


def instance_json(row: dict[str, Any]) -> dict[str, Any]:
    out = {"id": row["id"], "project_id": 1, "item_id": row["item_id"], "timestamp": row["ts_ms"] // 1000,
           "version": 2, "billable": 1, "data": row["data"], "trace_id": row["trace_id"], "span_id": row["span_id"]}
    if row["trace_id"]:
        out["trace_url"] = f"/api/traces/{row['trace_id']}"
    return out


def _item_id(request: Request) -> int | None:
    try:
        return int(request.path_params["item_id"])
    except ValueError:
        return None


@needs(Permission.READ)
async def list_items(request: Request) -> Response:
    key = _read_key(request, list_items)
    if isinstance(key, Response):
        return key
    errors = _sink(request).errors
    assert errors is not None  # _read_key answered 503 otherwise
    q = request.query_params
    status, level = q.get("status"), q.get("level")
    if status and status not in STATUSES:
        return error(422, f"status must be one of {', '.join(STATUSES)}")
    if level and level not in LEVELS:
        return error(422, f"level must be one of {', '.join(LEVELS)}")
    page = max(1, int(q.get("page", "1"))) if q.get("page", "1").isdigit() else 1
    items = errors.items(key.environment, status, level, q.get("environment"))
    chosen = items[(page - 1) * PAGE: page * PAGE]
    return ok({"items": [item_json(i) for i in chosen], "page": page, "total_count": len(items)})


@needs(Permission.READ)
async def get_item(request: Request) -> Response:
    key = _read_key(request, get_item)
    if isinstance(key, Response):
        return key
    errors = _sink(request).errors
    assert errors is not None  # _read_key answered 503 otherwise
    item_id = _item_id(request)
    item = errors.item(key.environment, item_id) if item_id is not None else None
    if item is None:
        return error(404, f"item {request.path_params['item_id']} not found")
    return ok(item_json(item))


@needs(Permission.CONFIGURE)
async def patch_item(request: Request) -> Response:
    key = _read_key(request, patch_item)
    if isinstance(key, Response):
        return key
    errors = _sink(request).errors
    assert errors is not None  # _read_key answered 503 otherwise
    try:
        raw = await read_body(request, 64 * 1024)
    except Exception as exc:
        return refused(exc)
    try:
        body = load_json(raw or b"{}")
    except (ValueError, UnicodeDecodeError):
        return error(400, "invalid JSON body: send {\"status\": \"resolved\"} or {\"status\": \"muted\"}")
    status, level = body.get("status") if isinstance(body, dict) else None, body.get("level") if isinstance(body, dict) else None
    if status is not None and status not in STATUSES:
        return error(422, f"status must be one of {', '.join(STATUSES)}")
    if level is not None and level not in LEVELS:
        return error(422, f"level must be one of {', '.join(LEVELS)}")
    item_id = _item_id(request)
    try:
        item = await errors.set_status(key.environment, item_id, status, level) if item_id is not None else None
    except Exception as exc:
        return refused(exc)
    if item is None:
        return error(404, f"item {request.path_params['item_id']} not found")
    return ok(item_json(item))


@needs(Permission.READ)
async def item_instances(request: Request) -> Response:
    key = _read_key(request, item_instances)
    if isinstance(key, Response):
        return key
    errors = _sink(request).errors
    assert errors is not None  # _read_key answered 503 otherwise
    item_id = _item_id(request)
    if item_id is None or errors.item(key.environment, item_id) is None:
        return error(404, f"item {request.path_params['item_id']} not found")
    page = int(request.query_params.get("page", "1")) if request.query_params.get("page", "1").isdigit() else 1
    rows = errors.occurrences(key.environment, item_id, limit=20, offset=(max(page, 1) - 1) * 20)
    return ok({"instances": [instance_json(r) for r in rows], "page": page})


@needs(Permission.READ)
async def get_instance(request: Request) -> Response:
    key = _read_key(request, get_instance)
    if isinstance(key, Response):
        return key
    errors = _sink(request).errors
    assert errors is not None  # _read_key answered 503 otherwise
    row = errors.occurrence(key.environment, request.path_params["instance"])
    if row is None:
        return error(404, f"instance {request.path_params['instance']} not found")
    return ok(instance_json(row))


async def unknown_path(request: Request) -> Response:
    """Any other path under /api/1/ answers in Rollbar's JSON, which the SDKs parse, never Starlette's plain text."""
    path = request.url.path
    allowed = sorted({m for r in routes[:-1] if r.path_regex.match(path) for m in (r.methods or ()) if m != "HEAD"})
    if allowed:
        return JSONResponse({"err": 1, "message": f"method {request.method} not allowed on {path}: use "
                                                  f"{' or '.join(allowed)}"}, 405, {"Allow": ", ".join(allowed)})
    return error(404, f"no Rollbar API endpoint at {path}: items are posted to /api/1/item/")


routes = [
    # The Node.js SDK uses its `endpoint` option as the whole item URL, so the README's `…/api/1/` is posted to as is;
    # pyrollbar appends `item/` to the same value.
    Route("/api/1/", post_item, methods=["POST"]),
    Route("/api/1/item/", post_item, methods=["POST"]),
    Route("/api/1/item", post_item, methods=["POST"]),
    Route("/api/1/items", list_items, methods=["GET"]),
    Route("/api/1/items/", list_items, methods=["GET"]),
    Route("/api/1/item/{item_id}", get_item, methods=["GET"]),
    Route("/api/1/item/{item_id}", patch_item, methods=["PATCH"]),
    Route("/api/1/item/{item_id}/instances", item_instances, methods=["GET"]),
    Route("/api/1/instance/{instance}", get_instance, methods=["GET"]),
    Route("/api/1/occurrence/{instance}", get_instance, methods=["GET"]),
    Route("/api/1/{rest:path}", unknown_path, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
]
