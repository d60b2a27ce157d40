"""A 100,000-span trace whose critical path is known, as OTLP/HTTP protobuf requests (for the tests and bench/investigate.py).

The root runs 0..10,000 ms. Under it, 999 workers run back to back (worker i from
10 i ms for 10 ms), each with 99 steps back to back (100 us each) from its
start, and 99 short "extra" spans overlap the first worker. Walking back from
the root's end, every worker and every step is on the critical path (each ends
exactly where the next begins), and no extra span is: 99,901 spans on it.
"""

from __future__ import annotations

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

TRACE_ID = "c417ca1f0000000000000000000c0de1"
WORKERS, STEPS, EXTRAS = 999, 99, 99
SPANS = 1 + WORKERS + WORKERS * STEPS + EXTRAS  # 100,000
ON_PATH = 1 + WORKERS + WORKERS * STEPS


def span_id(kind: int, i: int, j: int = 0) -> str:
    return f"{kind:02x}{i:06x}{j:08x}"


ROOT = span_id(1, 0)


def spans(start_ns: int) -> list[tuple[str, str | None, str, int, int]]:
    """(span id, parent id, name, start ns, end ns) for every span of the trace."""
    out = [(ROOT, None, "GET /big", start_ns, start_ns + 10_000 * 1_000_000)]
    for i in range(WORKERS):
        w0 = start_ns + i * 10_000_000
        out.append((span_id(2, i), ROOT, "worker", w0, w0 + 10_000_000))
        for j in range(STEPS):
            s0 = w0 + j * 100_000
            out.append((span_id(3, i, j), span_id(2, i), "step", s0, s0 + 100_000))
    for k in range(EXTRAS):
        e0 = start_ns + 500_000
        out.append((span_id(4, k), ROOT, "extra", e0, e0 + 100_000))
    return out


def requests(start_ns: int, per_request: int = 10_000) -> list[bytes]:
    """Protobuf bodies of at most ``per_request`` spans each, for ``POST /v1/traces``."""
    rows = spans(start_ns)
    bodies = []
    for lo in range(0, len(rows), per_request):
        req = ExportTraceServiceRequest()
        rs = req.resource_spans.add()
        rs.resource.attributes.append(KeyValue(key="service.name", value=AnyValue(string_value="big-service")))
        scope = rs.scope_spans.add()
        scope.scope.name = "bench.critical_trace"
        for sid, pid, name, s0, s1 in rows[lo:lo + per_request]:
            sp = scope.spans.add()
            sp.trace_id = bytes.fromhex(TRACE_ID)
            sp.span_id = bytes.fromhex(sid)
            if pid:
                sp.parent_span_id = bytes.fromhex(pid)
            sp.name = name
            sp.start_time_unix_nano = s0
            sp.end_time_unix_nano = s1
        bodies.append(req.SerializeToString())
    return bodies
