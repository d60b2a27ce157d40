"""One environment floods with 100,000-attribute spans; another keeps ingesting and reading.

The review found a single such span held the loader for minutes, and every read of every environment
then answered without rows that had already been acknowledged. Asserted here: completeness only
(every span the calm environment had acknowledged is in each of its reads), never time.
"""

from __future__ import annotations

import threading
from typing import Any

from opentelemetry.sdk.trace.export import SpanExportResult

from tests.hardening.conftest import Start, counts, export_spans, trace_of

FLOOD_SPANS = 4
FLOOD_ATTRIBUTES = 100_000


def _flood(url: str, key: str, results: list[SpanExportResult]) -> None:
    for n in range(FLOOD_SPANS):
        def make(tracer: Any, n: int = n) -> None:
            with tracer.start_as_current_span("flood") as span:
                span.set_attributes({f"f{n}.{i}": i for i in range(FLOOD_ATTRIBUTES)})  # new keys every time
        result, _ = export_spans(url, key, "flood-svc", make, max_attributes=FLOOD_ATTRIBUTES)
        results.append(result)


def _calm_trace(tracer: Any) -> None:
    with tracer.start_as_current_span("GET /api/activities/home") as root:
        root.set_attribute("http.status_code", 200)
        with tracer.start_as_current_span("db-query") as child:
            child.set_attribute("db.rows", 5)


def test_a_flooding_environment_never_hides_another_environments_acknowledged_rows(store: str, start: Start) -> None:
    served = start(store, {"calm": False, "flood": True})  # the flood comes from an ingest-only key
    flood_results: list[SpanExportResult] = []
    flooder = threading.Thread(target=_flood, args=(served.url, served.keys["flood"], flood_results))
    flooder.start()
    acknowledged = 0
    after_flood = 0
    try:
        # Rounds go on while the flood is sent, and for three more once it is acknowledged: its
        # spans are loaded after they are acknowledged, which is when reads used to come up short.
        while after_flood < 3:
            after_flood += not flooder.is_alive()
            result, spans = export_spans(served.url, served.keys["calm"], "calm-svc", _calm_trace)
            assert result is SpanExportResult.SUCCESS
            acknowledged += len(spans)
            assert counts(served.url, served.keys["calm"]) == {"calm-svc": acknowledged}
            trace = trace_of(served.url, served.keys["calm"], f"{spans[0].context.trace_id:032x}")
            assert sorted(s["name"] for s in trace["spans"]) == ["GET /api/activities/home", "db-query"]
    finally:
        flooder.join()
    assert flood_results == [SpanExportResult.SUCCESS] * FLOOD_SPANS  # stored too, capped (see test_caps)
    assert counts(served.url, served.keys["calm"]) == {"calm-svc": acknowledged}
