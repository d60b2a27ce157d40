"""The Query Data API as Honeycomb serves it, plus Apiary's query history and saved queries.

``POST /1/queries/{dataset}`` stores a spec and returns its id;
``POST /1/query_results/{dataset}`` runs it (synchronously: the answer is
``complete`` at once) and ``GET /1/query_results/{dataset}/{id}`` fetches it
again. ``/api/queries/history``, ``/api/queries/saved`` and ``/api/bubbleup`` are Apiary's own.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol
from urllib.parse import unquote

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from apiary.input_limits import InputError, load_json
from apiary.query import result_json
from apiary.query.bubbleup import parse_request, run_bubbleup
from apiary.query.engine import DatasetNotFound, plan_query, run_query
from apiary.query.history import QueryBook
from apiary.query.spec import SpecError, parse_spec
from apiary.keyed_routes import error, guarded
from apiary.permissions import Permission, needs
from apiary.store.base import Store
from apiary.store.meta import ApiKey

_MAX_SPEC_BYTES = 1 << 20


class QuerySource(Protocol):
    """What these routes get of the server (``app.state.query``): the span store and the query book."""

    store: Store
    book: QueryBook


def _source(request: Request) -> QuerySource:
    return request.app.state.query


def _book(request: Request) -> QueryBook:
    return _source(request).book


async def _json(request: Request) -> Any:
    body = await request.body()
    if len(body) > _MAX_SPEC_BYTES:
        raise SpecError("query body is larger than 1 MiB")
    try:
        return load_json(body or b"{}", "query spec")
    except InputError as exc:
        raise SpecError(str(exc)) from None
    except ValueError as exc:
        raise SpecError(f"body is not valid JSON: {exc}") from None


def _dataset(request: Request) -> str:
    return unquote(request.path_params["dataset"])


async def _validate(request: Request, env: str, dataset: str, doc: Any) -> dict[str, Any]:
    """Check a spec against the dataset's columns too, so a bad query fails when created, not only when run."""
    store = _source(request).store
    spec = parse_spec(doc)
    await asyncio.to_thread(plan_query, store, env, dataset, spec)
    return doc


@needs(Permission.READ)
async def create_query(request: Request, key: ApiKey) -> Response:
    dataset = _dataset(request)
    try:
        doc = await _validate(request, key.environment, dataset, await _json(request))
    except SpecError as exc:
        return error(400, str(exc))
    except DatasetNotFound as exc:
        return error(404, str(exc))
    qid = _book(request).add_spec(key.environment, dataset, doc)
    return JSONResponse({"id": qid, **doc})


@needs(Permission.READ)
async def get_query(request: Request, key: ApiKey) -> Response:
    found = _book(request).spec(key.environment, request.path_params["query_id"])
    if found is None or found.dataset != _dataset(request):
        return error(404, "query not found")
    return JSONResponse({"id": found.id, **found.spec})


async def execute(request: Request, env: str, dataset: str, doc: dict[str, Any], qid: str,
                  disable_series: bool = False) -> dict[str, Any]:
    """Run a stored spec, record the run in the history, keep the result; raises SpecError / DatasetNotFound."""
    store = _source(request).store
    book = _book(request)
    spec = parse_spec(doc)
    try:
        outcome = await asyncio.to_thread(run_query, store, env, dataset, spec, None, None, disable_series)
    except (SpecError, DatasetNotFound) as exc:
        await asyncio.to_thread(book.record_run, env, dataset, qid, doc, 0.0, None, str(exc))
        raise
    await asyncio.to_thread(book.record_run, env, dataset, qid, doc, outcome.elapsed_ms, len(outcome.data["results"]))
    text = await asyncio.to_thread(result_json.dumps, outcome.data)  # once, for the history and the answer
    rid = await asyncio.to_thread(book.add_result, env, dataset, qid, text)
    return _result_doc(request, dataset, rid, qid, result_json.Stored(text), outcome.elapsed_ms)


class ResultResponse(JSONResponse):
    """JSON written by orjson, with a result's data spliced in as already-encoded text."""

    def render(self, content: Any) -> bytes:
        return result_json.dumps(content)


def _result_doc(request: Request, dataset: str, rid: str, qid: str, data: result_json.Stored,
                elapsed_ms: float | None = None) -> dict[str, Any]:
    base = str(request.base_url).rstrip("/")
    doc = {"id": rid, "query_id": qid, "complete": True, "data": data,
           "links": {"query_url": f"{base}/1/query_results/{dataset}/{rid}", "graph_image_url": ""}}
    if elapsed_ms is not None:
        doc["elapsed_ms"] = round(elapsed_ms, 3)
    return doc


@needs(Permission.READ)
async def create_result(request: Request, key: ApiKey) -> Response:
    dataset = _dataset(request)
    try:
        body = await _json(request)
        if not isinstance(body, dict) or not isinstance(body.get("query_id"), str):
            raise SpecError("query_id: give the id returned by POST /1/queries/{dataset}")
        found = _book(request).spec(key.environment, body["query_id"])
        if found is None or found.dataset != dataset:
            return error(404, f"query {body['query_id']!r} not found for dataset {dataset!r}")
        doc = await execute(request, key.environment, dataset, found.spec, found.id, bool(body.get("disable_series")))
    except SpecError as exc:
        return error(400, str(exc))
    except DatasetNotFound as exc:
        return error(404, str(exc))
    return ResultResponse(doc, 201)


@needs(Permission.READ)
async def get_result(request: Request, key: ApiKey) -> Response:
    dataset = _dataset(request)
    found = await asyncio.to_thread(_book(request).result, key.environment, request.path_params["result_id"])
    if found is None or found[0] != dataset:
        return error(404, "query result not found")
    return ResultResponse(_result_doc(request, dataset, request.path_params["result_id"], found[1], found[2]))


# -- Apiary's own: history and saved queries ---------------------------------------------------------


@needs(Permission.READ)
async def list_history(request: Request, key: ApiKey) -> Response:
    try:
        limit = max(1, min(1000, int(request.query_params.get("limit", "50"))))
    except ValueError:
        return error(400, "limit must be a number")
    return JSONResponse({"history": await asyncio.to_thread(_book(request).history, key.environment, limit)})


@needs(Permission.READ)
async def list_saved(request: Request, key: ApiKey) -> Response:
    return JSONResponse({"saved": await asyncio.to_thread(_book(request).saved, key.environment)})


@needs(Permission.CONFIGURE)
async def save_query(request: Request, key: ApiKey) -> Response:
    try:
        body = await _json(request)
        if not isinstance(body, dict):
            raise SpecError("expected {\"name\": ..., \"dataset\": ..., \"query\": {...}}")
        name, dataset, doc = body.get("name"), body.get("dataset"), body.get("query")
        if not isinstance(name, str) or not name.strip() or len(name) > 200:
            raise SpecError("name: give the saved query a name (at most 200 characters)")
        if not isinstance(dataset, str) or not dataset:
            raise SpecError("dataset: give the dataset (or __all__)")
        await _validate(request, key.environment, dataset, doc)
    except SpecError as exc:
        return error(400, str(exc))
    except DatasetNotFound as exc:
        return error(404, str(exc))
    await asyncio.to_thread(_book(request).save, key.environment, name.strip(), dataset, doc)
    return JSONResponse({"name": name.strip(), "dataset": dataset, "query": doc}, 201)


async def _saved_one(request: Request, key: ApiKey) -> dict[str, Any] | None:
    found = await asyncio.to_thread(_book(request).saved, key.environment, unquote(request.path_params["name"]))
    return found[0] if found else None


@needs(Permission.READ)
async def get_saved(request: Request, key: ApiKey) -> Response:
    found = await _saved_one(request, key)
    return JSONResponse(found) if found else error(404, "no saved query by that name")


@needs(Permission.CONFIGURE)
async def delete_saved(request: Request, key: ApiKey) -> Response:
    gone = await asyncio.to_thread(_book(request).delete, key.environment, unquote(request.path_params["name"]))
    return Response(status_code=204) if gone else error(404, "no saved query by that name")


@needs(Permission.READ)
async def run_saved(request: Request, key: ApiKey) -> Response:
    found = await _saved_one(request, key)
    if not found:
        return error(404, "no saved query by that name")
    qid = _book(request).add_spec(key.environment, found["dataset"], found["query"])
    try:
        doc = await execute(request, key.environment, found["dataset"], found["query"], qid)
    except SpecError as exc:
        return error(400, str(exc))
    except DatasetNotFound as exc:
        return error(404, str(exc))
    return ResultResponse(doc, 201)


@needs(Permission.READ)
async def bubbleup(request: Request, key: ApiKey) -> Response:
    """``POST /api/bubbleup``: how a selection of a query's rows differs from the rest, column by column."""
    store = _source(request).store
    try:
        dataset, spec, selection = parse_request(await _json(request))
        outcome = await asyncio.to_thread(run_bubbleup, store, key.environment, dataset, spec, selection)
    except SpecError as exc:
        return error(400, str(exc))
    except DatasetNotFound as exc:
        return error(404, str(exc))
    return JSONResponse({**outcome.data, "elapsed_ms": round(outcome.elapsed_ms, 3)})


routes = [
    Route("/1/queries/{dataset}", guarded(create_query), methods=["POST"]),
    Route("/1/queries/{dataset}/{query_id}", guarded(get_query), methods=["GET"]),
    Route("/1/query_results/{dataset}", guarded(create_result), methods=["POST"]),
    Route("/1/query_results/{dataset}/{result_id}", guarded(get_result), methods=["GET"]),
    Route("/api/queries/history", guarded(list_history), methods=["GET"]),
    Route("/api/queries/saved", guarded(list_saved), methods=["GET"]),
    Route("/api/queries/saved", guarded(save_query), methods=["POST"]),
    Route("/api/queries/saved/{name}", guarded(get_saved), methods=["GET"]),
    Route("/api/queries/saved/{name}", guarded(delete_saved), methods=["DELETE"]),
    Route("/api/queries/saved/{name}/run", guarded(run_saved), methods=["POST"]),
    Route("/api/bubbleup", guarded(bubbleup), methods=["POST"]),
]
