"""OTLP ``ExportMetricsServiceRequest`` -> rows of the span table, as Honeycomb stores metrics.

Honeycomb's model: a data point lands in the dataset of its resource's
``service.name``, each metric is a column named after the metric, and the
points that share a timestamp and an attribute set share one row. Here the
row key also holds the start time and the temporality, because the query
layer needs them per row to turn cumulative sums into increases (a start time
that changes is a counter reset). Every row says ``meta.signal_type =
metric`` so span views can leave it out.

Columns a point row gets besides its attributes:

* gauge, sum: ``<metric>`` (the value, integer or float as sent);
* histogram, exponential histogram: ``<metric>.count``, ``.sum``, ``.min``, ``.max``, and
  ``<metric>.buckets``, its non-empty buckets as text (``lower,upper,count;...``), so a percentile is
  computed from merged buckets rather than from stored percentiles;
* summary: ``<metric>.count``, ``.sum`` and ``<metric>.p<quantile>`` (``.p50``, ``.p99``, ``.p99.9``);
* ``meta.series`` (a stable hash of resource, scope and point attributes: one
  value per time series), ``meta.start_time_us``, ``meta.temporality``
  (``delta`` / ``cumulative``; none for gauges and summaries) and
  ``meta.monotonic``.

Rows of their own, told apart by ``meta.annotation_type`` as span events are,
and tied to their metric by ``meta.metric``:

* ``exemplar``: ``exemplar.trace_id``, ``exemplar.span_id``,
  ``exemplar.value`` -- the link from a point to a trace (kept out of
  ``trace.trace_id`` so a trace never shows a metric row as a span);
* ``instrument``: one per metric per export, with ``meta.metric.type``,
  ``meta.metric.unit``, ``meta.metric.description``, ``meta.temporality`` and
  ``meta.monotonic``, the catalogue of instruments the UI lists.

Pure (bytes in, `SpanBatch` out) so a decode worker can run it.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from typing import Any, Iterable

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (ExportMetricsServiceRequest,
                                                                          ExportMetricsServiceResponse)
from opentelemetry.proto.metrics.v1.metrics_pb2 import AggregationTemporality

from apiary.model.builder import BatchBuilder, value_kind
from apiary.model.span import UNKNOWN_SERVICE, SpanBatch
from apiary.receivers.encoding import decompress
from apiary.receivers.otlp.traces import parse_message
from apiary.receivers.otlp.values import attributes

SIGNAL = "metric"
SERIES, START, TEMPORALITY, MONOTONIC = "meta.series", "meta.start_time_us", "meta.temporality", "meta.monotonic"
METRIC, TYPE, UNIT, DESCRIPTION = "meta.metric", "meta.metric.type", "meta.metric.unit", "meta.metric.description"
EXEMPLAR_TRACE, EXEMPLAR_SPAN, EXEMPLAR_VALUE = "exemplar.trace_id", "exemplar.span_id", "exemplar.value"
EXEMPLAR_ROW, INSTRUMENT_ROW = "exemplar", "instrument"

_TEMPORALITY = {AggregationTemporality.AGGREGATION_TEMPORALITY_DELTA: "delta",
                AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE: "cumulative"}
_SCALARS = frozenset({str, int, float, bool})
_NO_RECORDED_VALUE = 1  # DataPointFlags.DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK
_MAX_ERRORS = 5


def parse(body: bytes, json_body: bool) -> ExportMetricsServiceRequest:
    return parse_message(ExportMetricsServiceRequest(), body, json_body, "resourceMetrics")


def quantile_column(metric: str, quantile: float) -> str:
    """``<metric>.p99`` for a summary's 0.99 quantile (``.p99.9`` for 0.999, ``.p0`` / ``.p100`` for min / max)."""
    return f"{metric}.p{round(quantile * 100, 6):g}"


def _points(metric: Any) -> tuple[str | None, Iterable[Any]]:
    which = metric.WhichOneof("data")
    if which is None:
        return None, ()
    return which, getattr(metric, which).data_points


def _point_count(rm_list: Iterable[Any]) -> int:
    """Rows a request needs at least: a row per point (fewer when points share one) and per metric.

    Counted from the repeated fields' lengths, not point by point: walking every point here cost ~8 us of a
    point's ~100 us decode. Exemplar rows, rarer, grow the builder as they come.
    """
    total = 0
    for rm in rm_list:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                which = metric.WhichOneof("data")
                total += 1 + (len(getattr(metric, which).data_points) if which else 0)
    return total


def _series_id(resource_key: str, scope_key: str, point_attrs: dict[str, Any]) -> str:
    """A stable id of one time series: the same in every decode worker process (so not ``hash()``, which is salted).

    ``repr`` of the sorted attributes rather than JSON: a third of the cost, and as stable for OTLP's value types.
    """
    text = repr(sorted(point_attrs.items()))
    return hashlib.blake2b(f"{resource_key}\x1f{scope_key}\x1f{text}".encode(), digest_size=8).hexdigest()


def _exponential_bound(scale: int, index: int) -> float:
    """``base ** index`` with ``base = 2 ** 2 ** -scale``, as the OTLP exponential histogram defines its buckets."""
    try:
        return 2.0 ** (index / 2.0 ** scale)
    except OverflowError:
        return math.inf


class _Rows:
    """Allocates rows in a `BatchBuilder` and merges points that share a row key."""

    def __init__(self, builder: BatchBuilder) -> None:
        self.b = builder
        self.used = 0
        self._by_key: dict[tuple[Any, ...], int] = {}
        c = builder.core
        self.ts, self.service = c["timestamp"], c["service.name"]
        self.signal, self.annotation = c["meta.signal_type"], c["meta.annotation_type"]
        self.lib_name, self.lib_version = c["library.name"], c["library.version"]
        self.dataset = builder.dataset

    def new(self, ts_us: int, service: str, scope: tuple[str | None, str | None], annotation: str | None) -> int:
        row = self.used
        if row == self.b.rows:
            self.b.grow(max(64, row // 4))
        self.used += 1
        self.ts[row] = ts_us
        self.service[row] = service
        self.dataset[row] = service
        self.signal[row] = SIGNAL
        self.annotation[row] = annotation
        self.lib_name[row], self.lib_version[row] = scope
        return row

    def point(self, key: tuple[Any, ...], ts_us: int, service: str, scope: tuple[str | None, str | None],
              attrs: dict[str, Any], series: str, start_us: int | None, temporality: str | None,
              monotonic: bool | None) -> int:
        row = self._by_key.get(key)
        if row is not None:
            return row
        row = self._by_key[key] = self.new(ts_us, service, scope, None)
        self._series_columns(row, attrs, series, start_us, temporality, monotonic)
        return row

    def _series_columns(self, row: int, attrs: dict[str, Any], series: str, start_us: int | None,
                        temporality: str | None, monotonic: bool | None) -> None:
        b = self.b
        columns, kinds = b.attrs, b.kinds
        for k, v in (*attrs.items(), (SERIES, series), (START, start_us), (TEMPORALITY, temporality), (MONOTONIC, monotonic)):
            col = columns.get(k)
            # Fast path: a scalar for an existing column of its own type (what every point after the first brings).
            if col is not None and v is not None and v.__class__ in _SCALARS and kinds[k] == value_kind(v):
                col[row] = v
            else:
                b.set_attr(row, k, v)

    def related(self, annotation: str, metric: str, ts_us: int, service: str, scope: tuple[str | None, str | None],
                attrs: dict[str, Any], series: str, start_us: int | None, temporality: str | None,
                monotonic: bool | None) -> int:
        row = self.new(ts_us, service, scope, annotation)
        self._series_columns(row, attrs, series, start_us, temporality, monotonic)
        self.b.set_attr(row, METRIC, metric)
        return row


def to_batch(req: ExportMetricsServiceRequest) -> SpanBatch:
    """Flatten every data point into rows; points that cannot be stored are counted as rejected."""
    b = BatchBuilder(_point_count(req.resource_metrics))
    rows = _Rows(b)
    set_attr = b.set_attr
    edges: dict[tuple[float, ...], list[str]] = {}
    rejected = 0
    errors: list[str] = []

    def reject(metric: str, why: str, points: int = 1) -> None:
        nonlocal rejected
        rejected += points
        if len(errors) < _MAX_ERRORS:
            errors.append(f"metric {metric!r}: {why}")

    for rm in req.resource_metrics:
        res_attrs = attributes(rm.resource.attributes)
        service = res_attrs.get("service.name")
        service = str(service) if service not in (None, "") else UNKNOWN_SERVICE
        res_key = json.dumps(sorted(res_attrs.items()), default=str, separators=(",", ":"))
        res_start = rows.used
        for sm in rm.scope_metrics:
            scope = (sm.scope.name or None, sm.scope.version or None)
            scope_key = f"{sm.scope.name}\x1f{sm.scope.version}"
            for metric in sm.metrics:
                which, points = _points(metric)
                name = metric.name
                if not name:
                    reject("", "a metric needs a name", len(points))
                    continue
                if which is None:
                    continue
                data = getattr(metric, which)
                temporality = _TEMPORALITY.get(getattr(data, "aggregation_temporality", 0))
                if which in ("sum", "histogram", "exponential_histogram") and temporality is None:
                    reject(name, f"a {which} needs aggregation_temporality DELTA or CUMULATIVE", len(points))
                    continue
                monotonic: bool | None = None
                if which == "sum":
                    monotonic = bool(data.is_monotonic)
                elif which in ("histogram", "exponential_histogram"):
                    monotonic = True
                else:
                    temporality = None
                latest = 0
                for p in points:
                    if p.flags & _NO_RECORDED_VALUE:
                        continue
                    if not p.time_unix_nano:
                        reject(name, "time_unix_nano must be set")
                        continue
                    if which == "histogram" and p.bucket_counts and len(p.bucket_counts) != len(p.explicit_bounds) + 1:
                        reject(name, f"{len(p.bucket_counts)} bucket_counts for {len(p.explicit_bounds)} explicit_bounds "
                                     "(there must be one more count than bounds)")
                        continue
                    if which in ("gauge", "sum") and p.WhichOneof("value") is None:
                        reject(name, "a number data point needs as_int or as_double")
                        continue
                    ts = p.time_unix_nano // 1000
                    latest = max(latest, ts)
                    start = p.start_time_unix_nano // 1000 if p.start_time_unix_nano else None
                    attrs = attributes(p.attributes)
                    series = _series_id(res_key, scope_key, attrs)
                    key = (series, ts, start, temporality, monotonic)
                    row = rows.point(key, ts, service, scope, attrs, series, start, temporality, monotonic)
                    if which in ("gauge", "sum"):
                        set_attr(row, name, p.as_int if p.WhichOneof("value") == "as_int" else p.as_double)
                    elif which == "summary":
                        set_attr(row, f"{name}.count", p.count)
                        set_attr(row, f"{name}.sum", p.sum)
                        for qv in p.quantile_values:
                            set_attr(row, quantile_column(name, qv.quantile), qv.value)
                    else:
                        set_attr(row, f"{name}.count", p.count)
                        if p.HasField("sum"):
                            set_attr(row, f"{name}.sum", p.sum)
                        if p.HasField("min"):
                            set_attr(row, f"{name}.min", p.min)
                        if p.HasField("max"):
                            set_attr(row, f"{name}.max", p.max)
                        if which == "histogram":
                            text = _explicit_bucket_text(p, edges)
                        else:
                            text = bucket_text(_buckets(which, p))
                        set_attr(row, f"{name}.buckets", text or None)
                    for ex in getattr(p, "exemplars", ()):
                        ex_attrs = {**attrs, **attributes(ex.filtered_attributes)}
                        r = rows.related(EXEMPLAR_ROW, name, (ex.time_unix_nano // 1000) or ts, service, scope, ex_attrs,
                                         series, start, temporality, monotonic)
                        if len(ex.trace_id) == 16 and any(ex.trace_id):
                            set_attr(r, EXEMPLAR_TRACE, ex.trace_id.hex())
                        if len(ex.span_id) == 8 and any(ex.span_id):
                            set_attr(r, EXEMPLAR_SPAN, ex.span_id.hex())
                        which_value = ex.WhichOneof("value")
                        if which_value is not None:
                            set_attr(r, EXEMPLAR_VALUE, float(getattr(ex, which_value)))
                r = rows.new(latest or _now_us(), service, scope, INSTRUMENT_ROW)
                set_attr(r, METRIC, name)
                set_attr(r, TYPE, which)
                set_attr(r, UNIT, metric.unit or None)
                set_attr(r, DESCRIPTION, metric.description or None)
                set_attr(r, TEMPORALITY, temporality)
                set_attr(r, MONOTONIC, monotonic)
        for k, v in res_attrs.items():
            if k != "service.name":
                b.fill_attr(res_start, rows.used, k, v)
    b.truncate(rows.used)
    return b.build(rejected, errors)


def bucket_text(buckets: Iterable[tuple[float, float, int]]) -> str:
    """``lower,upper,count`` of each non-empty bucket, ``;`` between them (``-inf`` / ``inf`` at the ends).

    One text column on the point's own row rather than a row per bucket: bucket rows made a histogram
    point ~5 rows, and ingest paid per row (``bench/ingest.py --signal metrics``: 4,002 data points/s
    against 11,392 spans/s in the same run with bucket rows). Empty buckets are left out: a latency
    histogram's minute fills few of its 16, and one first seen later in a series was empty before (the
    query layer reads it so).
    """
    return ";".join(f"{lower!r},{upper!r},{count}" for lower, upper, count in buckets if count)


def _explicit_bucket_text(p: Any, edges: dict[tuple[float, ...], list[str]]) -> str:
    """``bucket_text`` of an explicit-bounds point, with each distinct bounds list rendered once per request."""
    bounds = tuple(p.explicit_bounds)
    text = edges.get(bounds)
    if text is None:
        rendered = ["-inf", *(repr(b) for b in bounds), "inf"]
        text = edges[bounds] = [f"{rendered[i]},{rendered[i + 1]}," for i in range(len(bounds) + 1)]
    return ";".join(f"{text[i]}{c}" for i, c in enumerate(p.bucket_counts) if c)


def _buckets(which: str, p: Any) -> Iterable[tuple[float, float, int]]:
    """(lower, upper, count) of every bucket of a histogram point; the outermost bounds are infinite."""
    if which == "histogram":
        bounds = list(p.explicit_bounds)
        for i, count in enumerate(p.bucket_counts):
            yield (bounds[i - 1] if i > 0 else -math.inf), (bounds[i] if i < len(bounds) else math.inf), count
        return
    scale = p.scale
    for k, count in enumerate(p.negative.bucket_counts):
        index = p.negative.offset + k
        yield -_exponential_bound(scale, index + 1), -_exponential_bound(scale, index), count
    if p.zero_count or p.zero_threshold:
        yield -p.zero_threshold, p.zero_threshold, p.zero_count
    for k, count in enumerate(p.positive.bucket_counts):
        index = p.positive.offset + k
        yield _exponential_bound(scale, index), _exponential_bound(scale, index + 1), count


def _now_us() -> int:
    return int(time.time() * 1e6)


def decode(body: bytes, json_body: bool) -> SpanBatch:
    return to_batch(parse(body, json_body))


def decode_request(body: bytes, content_encoding: str | None, json_body: bool, limit: int) -> SpanBatch:
    """Entry point for the decode workers (and the gRPC receiver): raw body in, batch out, or a PayloadError."""
    return decode(decompress(body, content_encoding, limit), json_body)


def export_response(batch: SpanBatch) -> ExportMetricsServiceResponse:
    """The answer to a committed request: ``partial_success`` names the data points refused and why."""
    resp = ExportMetricsServiceResponse()
    if batch.rejected:
        resp.partial_success.rejected_data_points = batch.rejected
        resp.partial_success.error_message = "; ".join(batch.errors)
    return resp
