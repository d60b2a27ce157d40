"""The web UI's route table: its pages (one HTML shell; the front end routes by path), static files and
``/ui/api/*`` JSON. The handlers live in ``apiary.server.ui``, one module per signal; every JSON route goes
through the one resolver of ``apiary.server.ui.access`` for what its handler `needs`."""

from __future__ import annotations

from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from apiary.server.ui import errors, honeycomb, keys, logs, pages, traces, xray
from apiary.server.ui.access import with_access, with_env

routes = [
    *(Route(p, pages.page, methods=["GET"]) for p in pages.PAGES),
    Route("/ui/api/config", pages.config, methods=["GET"]),
    Route("/ui/api/home", with_access(traces.home), methods=["GET"]),
    Route("/ui/api/trace/{trace_id}", with_access(traces.trace), methods=["GET"]),
    Route("/ui/api/columns", with_env(traces.columns), methods=["GET"]),
    Route("/ui/api/datasets", with_env(traces.datasets), methods=["GET"]),
    Route("/ui/api/services", with_env(traces.services), methods=["GET"]),
    Route("/ui/api/traces_for", with_env(traces.traces_for), methods=["POST"]),
    Route("/ui/api/settings", with_access(keys.settings_doc), methods=["GET"]),
    Route("/ui/api/keys", with_access(keys.create_key), methods=["POST"]),
    Route("/ui/api/logs/groups", with_env(logs.log_groups), methods=["GET"]),
    Route("/ui/api/logs/events", with_env(logs.log_events), methods=["GET"]),
    Route("/ui/api/logs/insights", with_env(logs.log_insights), methods=["POST"]),
    Route("/ui/api/errors/items", with_env(errors.error_items), methods=["GET"]),
    Route("/ui/api/errors/items/{item_id}", with_env(errors.error_item), methods=["GET"]),
    Route("/ui/api/errors/items/{item_id}/status", with_env(errors.error_item_status), methods=["POST"]),
    Route("/ui/api/xray", with_env(xray.xray_doc), methods=["GET"]),
    *honeycomb.routes(),
    Mount("/ui/static", StaticFiles(directory=pages.STATIC_DIR), name="ui-static"),
]
