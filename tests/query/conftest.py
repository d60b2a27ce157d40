"""One server per test module, loaded once with known spans through the real OTel SDK exporter.

The spans are kept as plain dicts too (``Loaded.spans``), so every test can
work out the exact answer in Python and compare it with the server's.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, set_span_in_context

from tests.server import ApiaryProcess, create_key
from tests.stores import STORES, StoreServer, running

ROUTES = ["/api/activities/home", "/api/activities/notifications", "/api/messages"]
AGENTS = ["Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0", "curl/8.5.0"]
SQLISH = "x'; DROP TABLE spans; --"


@dataclass
class Loaded:
    server: ApiaryProcess
    spans: list[dict[str, Any]]
    start: int  # unix seconds: every span starts at or after this
    end: int  # and before this

    def headers(self) -> dict[str, str]:
        return {"X-Honeycomb-Team": self.server.key}

    def create(self, dataset: str, spec: dict[str, Any]) -> httpx.Response:
        return httpx.post(f"{self.server.url}/1/queries/{dataset}", json=spec, headers=self.headers(), timeout=60)

    def query(self, spec: dict[str, Any], dataset: str = "backend-flask") -> dict[str, Any]:
        """Create the query, run it, return ``data`` (fails the test on any error)."""
        full = {"start_time": self.start, "end_time": self.end, **spec}
        r = self.create(dataset, full)
        assert r.status_code == 200, r.text
        res = httpx.post(f"{self.server.url}/1/query_results/{dataset}", json={"query_id": r.json()["id"]},
                         headers=self.headers(), timeout=60)
        assert res.status_code == 201, res.text
        doc = res.json()
        assert doc["complete"] is True
        return doc["data"]

    def where(self, pred: Callable[[dict[str, Any]], bool], dataset: str | None = "backend-flask") -> list[dict[str, Any]]:
        return [s for s in self.spans if (dataset is None or s["service.name"] == dataset) and pred(s)]


def _make_spans(base: int) -> list[dict[str, Any]]:
    """Known spans: backend-flask requests (each with a child db span) and some frontend spans."""
    rng = random.Random(7)
    spans: list[dict[str, Any]] = []
    for i in range(120):
        start_ns = (base + rng.randrange(0, 3000)) * 1_000_000_000 + rng.randrange(0, 10**9)
        duration_ms = rng.choice([1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233, 377, 610, 987]) + i % 7
        attrs: dict[str, Any] = {
            "http.route": ROUTES[i % 3],
            "http.method": "GET",
            "http.status_code": 200 if i % 6 else (500 if i % 12 == 0 else 404),
            "http.user_agent": AGENTS[i % 2],
        }
        if i % 4 == 0:  # sparse attributes
            attrs["app.user_id"] = f"user{i % 5}"
        if i % 3 == 0:
            attrs["app.result_length"] = (i * 37) % 101
        if i == 50:
            attrs["app.note"] = SQLISH
        spans.append({"service.name": "backend-flask", "name": f"GET {ROUTES[i % 3]}", "start_ns": start_ns,
                      "duration_ms": float(duration_ms), "attrs": attrs, "root": True, "idx": i})
        child_ms = float(duration_ms // 2)
        spans.append({"service.name": "backend-flask", "name": "db-query", "start_ns": start_ns + 100_000,
                      "duration_ms": child_ms, "attrs": {"db.rows": i % 10}, "root": False, "parent": i})
    for i in range(20):
        start_ns = (base + rng.randrange(0, 3000)) * 1_000_000_000
        spans.append({"service.name": "frontend-react-js", "name": "documentLoad", "start_ns": start_ns,
                      "duration_ms": float(100 + i), "attrs": {"http.status_code": 200}, "root": True, "idx": 1000 + i})
    return spans


def _send(server: ApiaryProcess, spans: list[dict[str, Any]]) -> None:
    providers: dict[str, TracerProvider] = {}
    for svc in sorted({s["service.name"] for s in spans}):
        provider = TracerProvider(resource=Resource.create({"service.name": svc}))
        exporter = OTLPSpanExporter(endpoint=f"{server.url}/v1/traces", headers={"x-honeycomb-team": server.key})
        provider.add_span_processor(BatchSpanProcessor(exporter, max_export_batch_size=64))
        providers[svc] = provider
    parents: dict[int, Any] = {}
    for s in spans:
        tracer = providers[s["service.name"]].get_tracer("tests.query")
        ctx = set_span_in_context(parents[s["parent"]]) if not s["root"] else None
        span = tracer.start_span(s["name"], context=ctx, kind=SpanKind.SERVER if s["root"] else SpanKind.INTERNAL,
                                 attributes=s["attrs"], start_time=s["start_ns"])
        span.end(end_time=s["start_ns"] + int(s["duration_ms"] * 1_000_000))
        sc = span.get_span_context()
        s["trace.trace_id"] = f"{sc.trace_id:032x}"
        s["trace.span_id"] = f"{sc.span_id:016x}"
        if s["root"]:
            parents[s["idx"]] = span
            s["trace.parent_id"] = None
        else:
            s["trace.parent_id"] = spans_by_idx_parent(spans, s["parent"])
    for p in providers.values():
        p.force_flush()
        p.shutdown()


def spans_by_idx_parent(spans: list[dict[str, Any]], idx: int) -> str:
    return next(s["trace.span_id"] for s in spans if s["root"] and s.get("idx") == idx)


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loaded]:
    data_dir: Path = tmp_path_factory.mktemp("query") / "data"
    key = create_key(data_dir, "dev")
    server = ApiaryProcess(data_dir, key=key).start()
    try:
        yield load_known_spans(server)
    finally:
        server.stop()


def load_known_spans(server: ApiaryProcess) -> Loaded:
    """Send the known spans through the OTel SDK and wait until the server counts them all."""
    base = int(time.time()) - 4000
    spans = _make_spans(base)
    _send(server, spans)
    for s in spans:  # flatten attributes the way Honeycomb names columns
        s.update(s["attrs"])
        s["timestamp"] = s["start_ns"] / 1e9
    loaded = Loaded(server, spans, base, base + 3600)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        r = httpx.get(f"{server.url}/api/datasets", headers=loaded.headers())
        if sum(d["count"] for d in r.json()["datasets"]) >= len(spans):
            break
        time.sleep(0.2)
    return loaded


@pytest.fixture(scope="module", params=STORES)
def store_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[StoreServer]:
    """One server per store for a module (``TENANTS`` environments, 2 unless the module says), no X-Ray daemon."""
    with running(request.param, tmp_path_factory.mktemp(request.param), tenants=getattr(request.module, "TENANTS", 2),
                 env={"APIARY_XRAY_PORT": "0"}) as server:
        yield server


def run_spec(url: str, key: str, dataset: str, spec: dict[str, Any], **window: int) -> httpx.Response:
    """Create and run a query (``window``: its start_time and end_time, or time_range); the run's response, or the
    creation's when it is refused."""
    headers = {"X-Honeycomb-Team": key}
    created = httpx.post(f"{url}/1/queries/{dataset}", json={**window, **spec}, headers=headers, timeout=60)
    if created.status_code != 200:
        return created
    return httpx.post(f"{url}/1/query_results/{dataset}", json={"query_id": created.json()["id"]}, headers=headers,
                      timeout=60)


def send_libhoney(url: str, key: str, dataset: str, events: list[dict[str, Any]], t0: int,
                  batch_each: bool = False) -> None:
    """Events through libhoney, the n-th dated ``t0 + n`` seconds; every one must be answered 202.
    ``batch_each``: one batch per event (a key sent with two types is then stored as two typed columns)."""
    import libhoney  # imported here: most query modules send through the OTel SDK instead

    client = libhoney.Client(writekey=key, dataset=dataset, api_host=url, block_on_response=True)
    try:
        for n, fields in enumerate(events):
            ev = client.new_event(data=fields)
            ev.created_at = datetime.fromtimestamp(t0 + n, timezone.utc)
            ev.send()
            if batch_each:
                client.flush()
        if not batch_each:
            client.flush()
        statuses: list[int] = []
        while len(statuses) < len(events):  # flush() also queues a None
            if (response := client.responses().get(timeout=10)) is not None:
                statuses.append(response["status_code"])
        assert statuses == [202] * len(events)
    finally:
        client.close()
