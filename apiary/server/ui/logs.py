"""The logs page: log groups and streams, a group's events (and their live tail), and Logs Insights run now."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from apiary.permissions import Permission, needs
from apiary.query.insights import QueryError
from apiary.receivers.cloudwatch.filter_pattern import PatternError, parse
from apiary.keyed_routes import error
from apiary.server.ui.access import context
from apiary.server.ui.params import int_param
from apiary.store.base import LogStore
from apiary.ui import queries


def _store(request: Request) -> LogStore | Response:
    logs = context(request).logs
    return error(503, "the logs store is not open") if logs is None else logs


@needs(Permission.READ)
async def log_groups(request: Request, env: str) -> Response:
    logs = _store(request)
    if isinstance(logs, Response):
        return logs
    groups = await asyncio.to_thread(queries.log_catalogue, logs, env)
    return JSONResponse({"environment": env, "groups": groups})


@needs(Permission.READ)
async def log_events(request: Request, env: str) -> Response:
    """Newest events of a group (``cursor`` absent) or those committed after ``cursor`` (the live tail).

    ``pattern`` is a CloudWatch filter pattern, parsed by the receiver's own compiler.
    """
    logs = _store(request)
    if isinstance(logs, Response):
        return logs
    q = request.query_params
    group = q.get("group") or ""
    if logs.group(env, group) is None:
        return error(404, f"log group {group!r} does not exist")
    streams = [x for x in q.getlist("stream") if x] or None
    try:
        pattern = parse(q.get("pattern") or "")
        limit = int_param(request, "limit", 200, 1, 2000) or 200
        cursor = int_param(request, "cursor", None, 0, 2**62)
        start_ms = int_param(request, "start_ms", None, 0, 2**62)
        end_ms = int_param(request, "end_ms", None, 0, 2**62)
    except (PatternError, ValueError) as exc:
        return error(400, str(exc))
    if cursor is None:
        doc = await asyncio.to_thread(queries.log_events, logs, env, group, streams, pattern, limit=limit,
                                      start_ms=start_ms, end_ms=end_ms)
    else:
        doc = await asyncio.to_thread(queries.log_tail, logs, env, group, streams, pattern, cursor, limit)
    return JSONResponse({"environment": env, "group": group, **doc})


@needs(Permission.READ)
async def log_insights(request: Request, env: str) -> Response:
    """Body ``{"query": ..., "groups": [...], "start": epoch s, "end": epoch s}``: run a Logs Insights query now."""
    logs = _store(request)
    if isinstance(logs, Response):
        return logs
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
