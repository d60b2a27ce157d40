"""Apiary's own read APIs, as a test reads them: over HTTP, with the test's key, never the database files.

Spans: the Honeycomb Query Data API (``POST /1/queries/__all__`` then ``/1/query_results/__all__``),
grouped by ``trace.trace_id`` and ``trace.span_id``, finds which spans match the filters; the trace API
(``GET /api/traces/{id}``) gives them with every column. Log lines: the log groups and their events
(``/ui/api/logs/*``). Error occurrences: Rollbar's read API (``/api/1/items``, ``/api/1/item/{id}/instances``).
"""

from __future__ import annotations

import time
from typing import Any, Sequence

import httpx

from apiary.testing.filters import Filter

#: Spans are found from this long before the server started: an app's clock and batching may lag.
LOOKBACK_S = 3600
ROW_LIMIT = 1000


class ReadError(RuntimeError):
    """Apiary refused a read: the message is its answer."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status

    @property
    def transient(self) -> bool:
        """A 5xx (such as 503 while loads catch up): worth asking again; a 4xx is the test's mistake."""
        return self.status >= 500


class Reader:
    def __init__(self, url: str, key: str, environment: str, since: float) -> None:
        self.url, self.key, self.environment = url, key, environment
        self.since = since
        self.http = httpx.Client(base_url=url, timeout=30, headers={"x-honeycomb-team": key})

    def close(self) -> None:
        self.http.close()

    def _json(self, response: httpx.Response, *ok: int) -> Any:
        if response.status_code not in (ok or (200,)):
            raise ReadError(f"{response.request.method} {response.request.url.path} answered "
                            f"{response.status_code}: {response.text[:500]}", response.status_code)
        return response.json()

    # -- spans ----------------------------------------------------------------------------------------

    def query(self, spec: dict[str, Any]) -> list[dict[str, Any]]:
        """One Query Data API query over every dataset of the environment: its result rows."""
        spec = {"start_time": int(self.since) - LOOKBACK_S, "end_time": int(time.time()) + LOOKBACK_S, **spec}
        q = self.http.post("/1/queries/__all__", json=spec)
        if q.status_code == 404 or (q.status_code == 400 and "unknown column" in q.text):
            return []  # no dataset yet, or no span has had that column yet: nothing matches so far
        query_id = self._json(q)["id"]
        result = self._json(self.http.post("/1/query_results/__all__", json={"query_id": query_id}), 200, 201)
        return [row["data"] for row in result["data"]["results"]]

    def span_ids(self, filters: Sequence[Filter]) -> list[tuple[str, str]]:
        """(trace id, span id) of every span matching ``filters`` (span events, links and metrics left out)."""
        own = [{"column": "meta.annotation_type", "op": "does-not-exist"},
               {"column": "trace.span_id", "op": "exists"}]
        rows = self.query({"breakdowns": ["trace.trace_id", "trace.span_id"], "calculations": [{"op": "COUNT"}],
                           "filters": [*filters, *own], "limit": ROW_LIMIT})
        return [(r["trace.trace_id"], r["trace.span_id"]) for r in rows]

    def trace_ids(self, filters: Sequence[Filter] = ()) -> list[str]:
        own = [{"column": "meta.annotation_type", "op": "does-not-exist"}, {"column": "trace.trace_id", "op": "exists"}]
        rows = self.query({"breakdowns": ["trace.trace_id"], "calculations": [{"op": "COUNT"}],
                           "filters": [*filters, *own], "limit": ROW_LIMIT})
        return [r["trace.trace_id"] for r in rows]

    def trace(self, trace_id: str) -> list[dict[str, Any]]:
        """The trace's spans (events and links inside each), or none while it has not arrived."""
        r = self.http.get(f"/api/traces/{trace_id}")
        if r.status_code == 404:
            return []
        return self._json(r)["spans"]

    def spans(self, filters: Sequence[Filter]) -> list[dict[str, Any]]:
        wanted = self.span_ids(filters)
        by_trace: dict[str, set[str]] = {}
        for trace_id, span_id in wanted:
            by_trace.setdefault(trace_id, set()).add(span_id)
        out = []
        for trace_id, ids in by_trace.items():
            out += [s for s in self.trace(trace_id) if s.get("trace.span_id") in ids]
        return out

    def recent_spans(self) -> list[dict[str, Any]]:
        """Every span of the environment's latest traces: the candidates a failure message ranks."""
        return [s for t in self.trace_ids() for s in self.trace(t)]

    # -- log lines ------------------------------------------------------------------------------------

    def logs(self) -> list[dict[str, Any]]:
        """Every log event of the environment, each with its ``group``, oldest first per group."""
        params = {"env": self.environment}
        groups = self._json(self.http.get("/ui/api/logs/groups", params=params))["groups"]
        out = []
        for g in groups:
            doc = self._json(self.http.get("/ui/api/logs/events", params={**params, "group": g["name"], "limit": 2000}))
            for e in doc["events"]:
                out.append({"group": g["name"], **e})
        return out

    # -- error occurrences ----------------------------------------------------------------------------

    def errors(self) -> list[dict[str, Any]]:
        """Every Rollbar occurrence of the environment, with its item's title, level and status."""
        headers = {"X-Rollbar-Access-Token": self.key}
        items = self._json(self.http.get("/api/1/items", headers=headers))["result"]["items"]
        out = []
        for item in items:
            doc = self._json(self.http.get(f"/api/1/item/{item['id']}/instances", headers=headers))["result"]
            for inst in doc["instances"]:
                out.append(occurrence(item, inst))
        return out


def occurrence(item: dict[str, Any], instance: dict[str, Any]) -> dict[str, Any]:
    """An occurrence flattened to columns a filter can name: the item's ``title``, ``level``, ``status``,
    the occurrence's ``trace_id``, ``span_id``, ``exception.class``, ``exception.message``, ``message``."""
    data = instance.get("data") or {}
    body = data.get("body") if isinstance(data.get("body"), dict) else {}
    trace = body.get("trace") or ((body.get("trace_chain") or [{}])[0])
    exc = trace.get("exception") if isinstance(trace, dict) and isinstance(trace.get("exception"), dict) else {}
    message = body.get("message", {}).get("body") if isinstance(body.get("message"), dict) else None
    return {"title": item.get("title"), "level": data.get("level") or item.get("level"), "status": item.get("status"),
            "item_id": item.get("id"), "environment": data.get("environment"), "framework": data.get("framework"),
            "trace_id": instance.get("trace_id"), "span_id": instance.get("span_id"),
            "exception.class": exc.get("class"), "exception.message": exc.get("message"), "message": message}
