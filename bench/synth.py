"""Synthetic OTLP requests shaped like a real service's: shared by the benchmarks."""

from __future__ import annotations

import bisect
import random
import time

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

SERVICES = ("backend-flask", "frontend-react-js", "worker")
ROUTES = tuple(f"/api/route{i}" for i in range(20))


def _kv(key: str, value: object) -> KeyValue:
    if isinstance(value, bool):
        return KeyValue(key=key, value=AnyValue(bool_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    if isinstance(value, float):
        return KeyValue(key=key, value=AnyValue(double_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=str(value)))


def make_request(spans: int, rng: random.Random, service: str | None = None, now_ns: int | None = None) -> bytes:
    """One ExportTraceServiceRequest of ``spans`` spans, ~10 attributes each, traces of 8 spans."""
    now_ns = now_ns or time.time_ns()
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    svc = service or rng.choice(SERVICES)
    for k, v in (("service.name", svc), ("telemetry.sdk.language", "python"), ("host.name", "bench-host")):
        rs.resource.attributes.append(_kv(k, v))
    ss = rs.scope_spans.add()
    ss.scope.name = "opentelemetry.instrumentation.flask"
    ss.scope.version = "0.66b1"
    trace_id = b""
    root = b""
    for i in range(spans):
        if i % 8 == 0:
            trace_id = rng.randbytes(16)
            root = b""
        sp = ss.spans.add()
        sp.trace_id = trace_id
        sp.span_id = rng.randbytes(8)
        if root:
            sp.parent_span_id = root
        else:
            root = sp.span_id
        route = rng.choice(ROUTES)
        sp.name = f"GET {route}"
        sp.kind = Span.SPAN_KIND_SERVER if not sp.parent_span_id else Span.SPAN_KIND_INTERNAL
        dur = int(rng.lognormvariate(16, 1.0))
        sp.start_time_unix_nano = now_ns - rng.randrange(0, 10**9)
        sp.end_time_unix_nano = sp.start_time_unix_nano + dur
        status = 500 if rng.random() < 0.02 else 200
        if status == 500:
            sp.status.code = 2
        sp.attributes.extend([
            _kv("http.method", "GET"), _kv("http.route", route), _kv("http.status_code", status),
            _kv("http.scheme", "http"), _kv("http.target", route), _kv("net.peer.ip", "127.0.0.1"),
            _kv("http.user_agent", "bench/1.0"), _kv("app.user_id", f"user{rng.randrange(1000)}"),
            _kv("app.result_length", rng.randrange(50)), _kv("http.flavor", "1.1"),
        ])
    return req.SerializeToString()


#: The SDK's default explicit bucket bounds (ms), as an auto-instrumented HTTP server's duration histogram has them.
DEFAULT_BOUNDS = (0.0, 5.0, 10.0, 25.0, 50.0, 75.0, 100.0, 250.0, 500.0, 750.0, 1000.0, 2500.0, 5000.0, 7500.0, 10000.0)


def make_metrics_request(points: int, rng: random.Random, service: str | None = None, now_ns: int | None = None,
                         histogram_share: float = 0.25) -> bytes:
    """One ExportMetricsServiceRequest of ``points`` data points, shaped like an instrumented HTTP service's export.

    A ``histogram_share`` of the points are ``http.server.duration`` histograms (15 bounds, 16 buckets each);
    the rest are split between a cumulative request counter, an up-down counter of active requests and a
    memory gauge. Each point is its own series (route, method, status code, instance), as a 60 s export holds.
    """
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
    from opentelemetry.proto.metrics.v1.metrics_pb2 import AggregationTemporality

    now_ns = now_ns or time.time_ns()
    start_ns = now_ns - 3_600 * 10**9
    cumulative = AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE
    req = ExportMetricsServiceRequest()
    rm = req.resource_metrics.add()
    svc = service or rng.choice(SERVICES)
    for k, v in (("service.name", svc), ("telemetry.sdk.language", "python"), ("host.name", "bench-host")):
        rm.resource.attributes.append(_kv(k, v))
    sm = rm.scope_metrics.add()
    sm.scope.name = "opentelemetry.instrumentation.flask"
    sm.scope.version = "0.66b1"
    histograms = int(points * histogram_share)
    rest = points - histograms
    duration = sm.metrics.add(name="http.server.duration", unit="ms", description="HTTP server request duration")
    duration.histogram.aggregation_temporality = cumulative
    requests = sm.metrics.add(name="http.server.requests", unit="{request}")
    requests.sum.aggregation_temporality = cumulative
    requests.sum.is_monotonic = True
    active = sm.metrics.add(name="http.server.active_requests", unit="{request}")
    active.sum.aggregation_temporality = cumulative
    memory = sm.metrics.add(name="process.memory.usage", unit="By")

    def labels(i: int) -> list[KeyValue]:
        return [_kv("http.route", ROUTES[i % len(ROUTES)]), _kv("http.method", "GET"),
                _kv("http.status_code", 500 if i % 50 == 0 else 200), _kv("app.instance", f"i{i // len(ROUTES)}")]

    for i in range(histograms):
        p = duration.histogram.data_points.add(start_time_unix_nano=start_ns, time_unix_nano=now_ns)
        p.attributes.extend(labels(i))
        # A minute's requests of one route: log-normal latencies (median ~20 ms) fill a few neighbouring buckets.
        counts = [0] * (len(DEFAULT_BOUNDS) + 1)
        for _ in range(rng.randrange(1, 60)):
            counts[bisect.bisect_left(DEFAULT_BOUNDS, rng.lognormvariate(3.0, 0.8))] += 1
        p.explicit_bounds.extend(DEFAULT_BOUNDS)
        p.bucket_counts.extend(counts)
        p.count = sum(counts)
        p.sum = p.count * rng.uniform(5, 200)
        p.min, p.max = 0.5, 9000.0
    for i in range(rest):
        kind = i % 4
        target = requests.sum if kind < 2 else active.sum if kind == 2 else memory.gauge
        p = target.data_points.add(start_time_unix_nano=start_ns, time_unix_nano=now_ns)
        p.attributes.extend(labels(i))
        if kind == 3:
            p.as_double = rng.uniform(1e8, 2e8)
        else:
            p.as_int = rng.randrange(10_000)
    return req.SerializeToString()
