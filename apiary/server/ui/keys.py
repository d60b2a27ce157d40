"""The settings page's environments, datasets and masked keys, and (open mode only) a new key."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from apiary.permissions import Permission, needs
from apiary.keyed_routes import error
from apiary.server.ui.access import Access, context


@needs(Permission.READ)
async def settings_doc(request: Request, access: Access) -> Response:
    ctx = context(request)
    out = []
    for e in access.environments:
        datasets = [d.name for d in ctx.store.datasets(e)]
        out.append({"name": e, "datasets": datasets, "keys": [
            {"id": k.id, "masked": k.masked, "hint": k.hint, "can_read": k.can_read,
             "created_at": k.created_at.isoformat().replace("+00:00", "Z")} for k in ctx.meta.keys(e)]})
    return JSONResponse({"auth": "none" if access.open else "key",
                         "endpoint": f"{request.url.scheme}://{request.url.netloc}", "environments": out})


@needs(Permission.CONFIGURE)
async def create_key(request: Request, access: Access) -> Response:
    """Open mode only: a new key for an environment, shown once (the store keeps its digest)."""
    if not access.open:
        return error(403, "create keys with `apiary keys create` on the server")
    try:
        body = await request.json()
    except ValueError:
        return error(400, "body must be JSON: {\"environment\": \"dev\"}")
    env = str(body.get("environment", "")).strip() if isinstance(body, dict) else ""
    if not env or len(env) > 100:
        return error(400, "give an environment name (1-100 characters)")
    key = await asyncio.to_thread(context(request).meta.create_key, env, can_read=not bool(body.get("ingest_only")))
    return JSONResponse({"environment": env, "key": key}, 201)
