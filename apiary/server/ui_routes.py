"""The web UI: its pages (one HTML shell; the front end routes by path), static files and ``/ui/api/*`` JSON.

Auth follows where the server listens. Bound to loopback (the default) only
this machine can connect, so the UI needs no login, sees every environment
and acts for the one named by an ``env`` parameter. Bound to any other
address, every ``/ui/api`` call needs a read key in ``X-Honeycomb-Team`` and
sees only that key's environment, exactly as the Honeycomb APIs do.

In the open (loopback) mode two guards stand in for the key: the ``Host``
header must name a loopback address (so a web page cannot reach the API
through DNS rebinding), and writes need an ``X-Apiary-UI`` header (which a
cross-site form cannot send and a cross-site script cannot send without a
CORS preflight that is refused).
"""

from __future__ import annotations

import asyncio
import ipaddress
import secrets
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route, Router
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

from apiary.model.ids import normalise_trace_id
from apiary.model.trace import rows_to_spans
from apiary.receivers.honeycomb.http import KEY_HEADER, authenticate, column_json, error, get_columns
from apiary.server.context import Apiary
from apiary.store.meta import ApiKey
from apiary.ui import queries

STATIC_DIR = Path(__file__).resolve().parent.parent / "ui" / "static"
PAGES = ("/", "/trace/{trace_id}", "/query", "/services", "/history", "/settings")
UI_HEADER = "X-Apiary-UI"
MAX_SERVICE_MAP_S = 7 * 86400


def is_loopback(host: str) -> bool:
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def open_mode(ctx: Apiary) -> bool:
    """No login needed: the server is reachable from this machine only."""
    return is_loopback(ctx.settings.host)


def _ctx(request: Request) -> Apiary:
    return request.app.state.apiary


def environments_in_scope(request: Request) -> list[str] | Response:
    """Every environment (open mode) or the key's one."""
    ctx = _ctx(request)
    if open_mode(ctx):
        if not is_loopback(request.url.hostname or ""):
            return error(403, "the UI without a key answers only requests addressed to a loopback host")
        return ctx.meta.environments()
    key = authenticate(request, read=True)
    if isinstance(key, Response):
        return key
    return [key.environment]


def environment(request: Request) -> str | Response:
    """The environment a UI call acts for: ``env`` if given and in scope, else the first one."""
    envs = environments_in_scope(request)
    if isinstance(envs, Response):
        return envs
    wanted = request.query_params.get("env")
    if wanted:
        if wanted not in envs:
            return error(404 if open_mode(_ctx(request)) else 403, f"environment {wanted!r} is not available here")
        return wanted
    if not envs:
        return error(404, "no environment yet: create one with `apiary keys create <name>`")
    return envs[0]


def _write_allowed(request: Request) -> Response | None:
    if request.headers.get(UI_HEADER) != "1":
        return error(403, f"UI writes need the {UI_HEADER}: 1 header")
    return None


# -- pages ----------------------------------------------------------------------------------------


_shell_cache: dict[str, str] = {}


async def page(request: Request) -> Response:
    html = _shell_cache.get("index")
    if html is None:
        html = _shell_cache["index"] = (STATIC_DIR / "index.html").read_text()
    return HTMLResponse(html, headers={"Cache-Control": "no-cache", "X-Frame-Options": "DENY",
                                       "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
                                       "style-src 'self' 'unsafe-inline'; object-src 'none'; frame-ancestors 'none'"})


# -- JSON -----------------------------------------------------------------------------------------


async def config(request: Request) -> Response:
    ctx = _ctx(request)
    if open_mode(ctx):
        envs = environments_in_scope(request)
        if isinstance(envs, Response):
            return envs
        return JSONResponse({"auth": "none", "environments": envs})
    key = ctx.authenticate(request.headers.get(KEY_HEADER))
    if key is None or not key.can_read:
        return JSONResponse({"auth": "key", "environments": [],
                             "key_error": "unknown key" if request.headers.get(KEY_HEADER) else None})
    return JSONResponse({"auth": "key", "environments": [key.environment]})


async def home(request: Request) -> Response:
    envs = environments_in_scope(request)
    if isinstance(envs, Response):
        return envs
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
        envs = environments_in_scope(request)
        if isinstance(envs, Response):
            return envs
        candidates = envs

    def work() -> tuple[str, Any] | None:
        for e in candidates:
            table = ctx.store.trace(e, trace_id)
            if table.num_rows:
                return e, rows_to_spans(table)
        return None

    found = await asyncio.to_thread(work)
    if found is None:
        return error(404, f"trace {trace_id} not found")
    return JSONResponse({"trace_id": trace_id, "environment": found[0], "spans": found[1]})


async def columns(request: Request) -> Response:
    env = environment(request)
    if isinstance(env, Response):
        return env
    dataset = request.query_params.get("dataset") or None
    cols = _ctx(request).store.columns(env, None if dataset in (None, "__all__") else dataset)
    return JSONResponse([column_json(c) for c in cols])


async def datasets(request: Request) -> Response:
    env = environment(request)
    if isinstance(env, Response):
        return env
    return JSONResponse({"environment": env, "datasets": [d.name for d in _ctx(request).store.datasets(env)]})


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


async def settings_doc(request: Request) -> Response:
    envs = environments_in_scope(request)
    if isinstance(envs, Response):
        return envs
    ctx = _ctx(request)
    out = []
    for e in envs:
        datasets = [d.name for d in ctx.store.datasets(e)]
        out.append({"name": e, "datasets": datasets, "keys": [
            {"id": k.id, "masked": k.masked, "hint": k.hint, "can_read": k.can_read,
             "created_at": k.created_at.isoformat().replace("+00:00", "Z")} for k in ctx.meta.keys(e)]})
    return JSONResponse({"auth": "none" if open_mode(ctx) else "key", "endpoint": f"{request.url.scheme}://{request.url.netloc}",
                         "environments": out})


async def create_key(request: Request) -> Response:
    """Open mode only: a new key for an environment, shown once (the store keeps its digest)."""
    ctx = _ctx(request)
    if not open_mode(ctx):
        return error(403, "create keys with `apiary keys create` on the server")
    envs = environments_in_scope(request)
    if isinstance(envs, Response):
        return envs
    denied = _write_allowed(request)
    if denied:
        return denied
    try:
        body = await request.json()
    except ValueError:
        return error(400, "body must be JSON: {\"environment\": \"dev\"}")
    env = str(body.get("environment", "")).strip() if isinstance(body, dict) else ""
    if not env or len(env) > 100:
        return error(400, "give an environment name (1-100 characters)")
    key = await asyncio.to_thread(ctx.meta.create_key, env, can_read=not bool(body.get("ingest_only")))
    return JSONResponse({"environment": env, "key": key}, 201)


async def traces_for(request: Request) -> Response:
    """Traces behind part of a query result (a heatmap region, a table row): the engine run directly, kept out of the history.

    Body: ``{"dataset": ..., "query": <spec>}`` -- the client narrows the spec (time, value range, breakdown values)
    and groups by ``trace.trace_id``.
    """
    from apiary.query.engine import DatasetNotFound, run_query
    from apiary.query.spec import SpecError, parse_spec

    env = environment(request)
    if isinstance(env, Response):
        return env
    denied = _write_allowed(request)
    if denied:
        return denied
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
    """``/ui/api/hc/...``: the Honeycomb query and columns APIs (and query history) for the UI.

    With a key (non-loopback mode) a call passes through unchanged. In open mode it acts for the
    ``env`` parameter's environment: the handlers see a read key of that environment that exists
    for this one request only, so they run exactly as they do for an API client.
    """

    def __init__(self) -> None:
        self._router: Router | None = None

    def router(self) -> Router:
        if self._router is None:
            from apiary.query import http as query_http  # imported late: the UI works while it is absent

            self._router = Router(routes=[*query_http.routes, Route("/1/columns/{dataset:path}", get_columns, methods=["GET"])])
        return self._router

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        ctx = _ctx(request)
        if open_mode(ctx):
            env = environment(request)
            if isinstance(env, Response):
                await env(scope, receive, send)
                return
            if request.method not in ("GET", "HEAD") and request.headers.get(UI_HEADER) != "1":
                await error(403, f"UI writes need the {UI_HEADER}: 1 header")(scope, receive, send)
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
    Route("/ui/api/config", config, methods=["GET"]),
    Route("/ui/api/home", home, methods=["GET"]),
    Route("/ui/api/trace/{trace_id}", trace, methods=["GET"]),
    Route("/ui/api/columns", columns, methods=["GET"]),
    Route("/ui/api/datasets", datasets, methods=["GET"]),
    Route("/ui/api/services", services, methods=["GET"]),
    Route("/ui/api/settings", settings_doc, methods=["GET"]),
    Route("/ui/api/keys", create_key, methods=["POST"]),
    Route("/ui/api/traces_for", traces_for, methods=["POST"]),
    Mount("/ui/api/hc", app=HoneycombForUI()),
    Mount("/ui/static", StaticFiles(directory=STATIC_DIR), name="ui-static"),
]
