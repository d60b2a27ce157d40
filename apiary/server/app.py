"""The ASGI application: one port for every receiver, read API and the UI."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, AsyncIterator, Awaitable, Callable

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from apiary.mcp.http import McpEndpoint
from apiary.permissions import Permission, daemon_host, needs
from apiary.receivers.cloudwatch import http as cloudwatch_http
from apiary.query import http as query_http
from apiary.receivers.honeycomb import http as honeycomb_http
from apiary.receivers.rollbar import http as rollbar_http
from apiary.receivers.otlp import http as otlp_http
from apiary.receivers.xray import api as xray_api
from apiary.receivers.xray.daemon import Daemon as XRayDaemon
from apiary.receivers.xray.service import XRay
from apiary.server import otlp_grpc, runs_api, trace_search_api, traces_api, ui_routes
from apiary.server import sinks
from apiary.server.context import Apiary
from apiary.server.decoding import DecodePool
from apiary.receivers.body_budget import SCOPE_KEY as BODY_ALLOWANCE, BodyBudget
from apiary.server.freshness_header import FreshnessHeader
from apiary.server.guard import EXCEPTION_HANDLERS, Guard
from apiary.server.settings import Settings
from apiary.store.duckdb import DuckDBErrorStore, DuckDBLogStore, DuckDBStore
from apiary.store.meta import MetaStore

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer

log = logging.getLogger("apiary")


@needs(Permission.PUBLIC)
async def health(request: Request) -> JSONResponse:
    ctx: Apiary = request.app.state.apiary
    stats = ctx.store.writer_stats() if hasattr(ctx.store, "writer_stats") else {}
    budget = request.app.state.body_budget
    stats.update(body_bytes_in_flight=budget.used - request.scope[BODY_ALLOWANCE].held,
                 bodies_refused=budget.refused, bodies_refused_for_environment_share=budget.refused_env)
    grpc = getattr(request.app.state, "otlp_grpc", None)  # None: the gRPC port is off
    if grpc is not None:
        stats.update(grpc_messages_receiving=grpc.slots.busy, grpc_calls_waiting=grpc.slots.waiting)
    return JSONResponse({"status": "ok", **stats})


async def retention_pass(ctx: Apiary) -> None:
    """Spans, logs and errors past ``--retention-days``; log events past their group's own retention."""
    days = ctx.settings.retention_days
    cutoff = datetime.now(timezone.utc) - timedelta(days=days)
    logs, errors = ctx.logs, ctx.errors
    steps: list[tuple[str, Callable[[], Awaitable[int]]]] = []
    if days > 0:
        steps.append(("spans", functools.partial(asyncio.to_thread, ctx.store.delete_older_than, cutoff)))
        if logs is not None:
            steps.append(("log events", functools.partial(logs.delete_older_than, cutoff)))
        if errors is not None:
            steps.append(("error occurrences", functools.partial(errors.delete_older_than, cutoff)))
    if logs is not None:
        steps.append(("log events past their group's retention", logs.delete_expired))
    for what, step in steps:
        try:
            removed = await step()
            if removed:
                log.info("retention: deleted %d %s", removed, what)
        except Exception:  # noqa: BLE001 - retention must never take the server down
            log.exception("retention pass failed for %s", what)


async def _retention_loop(ctx: Apiary) -> None:
    while True:
        await retention_pass(ctx)
        await asyncio.sleep(ctx.settings.retention_interval_s)


def open_context(settings: Settings) -> Apiary:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if settings.store != "duckdb":
        return _open_clickhouse_context(settings)
    meta = MetaStore(settings.meta_path)
    store = DuckDBStore(settings.spans_path, max_columns=settings.max_columns, max_pending_rows=settings.max_pending_rows,
                        max_env_columns=settings.max_env_columns, max_dataset_columns=settings.max_dataset_columns)
    pool = DecodePool(settings.decode_workers)
    logs = DuckDBLogStore(store, max_pending_rows=settings.max_pending_rows)
    errors = DuckDBErrorStore(store)
    return Apiary(settings, meta, store, pool, logs=logs, errors=errors)


def _open_clickhouse_context(settings: Settings) -> Apiary:
    """Spans, logs, errors, environments and keys in ClickHouse."""
    from apiary.store.clickhouse import ClickHouseErrorStore, ClickHouseLogStore, ClickHouseMeta, ClickHouseStore, connect

    client = connect(settings.store)
    store = ClickHouseStore(client, max_columns=settings.max_columns, max_pending_rows=settings.max_pending_rows,
                            max_env_columns=settings.max_env_columns, max_dataset_columns=settings.max_dataset_columns,
                            retention_days=settings.retention_days)
    meta = ClickHouseMeta(client, MetaStore(settings.meta_path))
    logs = ClickHouseLogStore(client, max_pending_rows=settings.max_pending_rows)
    return Apiary(settings, meta, store, DecodePool(settings.decode_workers), logs=logs,  # type: ignore[arg-type]
                  errors=ClickHouseErrorStore(client))


def _build_mcp_server() -> "MCPServer":
    """The MCP tools' server; its SDK is imported at the first ``/mcp`` request (see `apiary.mcp.http`)."""
    from apiary.mcp.tools import build_server

    return build_server()


def create_app(settings: Settings, ctx: Apiary | None = None) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        context = ctx or open_context(settings)
        await context.pool.start()
        app.state.apiary = context
        app.state.key_lookup = context.authenticate  # every X-Honeycomb-Team route (apiary.keyed_routes)
        # Each receiver, and the query API, sees the server only through its own narrow view.
        app.state.honeycomb = sinks.HoneycombContextSink(context, app.state.body_budget)
        app.state.rollbar = sinks.RollbarContextSink(context)
        app.state.cloudwatch = sinks.LogsContextSink(context)
        app.state.query = sinks.QueryContextSource(context)
        app.state.xray = XRay(sinks.XRayContextSink(context))
        xray_host, why_off = daemon_host(settings.host, settings.exposure, settings.xray_daemon_host, settings.xray_env)
        if settings.xray_port and xray_host is None:
            print(why_off, flush=True)
        daemon = XRayDaemon(app.state.xray, xray_host, settings.xray_port) if settings.xray_port and xray_host else None
        if daemon:
            try:
                await daemon.start()
            except OSError as exc:  # another daemon (or Apiary) holds the port: serve everything else
                print(f"X-Ray daemon off: cannot bind {xray_host}:{settings.xray_port} ({exc}); "
                      f"choose another with --xray-port", flush=True)
                daemon = None
        app.state.xray_daemon = daemon
        # OTLP/HTTP's and OTLP/gRPC's one view of the server
        app.state.otlp_sink = otlp_grpc.ContextSink(context, app.state.body_budget)
        otlp_grpc_receiver = app.state.otlp_grpc = await otlp_grpc.start(context, app.state.otlp_sink)
        task = asyncio.create_task(_retention_loop(context))
        await mcp.start()
        try:
            yield
        finally:
            if task:
                task.cancel()
            await mcp.stop()
            if daemon:
                await daemon.stop()
            if otlp_grpc_receiver:
                await otlp_grpc_receiver.stop()
            # Every acknowledged batch is already committed; this commits what is still queued.
            for extra in (context.logs, context.errors):
                if extra is not None:
                    await extra.close()
            await context.store.close()
            await context.pool.close()
            print("Apiary stopped: every acknowledged batch is committed.", flush=True)

    mcp = McpEndpoint(_build_mcp_server)
    routes = [Route("/api/health", health, methods=["GET"]), Route("/mcp", mcp, methods=["POST"])]
    routes += otlp_http.routes + honeycomb_http.routes + trace_search_api.routes + traces_api.routes
    routes += rollbar_http.routes + cloudwatch_http.routes
    routes += query_http.routes + runs_api.routes
    routes += xray_api.routes
    routes += ui_routes.routes  # last: the UI's pages must never shadow an API path
    middleware = [Middleware(FreshnessHeader)]
    if settings.cors_origins:
        middleware.append(Middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["POST", "GET", "OPTIONS"],
                                     allow_headers=["*"], max_age=600))
    app = Starlette(routes=routes, middleware=middleware, lifespan=lifespan,
                    exception_handlers=EXCEPTION_HANDLERS)
    # Guard goes outside Starlette's own error middleware, so that even a 500 carries its headers.
    budget = app.state.body_budget = BodyBudget(settings.max_inflight_bytes, settings.max_env_inflight_bytes)
    stack = app.build_middleware_stack
    app.build_middleware_stack = lambda: Guard(stack(), budget, settings.body_timeout_s)  # type: ignore[method-assign]
    return app
