"""``/ui/api/hc/...``: the Honeycomb query and columns APIs, query history, saved queries, BubbleUp, trace search
and compare, for the query builder and the trace pages.

Each route runs the very handler an API client reaches (``endpoint(request, key)``), called directly by
`with_grant` with the key the UI call holds in the environment it resolved: the caller's own key under
network exposure, the loopback UI's access to the ``env`` environment otherwise.
"""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from apiary.query import http as query_http
from apiary.receivers.honeycomb import http as honeycomb_http
from apiary.server import runs_api, trace_search_api
from apiary.server.ui.access import with_grant

PREFIX = "/ui/api/hc"


def routes() -> list[BaseRoute]:
    """The shared handlers under ``PREFIX``, each resolved by the UI's one resolver instead of ``guarded``."""
    shared = [*query_http.routes, *trace_search_api.routes, *runs_api.routes,
              *(r for r in honeycomb_http.routes if isinstance(r, Route) and r.path.startswith("/1/columns/"))]
    out: list[BaseRoute] = []
    for r in shared:
        assert isinstance(r, Route)
        keyed = r.endpoint.__wrapped__  # type: ignore[attr-defined]  # the handler inside `guarded`
        out.append(Route(PREFIX + r.path, with_grant(keyed), methods=sorted((r.methods or set()) - {"HEAD"})))
    return out
