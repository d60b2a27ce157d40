"""``GET /api/runs`` and ``GET /api/runs/compare?a=…&b=…``: routes only, the work is in apiary/query/runs.py."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from apiary.permissions import Permission, needs
from apiary.query.runs import DEFAULT_LOOKBACK_S, PERCENTILES, RunNotFound, compare_runs, list_runs
from apiary.query.spec import MAX_TIME_S, SpecError
from apiary.keyed_routes import error, guarded
from apiary.server.context import Apiary
from apiary.store.meta import ApiKey


def _lookback(request: Request) -> int:
    """``time_range`` (seconds back from now to look for runs); SpecError when it is not a positive whole number."""
    raw = request.query_params.get("time_range")
    if raw is None:
        return DEFAULT_LOOKBACK_S
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_TIME_S:
        raise SpecError(f"time_range: {raw!r} is not a number of seconds (1 or more)")
    return int(raw)


@needs(Permission.READ)
async def runs(request: Request, key: ApiKey) -> Response:
    ctx: Apiary = request.app.state.apiary
    try:
        found = await asyncio.to_thread(list_runs, ctx.store, key.environment, _lookback(request))
    except SpecError as exc:
        return error(400, str(exc))
    return JSONResponse({"environment": key.environment, "runs": found})


@needs(Permission.READ)
async def compare(request: Request, key: ApiKey) -> Response:
    ctx: Apiary = request.app.state.apiary
    q = request.query_params
    a, b = q.get("a"), q.get("b")
    if not a or not b:
        return error(400, "give the two runs to compare: ?a=RUN&b=RUN (B is compared against A)")
    percentile = q.get("percentile", "p50").lower()
    if percentile not in PERCENTILES:
        return error(400, f"percentile: {percentile!r} is not one of {', '.join(PERCENTILES)}")
    try:
        doc = await asyncio.to_thread(compare_runs, ctx.store, key.environment, a, b, percentile, _lookback(request))
    except SpecError as exc:
        return error(400, str(exc))
    except RunNotFound as exc:
        return error(404, str(exc))
    return JSONResponse({"environment": key.environment, **doc})


routes = [
    Route("/api/runs", guarded(runs), methods=["GET"]),
    Route("/api/runs/compare", guarded(compare), methods=["GET"]),
]
