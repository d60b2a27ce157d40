"""The UI's HTML shell (the same page for every path: the front end routes by path) and its start-up config."""

from __future__ import annotations

import json
from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from apiary.permissions import Permission, needs
from apiary.keyed_routes import KEY_HEADER, authorize
from apiary.server.ui.access import context, open_mode, resolve

STATIC_DIR = Path(__file__).resolve().parent.parent.parent / "ui" / "static"
PAGES = ("/", "/trace/{trace_id}", "/traces", "/compare/{a}/{b}", "/query", "/services", "/history", "/settings", "/logs",
         "/errors", "/errors/{item_id}", "/xray", "/metrics", "/runs")

_shell_cache: dict[str, str] = {}


@needs(Permission.PUBLIC)  # the same HTML shell for every page; its data comes from the guarded JSON calls
async def page(request: Request) -> Response:
    html = _shell_cache.get("index")
    if html is None:
        html = _shell_cache["index"] = (STATIC_DIR / "index.html").read_text()
    # The CSP and frame options come from the Guard middleware, as on every response.
    return HTMLResponse(html, headers={"Cache-Control": "no-cache"})


@needs(Permission.PUBLIC)  # what the front end asks first: whether it needs a key, and if the one it has will do
async def config(request: Request) -> Response:
    if open_mode(context(request)):
        access = resolve(request, Permission.READ)
        if isinstance(access, Response):
            return access
        return JSONResponse({"auth": "none", "environments": access.environments})
    key = authorize(request, Permission.READ)
    if isinstance(key, Response):  # the front end asks for a key again, saying why this one will not do
        return JSONResponse({"auth": "key", "environments": [],
                             "key_error": json.loads(key.body)["error"] if request.headers.get(KEY_HEADER) else None})
    return JSONResponse({"auth": "key", "environments": [key.environment]})
