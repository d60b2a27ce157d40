"""Planted traces with known shapes, sent through the real OTel SDK exporter, for trace search, critical path and compare.

Times are milliseconds from the trace's own start; every trace starts at a
known second in the last half hour. ``PlantedTrace.ids`` fills in the span ids
the SDK chose, so tests can compare the server's answer with the plan.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import NonRecordingSpan, SpanContext, Status, StatusCode, TraceFlags, set_span_in_context

from tests.server import ApiaryProcess


@dataclass
class SpanPlan:
    key: str
    service: str
    name: str
    start_ms: float
    end_ms: float
    parent: str | None = None  # key of the parent; None: the root (or, in a root-less trace, under a missing span)
    error: bool = False
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass
class PlantedTrace:
    name: str
    offset_s: int  # seconds after the data set's base time
    spans: list[SpanPlan]
    rootless: bool = False
    trace_id: str = ""
    ids: dict[str, str] = field(default_factory=dict)  # span key -> span id

    @property
    def duration_ms(self) -> float:
        return max(s.end_ms for s in self.spans) - min(s.start_ms for s in self.spans)


def _s(key: str, service: str, name: str, start: float, end: float, parent: str | None = None, **kw: Any) -> SpanPlan:
    return SpanPlan(key, service, name, start, end, parent, **kw)


def planted_traces() -> dict[str, PlantedTrace]:
    traces = [
        # A checkout whose database call sits under the checkout span (slow).
        PlantedTrace("db_under_checkout", 60, [
            _s("root", "web", "POST /checkout", 0, 500),
            _s("checkout", "api", "checkout", 50, 450, "root"),
            _s("db", "api", "db-query", 100, 400, "checkout", attrs={"db.rows": 12})]),
        # The same request, but the database call is the checkout's sibling.
        PlantedTrace("db_beside_checkout", 120, [
            _s("root", "web", "POST /checkout", 0, 200),
            _s("checkout", "api", "checkout", 10, 100, "root"),
            _s("db", "api", "db-query", 120, 190, "root", attrs={"db.rows": 3})]),
        # A checkout that fails.
        PlantedTrace("checkout_error", 180, [
            _s("root", "web", "POST /checkout", 0, 150),
            _s("checkout", "api", "checkout", 10, 140, "root", error=True)]),
        # Browsing: a database call, no checkout.
        PlantedTrace("browse", 240, [
            _s("root", "web", "GET /items", 0, 80),
            _s("list", "api", "list-items", 5, 75, "root"),
            _s("db", "api", "db-query", 10, 60, "list", attrs={"db.rows": 40})]),
        # A checkout whose root span never arrived.
        PlantedTrace("rootless_checkout", 300, [
            _s("checkout", "api", "checkout", 0, 120),
            _s("db", "api", "db-query", 20, 100, "checkout", attrs={"db.rows": 1})], rootless=True),
        # Two short polls a second apart: a long trace of short spans (root missing too).
        PlantedTrace("long_trace_short_spans", 360, [
            _s("poll1", "api", "poll", 0, 10),
            _s("poll2", "api", "poll", 1000, 1010)], rootless=True),
        # One long span.
        PlantedTrace("one_long_span", 420, [_s("root", "web", "GET /report", 0, 900)]),
        # Fan-out for the critical path: the path is root, b, b1, c; "a" finishes early and is off it.
        PlantedTrace("fanout", 480, [
            _s("root", "web", "GET /fanout", 0, 300),
            _s("a", "api", "a", 10, 100, "root"),
            _s("b", "api", "b", 20, 250, "root"),
            _s("b1", "api", "b1", 30, 240, "b"),
            _s("c", "api", "c", 260, 290, "root")]),
        # Two failed retries, then success: errors to step through.
        PlantedTrace("two_errors", 510, [
            _s("root", "web", "GET /flaky", 0, 90),
            _s("retry1", "api", "retry", 10, 30, "root", error=True),
            _s("retry2", "api", "retry", 40, 60, "root", error=True),
            _s("ok", "api", "fetch", 60, 80, "root")]),
        # Two runs of one request for compare: "work" takes 40 ms, then 140 ms; the second adds a cache call.
        PlantedTrace("compare_fast", 540, [
            _s("root", "web", "GET /compare", 0, 60),
            _s("work", "api", "work", 10, 50, "root")]),
        # A chain of seven spans: the leaf's root is deeper than SQL follows parents (the rest is walked in arrays).
        PlantedTrace("deep_chain", 660, [
            _s("root", "web", "GET /deep", 0, 150),
            *(_s(f"hop{i}", "api", "hop", 10 + i, 140 - i, "root" if i == 1 else f"hop{i - 1}") for i in range(1, 7)),
            _s("leaf", "api", "deep-leaf", 20, 120, "hop6")]),
        PlantedTrace("compare_slow", 600, [
            _s("root", "web", "GET /compare", 0, 170),
            _s("work", "api", "work", 10, 150, "root"),
            _s("cache", "api", "cache-get", 150, 160, "root")]),
    ]
    return {t.name: t for t in traces}


def send_planted(server: ApiaryProcess, traces: dict[str, PlantedTrace], base_s: int) -> None:
    """Every planted trace through the SDK's OTLP/HTTP exporter, one provider per service."""
    providers: dict[str, TracerProvider] = {}
    for svc in sorted({s.service for t in traces.values() for s in t.spans}):
        provider = TracerProvider(resource=Resource.create({"service.name": svc}))
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(
            endpoint=f"{server.url}/v1/traces", headers={"x-honeycomb-team": server.key}), max_export_batch_size=64))
        providers[svc] = provider
    rng = random.Random(11)
    for t in traces.values():
        t0_ns = (base_s + t.offset_s) * 1_000_000_000
        missing_parent = None
        if t.rootless:  # children of a span that is never sent
            missing_parent = NonRecordingSpan(SpanContext(trace_id=rng.getrandbits(128), span_id=rng.getrandbits(64),
                                                          is_remote=True, trace_flags=TraceFlags(1)))
        made: dict[str, Any] = {}
        for s in t.spans:  # parents are listed before their children
            parent = made.get(s.parent) if s.parent else missing_parent
            ctx = set_span_in_context(parent) if parent is not None else None
            tracer = providers[s.service].get_tracer("tests.traces")
            span = tracer.start_span(s.name, context=ctx, attributes=s.attrs, start_time=t0_ns + int(s.start_ms * 1_000_000))
            if s.error:
                span.set_status(Status(StatusCode.ERROR, "card declined"))
            made[s.key] = span
            sc = span.get_span_context()
            t.ids[s.key] = f"{sc.span_id:016x}"
            t.trace_id = f"{sc.trace_id:032x}"
        for s in t.spans:
            made[s.key].end(end_time=t0_ns + int(s.end_ms * 1_000_000))
    for p in providers.values():
        p.force_flush()
        p.shutdown()


def wait_for_spans(server: ApiaryProcess, count: int, timeout: float = 30) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = httpx.get(f"{server.url}/api/datasets", headers={"X-Honeycomb-Team": server.key}, timeout=10)
        if r.status_code == 200 and sum(d["count"] for d in r.json()["datasets"]) >= count:
            return
        time.sleep(0.2)
    raise AssertionError(f"the server did not store {count} spans in {timeout}s")
