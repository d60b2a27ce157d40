"""The web UI: its pages (one HTML shell; the front end routes by path), static files and ``/ui/api/*`` JSON.

Auth follows the server's exposure (`apiary.permissions.exposure`). Under
loopback exposure (the default) only this machine can connect, so the UI needs
no login, sees every environment and acts for the one named by an ``env``
parameter. Under network exposure (any other address, or ``--exposure
network``) every ``/ui/api`` call needs a key holding what the call `needs`
in ``X-Honeycomb-Team`` and sees only that key's environment, exactly as the
Honeycomb APIs do. `ui_guarded` is that one check for every JSON route.

In the open (loopback) mode two guards stand in for the key: the ``Host``
header must name a loopback address (so a web page cannot reach the API
through DNS rebinding), and writes need an ``X-Apiary-UI`` header (which a
cross-site form cannot send and a cross-site script cannot send without a
CORS preflight that is refused).
"""

from __future__ import annotations

import asyncio
import functools
import json
import secrets
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Awaitable, Callable

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route, Router
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

from apiary.model.critical_path import critical_path_of_table
from apiary.model.ids import normalise_trace_id
from apiary.model.trace import rows_to_spans
from apiary.permissions import LOOPBACK, Permission, is_loopback, needs, permission_of
from apiary.receivers.honeycomb.http import KEY_HEADER, authorize, column_json, error, get_columns, guarded
from apiary.server.context import Apiary
from apiary.store.meta import ApiKey
from apiary.ui import queries

STATIC_DIR = Path(__file__).resolve().parent.parent / "ui" / "static"
PAGES = ("/", "/trace/{trace_id}", "/traces", "/compare/{a}/{b}", "/query", "/services", "/history", "/settings", "/logs",
         "/errors", "/errors/{item_id}", "/xray", "/metrics", "/runs")
UI_HEADER = "X-Apiary-UI"
MAX_SERVICE_MAP_S = 7 * 86400


def open_mode(ctx: Apiary) -> bool:
    """No login needed: the server is reachable from this machine only (loopback exposure)."""
    return ctx.settings.exposure == LOOPBACK


def _ctx(request: Request) -> Apiary:
    return request.app.state.apiary


def _scope(request: Request, need: Permission) -> list[str] | Response:
    """The environments a UI call may act in: every one (open mode) or the key's, if it holds ``need``."""
    ctx = _ctx(request)
    if open_mode(ctx):
        if not is_loopback(request.url.hostname or ""):
            return error(403, "the UI without a key answers only requests addressed to a loopback host")
        if request.method not in ("GET", "HEAD") and request.headers.get(UI_HEADER) != "1":
            return error(403, f"UI writes need the {UI_HEADER}: 1 header")
        return ctx.meta.environments()
    key = authorize(request, need)
    if isinstance(key, Response):
        return key
    return [key.environment]


def ui_guarded(endpoint: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
    """The route endpoint for a UI JSON call: it runs once `_scope` lets it, for what ``endpoint`` `needs`."""
    need = permission_of(endpoint)

    @functools.wraps(endpoint)
    async def run(request: Request) -> Response:
        if need is not Permission.PUBLIC:
            envs = _scope(request, need)
            if isinstance(envs, Response):
                return envs
            request.state.environments = envs
        return await endpoint(request)

    run.permission = need  # type: ignore[attr-defined]
    return run


def environments_in_scope(request: Request) -> list[str]:
    """Every environment (open mode) or the key's one, as `ui_guarded` found them."""
    return request.state.environments


def environment(request: Request) -> str | Response:
    """The environment a UI call acts for: ``env`` if given and in scope, else the first one."""
    envs = environments_in_scope(request)
    wanted = request.query_params.get("env")
    if wanted:
        if wanted not in envs:
            return error(404 if open_mode(_ctx(request)) else 403, f"environment {wanted!r} is not available here")
        return wanted
    if not envs:
        return error(404, "no environment yet: create one with `apiary keys create <name>`")
    return envs[0]


# -- pages ----------------------------------------------------------------------------------------


_shell_cache: dict[str, str] = {}


@needs(Permission.PUBLIC)  # the same HTML shell for every page; its data comes from the guarded JSON calls
async def page(request: Request) -> Response:
    html = _shell_cache.get("index")
    if html is None:
        html = _shell_cache["index"] = (STATIC_DIR / "index.html").read_text()
    # The CSP and frame options come from the Guard middleware, as on every response.
    return HTMLResponse(html, headers={"Cache-Control": "no-cache"})


# -- JSON -----------------------------------------------------------------------------------------


@needs(Permission.PUBLIC)  # what the front end asks first: whether it needs a key, and if the one it has will do
async def config(request: Request) -> Response:
    ctx = _ctx(request)
    if open_mode(ctx):
        envs = _scope(request, Permission.READ)
        if isinstance(envs, Response):
            return envs
        return JSONResponse({"auth": "none", "environments": envs})
    key = authorize(request, Permission.READ)
    if isinstance(key, Response):  # the front end asks for a key again, saying why this one will not do
        return JSONResponse({"auth": "key", "environments": [],
                             "key_error": json.loads(key.body)["error"] if request.headers.get(KEY_HEADER) else None})
    return JSONResponse({"auth": "key", "environments": [key.environment]})


@needs(Permission.READ)
async def home(request: Request) -> Response:
    envs = environments_in_scope(request)
    env = environment(request)
    if isinstance(env, Response):
        return env
    store = _ctx(request).store
    limit = min(max(int(request.query_params.get("limit", "50") or 50), 1), 500)

    def work() -> dict[str, Any]:
        return {"environment": env,
                "environments": [{"name": e, "datasets": queries.dataset_stats(store, e)} for e in envs],
                "recent": queries.recent_traces(store, env, limit, request.query_params.get("dataset") or None)}

    return JSONResponse(await asyncio.to_thread(work))


@needs(Permission.READ)
async def trace(request: Request) -> Response:
    ctx = _ctx(request)
    try:
        trace_id = normalise_trace_id(request.path_params["trace_id"])
    except ValueError as exc:
        return error(400, str(exc))
    if request.query_params.get("env") or not open_mode(ctx):
        env = environment(request)
        if isinstance(env, Response):
            return env
        candidates = [env]
    else:  # a bare /trace/<id> link: look in every environment
        candidates = environments_in_scope(request)

    def work() -> tuple[str, Any, list[Any], list[Any], dict[str, Any]] | None:
        for e in candidates:
            table = ctx.store.trace(e, trace_id)
            logs = queries.trace_logs(ctx.logs, e, trace_id) if ctx.logs is not None else []
            errs = _trace_errors(ctx, e, trace_id)
            if table.num_rows or logs or errs:
                return e, rows_to_spans(table) if table.num_rows else [], logs, errs, critical_path_of_table(table)
        return None

    found = await asyncio.to_thread(work)
    if found is None:
        return error(404, f"trace {trace_id} not found")
    return JSONResponse({"trace_id": trace_id, "environment": found[0], "spans": found[1], "logs": found[2],
                         "errors": found[3], "critical_path": found[4]})


def _trace_errors(ctx: Apiary, env: str, trace_id: str) -> list[dict[str, Any]]:
    if ctx.errors is None:
        return []
    out = []
    for row in ctx.errors.trace_errors(env, trace_id):
        item = ctx.errors.item(env, row["item_id"])
        out.append({**_occurrence_json(row), "title": item.title if item else None,
                    "item_status": item.status if item else None})
    return out


@needs(Permission.READ)
async def columns(request: Request) -> Response:
    env = environment(request)
    if isinstance(env, Response):
        return env
    dataset = request.query_params.get("dataset") or None
    cols = _ctx(request).store.columns(env, None if dataset in (None, "__all__") else dataset)
    return JSONResponse([column_json(c) for c in cols])


@needs(Permission.READ)
async def datasets(request: Request) -> Response:
    env = environment(request)
    if isinstance(env, Response):
        return env
    return JSONResponse({"environment": env, "datasets": [d.name for d in _ctx(request).store.datasets(env)]})


@needs(Permission.READ)
async def services(request: Request) -> Response:
    env = environment(request)
    if isinstance(env, Response):
        return env
    try:
        seconds = min(max(int(request.query_params.get("time_range", "3600")), 60), MAX_SERVICE_MAP_S)
    except ValueError:
        return error(400, "time_range must be a number of seconds")
    doc = await asyncio.to_thread(queries.service_map, _ctx(request).store, env, seconds)
    return JSONResponse({"environment": env, "time_range": seconds, **doc})


@needs(Permission.READ)
async def settings_doc(request: Request) -> Response:
    envs = environments_in_scope(request)
    ctx = _ctx(request)
    out = []
    for e in envs:
        datasets = [d.name for d in ctx.store.datasets(e)]
        out.append({"name": e, "datasets": datasets, "keys": [
            {"id": k.id, "masked": k.masked, "hint": k.hint, "can_read": k.can_read,
             "created_at": k.created_at.isoformat().replace("+00:00", "Z")} for k in ctx.meta.keys(e)]})
    return JSONResponse({"auth": "none" if open_mode(ctx) else "key", "endpoint": f"{request.url.scheme}://{request.url.netloc}",
                         "environments": out})


@needs(Permission.CONFIGURE)
async def create_key(request: Request) -> Response:
    """Open mode only: a new key for an environment, shown once (the store keeps its digest)."""
    ctx = _ctx(request)
    if not open_mode(ctx):
        return error(403, "create keys with `apiary keys create` on the server")
    try:
        body = await request.json()
    except ValueError:
        return error(400, "body must be JSON: {\"environment\": \"dev\"}")
    env = str(body.get("environment", "")).strip() if isinstance(body, dict) else ""
    if not env or len(env) > 100:
        return error(400, "give an environment name (1-100 characters)")
    key = await asyncio.to_thread(ctx.meta.create_key, env, can_read=not bool(body.get("ingest_only")))
    return JSONResponse({"environment": env, "key": key}, 201)


@needs(Permission.READ)
async def traces_for(request: Request) -> Response:
    """Traces behind part of a query result (a heatmap region, a table row): the engine run directly, kept out of the history.

    Body: ``{"dataset": ..., "query": <spec>}`` -- the client narrows the spec (time, value range, breakdown values)
    and groups by ``trace.trace_id``.
    """
    from apiary.query.engine import DatasetNotFound, run_query
    from apiary.query.spec import parse_spec

    env = environment(request)
    if isinstance(env, Response):
        return env
    try:
        body = await request.json()
        spec = parse_spec(body.get("query") if isinstance(body, dict) else None)
        dataset = str(body.get("dataset") or "__all__")
        outcome = await asyncio.to_thread(run_query, _ctx(request).store, env, dataset, spec)
    except ValueError as exc:  # SpecError is a ValueError, as is bad JSON
        return error(400, str(exc))
    except DatasetNotFound as exc:
        return error(404, str(exc))
    return JSONResponse({"environment": env, "results": outcome.data["results"], "elapsed_ms": round(outcome.elapsed_ms, 3)})


# -- logs, errors, X-Ray ----------------------------------------------------------------------------


def _int_param(request: Request, name: str, default: int | None, lo: int, hi: int) -> int | None:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return default
    try:
        return min(max(int(raw), lo), hi)
    except ValueError:
        raise ValueError(f"{name} must be an integer") from None


def _need_store(request: Request, signal: str) -> tuple[str, Any] | Response:
    """The caller's environment and the ``logs`` or ``errors`` store, or the response that refuses."""
    env = environment(request)
    if isinstance(env, Response):
        return env
    store = getattr(_ctx(request), signal)
    if store is None:
        return error(503, f"the {signal} store is not open")
    return env, store


@needs(Permission.READ)
async def log_groups(request: Request) -> Response:
    found = _need_store(request, "logs")
    if isinstance(found, Response):
        return found
    env, logs = found
    groups = await asyncio.to_thread(queries.log_catalogue, logs, env)
    return JSONResponse({"environment": env, "groups": groups})


@needs(Permission.READ)
async def log_events(request: Request) -> Response:
    """Newest events of a group (``cursor`` absent) or those committed after ``cursor`` (the live tail).

    ``pattern`` is a CloudWatch filter pattern, parsed by the receiver's own compiler.
    """
    from apiary.receivers.cloudwatch.filter_pattern import PatternError, parse

    found = _need_store(request, "logs")
    if isinstance(found, Response):
        return found
    env, logs = found
    q = request.query_params
    group = q.get("group") or ""
    if logs.group(env, group) is None:
        return error(404, f"log group {group!r} does not exist")
    streams = [x for x in q.getlist("stream") if x] or None
    try:
        pattern = parse(q.get("pattern") or "")
        limit = _int_param(request, "limit", 200, 1, 2000) or 200
        cursor = _int_param(request, "cursor", None, 0, 2**62)
        start_ms = _int_param(request, "start_ms", None, 0, 2**62)
        end_ms = _int_param(request, "end_ms", None, 0, 2**62)
    except (PatternError, ValueError) as exc:
        return error(400, str(exc))
    if cursor is None:
        doc = await asyncio.to_thread(queries.log_events, logs, env, group, streams, pattern, limit=limit,
                                      start_ms=start_ms, end_ms=end_ms)
    else:
        doc = await asyncio.to_thread(queries.log_tail, logs, env, group, streams, pattern, cursor, limit)
    return JSONResponse({"environment": env, "group": group, **doc})


@needs(Permission.READ)
async def log_insights(request: Request) -> Response:
    """Body ``{"query": ..., "groups": [...], "start": epoch s, "end": epoch s}``: run a Logs Insights query now."""
    from apiary.query.insights import QueryError

    found = _need_store(request, "logs")
    if isinstance(found, Response):
        return found
    env, logs = found
    try:
        body = await request.json()
    except ValueError:
        return error(400, "body must be JSON: {\"query\": ..., \"groups\": [...], \"start\": ..., \"end\": ...}")
    if not isinstance(body, dict):
        return error(400, "body must be a JSON object")
    text, groups = body.get("query"), body.get("groups")
    if not isinstance(text, str) or not text.strip():
        return error(400, "give a query")
    if not isinstance(groups, list) or not groups or not all(isinstance(g, str) for g in groups):
        return error(400, "give one or more log groups")
    missing = [g for g in groups if logs.group(env, g) is None]
    if missing:
        return error(404, f"log group {missing[0]!r} does not exist")
    now = int(datetime.now(timezone.utc).timestamp())
    try:
        start, end = int(body.get("start", now - 3600)), int(body.get("end", now))
    except (TypeError, ValueError):
        return error(400, "start and end are epoch seconds")
    if end < start:
        return error(400, "end must not be before start")
    try:
        doc = await asyncio.to_thread(queries.insights_run, logs, env, text, groups, start, end)
    except QueryError as exc:
        return error(400, str(exc))
    return JSONResponse({"environment": env, "start": start, "end": end, **doc})


SPARK_BUCKETS = 48
SPARK_BUCKET_S = 1800


def _item_json(item: Any) -> dict[str, Any]:
    return {"id": item.id, "counter": item.counter, "title": item.title, "level": item.level, "status": item.status,
            "environment": item.environment, "framework": item.framework, "platform": item.platform,
            "language": item.language, "total_occurrences": item.total_occurrences,
            "first_seen": _ts(item.first_occurrence_timestamp), "last_seen": _ts(item.last_occurrence_timestamp),
            "last_resolved": _ts(item.last_resolved_timestamp), "last_muted": _ts(item.last_muted_timestamp),
            "last_trace_id": item.last_trace_id}


def _ts(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat().replace("+00:00", "Z")


def _occurrence_json(row: dict[str, Any]) -> dict[str, Any]:
    data = row.get("data") or {}
    body = data.get("body") if isinstance(data.get("body"), dict) else {}
    chain = body.get("trace_chain") or ([body["trace"]] if isinstance(body.get("trace"), dict) else [])
    exceptions = []
    for t in chain if isinstance(chain, list) else []:
        if not isinstance(t, dict):
            continue
        exc = t.get("exception") if isinstance(t.get("exception"), dict) else {}
        frames = [f for f in (t.get("frames") or []) if isinstance(f, dict)]
        exceptions.append({"class": exc.get("class"), "message": exc.get("message"), "frames": [
            {"filename": f.get("filename"), "lineno": f.get("lineno"), "method": f.get("method"), "code": f.get("code")}
            for f in frames]})
    message = body.get("message", {}).get("body") if isinstance(body.get("message"), dict) else None
    return {"id": row["id"], "item_id": row["item_id"], "uuid": row["uuid"], "level": row["level"],
            "timestamp": _ts(row["ts_ms"] / 1000), "trace_id": row["trace_id"], "span_id": row["span_id"],
            "exceptions": exceptions, "message": message,
            "request": data.get("request") if isinstance(data.get("request"), dict) else None,
            "person": data.get("person") if isinstance(data.get("person"), dict) else None,
            "server": data.get("server") if isinstance(data.get("server"), dict) else None,
            "custom": data.get("custom"), "environment": data.get("environment"), "framework": data.get("framework")}


@needs(Permission.READ)
async def error_items(request: Request) -> Response:
    found = _need_store(request, "errors")
    if isinstance(found, Response):
        return found
    env, errors = found
    status = request.query_params.get("status") or None
    if status not in (None, "active", "resolved", "muted"):
        return error(400, "status must be active, resolved or muted")
    items = errors.items(env, status)[:500]
    now = datetime.now(timezone.utc)
    start = now.replace(second=0, microsecond=0, minute=0 if now.minute < 30 else 30)
    start = datetime.fromtimestamp(start.timestamp() - (SPARK_BUCKETS - 1) * SPARK_BUCKET_S, timezone.utc)
    spark = await asyncio.to_thread(queries.error_sparklines, errors, env, [i.id for i in items], start,
                                    SPARK_BUCKET_S, SPARK_BUCKETS)
    return JSONResponse({"environment": env, "spark": {"start": _ts(start.timestamp()), "bucket_s": SPARK_BUCKET_S},
                         "items": [{**_item_json(i), "sparkline": spark.get(i.id, [])} for i in items]})


@needs(Permission.READ)
async def error_item(request: Request) -> Response:
    found = _need_store(request, "errors")
    if isinstance(found, Response):
        return found
    env, errors = found
    try:
        item_id = int(request.path_params["item_id"])
        offset = _int_param(request, "offset", 0, 0, 10**9) or 0
    except ValueError:
        return error(400, "item ids and offsets are integers")
    item = errors.item(env, item_id)
    if item is None:
        return error(404, f"error item {request.path_params['item_id']} not found")
    rows = await asyncio.to_thread(errors.occurrences, env, item_id, 20, offset)
    return JSONResponse({"environment": env, "item": _item_json(item), "offset": offset,
                         "occurrences": [_occurrence_json(r) for r in rows]})


@needs(Permission.CONFIGURE)
async def error_item_status(request: Request) -> Response:
    """Body ``{"status": "resolved" | "muted" | "active"}``: through the error store, as Rollbar's PATCH does."""
    found = _need_store(request, "errors")
    if isinstance(found, Response):
        return found
    env, errors = found
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
    return JSONResponse({"environment": env, "item": _item_json(item)})


@needs(Permission.READ)
async def xray_doc(request: Request) -> Response:
    """X-Ray groups (with filter expressions) and sampling rules with the statistics SDKs reported in the last hour."""
    env = environment(request)
    if isinstance(env, Response):
        return env
    xray = getattr(request.app.state, "xray", None)
    if xray is None:
        return error(503, "X-Ray is not running")

    def work() -> dict[str, Any]:
        stats = {s["RuleName"]: s for s in xray.targets.summaries(env)}
        rules = []
        for rec in xray.rules.list(env):
            r, st = rec.rule, stats.get(rec.rule.RuleName, {})
            rules.append({"name": r.RuleName, "priority": r.Priority, "fixed_rate": r.FixedRate,
                          "reservoir_size": r.ReservoirSize, "service_name": r.ServiceName, "service_type": r.ServiceType,
                          "host": r.Host, "http_method": r.HTTPMethod, "url_path": r.URLPath, "resource_arn": r.ResourceARN,
                          "attributes": r.Attributes, "created_at": _ts(rec.created_at), "modified_at": _ts(rec.modified_at),
                          "requests": st.get("RequestCount", 0), "sampled": st.get("SampledCount", 0),
                          "borrowed": st.get("BorrowCount", 0), "stats_at": _ts(st["Timestamp"]) if st else None})
        groups = [{"name": g.name, "filter_expression": g.filter_expression, "arn": g.arn(), "insights": g.insights,
                   "notifications": g.notifications} for g in xray.groups.list(env)]
        return {"groups": groups, "rules": rules}

    return JSONResponse({"environment": env, **(await asyncio.to_thread(work))})


class _EnvContext:
    """The server's context, but a one-request token authenticates as a read key of one environment."""

    def __init__(self, ctx: Apiary, token: str, key: ApiKey) -> None:
        self._ctx, self._token, self._key = ctx, token, key

    def authenticate(self, key: str | None) -> ApiKey | None:
        return self._key if key == self._token else self._ctx.authenticate(key)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ctx, name)


class _StateView:
    def __init__(self, state: Any, apiary: _EnvContext) -> None:
        object.__setattr__(self, "_state", state)
        object.__setattr__(self, "apiary", apiary)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._state, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._state, name, value)


class _AppView:
    def __init__(self, app: Any, state: _StateView) -> None:
        self._app, self.state = app, state

    def __getattr__(self, name: str) -> Any:
        return getattr(self._app, name)


class HoneycombForUI:
    """``/ui/api/hc/...``: the Honeycomb query and columns APIs (and query history, trace search and compare) for the UI.

    With a key (non-loopback mode) a call passes through unchanged. In open mode it acts for the
    ``env`` parameter's environment: the handlers see a read key of that environment that exists
    for this one request only, so they run exactly as they do for an API client.
    """

    def __init__(self) -> None:
        self._router: Router | None = None

    def router(self) -> Router:
        if self._router is None:
            from apiary.query import http as query_http  # imported late: the UI works while it is absent
            from apiary.server import runs_api, trace_search_api

            self._router = Router(routes=[*query_http.routes, *trace_search_api.routes, *runs_api.routes,
                                          Route("/1/columns/{dataset:path}", guarded(get_columns), methods=["GET"])])
        return self._router

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        ctx = _ctx(request)
        if open_mode(ctx):
            envs = _scope(request, Permission.READ)
            if isinstance(envs, Response):
                await envs(scope, receive, send)
                return
            request.state.environments = envs
            env = environment(request)
            if isinstance(env, Response):
                await env(scope, receive, send)
                return
            token = secrets.token_urlsafe(24)
            key = ApiKey(0, env, "ui", True, datetime.now(timezone.utc))
            headers = [(k, v) for k, v in scope["headers"] if k.lower() != KEY_HEADER.lower().encode()]
            headers.append((KEY_HEADER.lower().encode(), token.encode()))
            app = scope["app"]
            scope = {**scope, "headers": headers, "app": _AppView(app, _StateView(app.state, _EnvContext(ctx, token, key)))}
        await self.router()(scope, receive, send)


routes = [
    *(Route(p, page, methods=["GET"]) for p in PAGES),
    Route("/ui/api/config", ui_guarded(config), methods=["GET"]),
    Route("/ui/api/home", ui_guarded(home), methods=["GET"]),
    Route("/ui/api/trace/{trace_id}", ui_guarded(trace), methods=["GET"]),
    Route("/ui/api/columns", ui_guarded(columns), methods=["GET"]),
    Route("/ui/api/datasets", ui_guarded(datasets), methods=["GET"]),
    Route("/ui/api/services", ui_guarded(services), methods=["GET"]),
    Route("/ui/api/settings", ui_guarded(settings_doc), methods=["GET"]),
    Route("/ui/api/keys", ui_guarded(create_key), methods=["POST"]),
    Route("/ui/api/traces_for", ui_guarded(traces_for), methods=["POST"]),
    Route("/ui/api/logs/groups", ui_guarded(log_groups), methods=["GET"]),
    Route("/ui/api/logs/events", ui_guarded(log_events), methods=["GET"]),
    Route("/ui/api/logs/insights", ui_guarded(log_insights), methods=["POST"]),
    Route("/ui/api/errors/items", ui_guarded(error_items), methods=["GET"]),
    Route("/ui/api/errors/items/{item_id}", ui_guarded(error_item), methods=["GET"]),
    Route("/ui/api/errors/items/{item_id}/status", ui_guarded(error_item_status), methods=["POST"]),
    Route("/ui/api/xray", ui_guarded(xray_doc), methods=["GET"]),
    Mount("/ui/api/hc", app=HoneycombForUI()),
    Mount("/ui/static", StaticFiles(directory=STATIC_DIR), name="ui-static"),
]
