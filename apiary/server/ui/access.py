"""Who a UI call acts for: the one resolver every ``/ui/api/*`` route goes through.

Auth follows the server's exposure (`apiary.permissions.exposure`). Under
loopback exposure (the default) only this machine can connect, so the UI needs
no login, sees every environment and acts for the one named by an ``env``
parameter. Under network exposure (any other address, or ``--exposure
network``) every call needs a key holding what the route `needs` in
``X-Honeycomb-Team`` and sees only that key's environment, exactly as the
Honeycomb APIs do: the check is `apiary.permissions.resolve`, through the
`apiary.keyed_routes.authorize`, and no route checks anything of its own.

In the open (loopback) mode two guards stand in for the key: the ``Host``
header must name a loopback address (so a web page cannot reach the API
through DNS rebinding), and writes need an ``X-Apiary-UI`` header (which a
cross-site form cannot send and a cross-site script cannot send without a
CORS preflight that is refused).

Three shapes of route, one resolver: `with_access` hands the endpoint the
`Access` (every environment in scope), `with_env` the one environment the
call acts in, and `with_grant` a key of that environment for the Honeycomb
query endpoints the UI shares with API clients (``endpoint(request, key)``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from apiary.permissions import LOOPBACK, Permission, is_loopback, permission_of
from apiary.keyed_routes import authorize, error
from apiary.server.context import Apiary
from apiary.store import read_scope
from apiary.store.meta import ApiKey

UI_HEADER = "X-Apiary-UI"

Endpoint = Callable[[Request], Awaitable[Response]]


def context(request: Request) -> Apiary:
    return request.app.state.apiary


def open_mode(ctx: Apiary) -> bool:
    """No login needed: the server is reachable from this machine only (loopback exposure)."""
    return ctx.settings.exposure == LOOPBACK


@dataclass(frozen=True)
class Access:
    """What one UI call may see: every environment (open mode) or its key's one (``key``, network mode)."""

    environments: list[str]
    key: ApiKey | None
    open: bool

    def environment(self, wanted: str | None) -> str | Response:
        """The environment the call acts for: ``wanted`` if given and in scope, else the first one."""
        if wanted:
            if wanted not in self.environments:
                return error(404 if self.open else 403, f"environment {wanted!r} is not available here")
            return wanted
        if not self.environments:
            return error(404, "no environment yet: create one with `apiary keys create <name>`")
        return self.environments[0]

    def grant(self, env: str) -> ApiKey:
        """Open mode: the loopback UI's full access in ``env``, as a key record (what it may do there, never a
        credential: no token stands behind it, and nothing looks it up)."""
        return ApiKey(0, env, "ui", True, datetime.now(timezone.utc))


def resolve(request: Request, need: Permission) -> Access | Response:
    """The `Access` of a UI call that needs ``need``, or the response that refuses it."""
    ctx = context(request)
    if open_mode(ctx):
        if not is_loopback(request.url.hostname or ""):
            return error(403, "the UI without a key answers only requests addressed to a loopback host")
        if request.method not in ("GET", "HEAD") and request.headers.get(UI_HEADER) != "1":
            return error(403, f"UI writes need the {UI_HEADER}: 1 header")
        return Access(ctx.meta.environments(), None, True)
    key = authorize(request, need)
    if isinstance(key, Response):
        return key
    return Access([key.environment], key, False)


def _route(endpoint: Callable[..., Awaitable[Response]],
           call: Callable[[Request, Access], Awaitable[Response]]) -> Endpoint:
    need = permission_of(endpoint)

    @functools.wraps(endpoint)
    async def run(request: Request) -> Response:
        access = resolve(request, need)
        if isinstance(access, Response):
            return access
        return await call(request, access)

    run.permission = need  # type: ignore[attr-defined]
    return run


def with_access(endpoint: Callable[[Request, Access], Awaitable[Response]]) -> Endpoint:
    """``endpoint(request, access)``, once `resolve` lets the call through for what ``endpoint`` `needs`."""
    return _route(endpoint, endpoint)


def with_env(endpoint: Callable[[Request, str], Awaitable[Response]]) -> Endpoint:
    """``endpoint(request, env)``: the environment of the ``env`` parameter (or the first in scope)."""

    async def call(request: Request, access: Access) -> Response:
        env = access.environment(request.query_params.get("env"))
        if isinstance(env, Response):
            return env
        read_scope.act_for(env)  # the loopback UI checks no key: its reads wait for this environment alone
        return await endpoint(request, env)

    return _route(endpoint, call)


def with_grant(endpoint: Callable[[Request, ApiKey], Awaitable[Response]]) -> Endpoint:
    """``endpoint(request, key)``, a Honeycomb query endpoint, called with the key the UI call holds in its
    environment (`Access.grant`): the same handler an API client reaches, run directly. With a key, the key's
    environment decides, as on ``/1/*``, whatever ``env`` says."""

    async def call(request: Request, access: Access) -> Response:
        if access.key is not None:
            return await endpoint(request, access.key)
        env = access.environment(request.query_params.get("env"))
        if isinstance(env, Response):
            return env
        return await endpoint(request, access.grant(env))

    return _route(endpoint, call)
