"""The one query plan every query language compiles to, and every SQL dialect renders.

A Honeycomb query spec, an X-Ray filter expression or a CloudWatch filter
pattern all end up as a `SpanQuery`: which rows (environment, datasets, a
time window, a boolean `Expr`), how to group them (time buckets and
breakdown expressions), and what to compute per group (`Aggregate`s).

Nothing here is SQL. Column references carry the store catalogue's
description of where their values live (`Source`: a physical column, or a key
of the overflow JSON column) and the type the query wants them in; a dialect
decides how to read, cast and combine them. Function names are neutral
(``starts_with``, ``add``, ``if``) and each dialect maps them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Union

#: Value types, as Honeycomb names column types.
STRING, INTEGER, FLOAT, BOOLEAN, TIMESTAMP = "string", "integer", "float", "boolean", "timestamp"
NUMERIC = (INTEGER, FLOAT)


@dataclass(frozen=True)
class Source:
    """One place a column's values live: a physical column, or ``json_key`` inside ``physical`` (a JSON object)."""

    type: str
    physical: str
    json_key: str | None = None


@dataclass(frozen=True)
class Column:
    """A logical column read as ``type``; several sources (one per type it was sent with) are coalesced."""

    name: str
    sources: tuple[Source, ...]
    type: str


@dataclass(frozen=True)
class Literal:
    value: str | int | float | bool | None
    type: str


@dataclass(frozen=True)
class Call:
    """A neutral function: arithmetic (add, sub, mul, div, mod, neg), comparison (eq, ne, lt, le, gt, ge),
    text (concat, lower, upper, length, starts_with, ends_with, contains), logic (and, or, not, if,
    coalesce, is_null, not_null), casts (to_integer, to_float, to_string, to_boolean), and
    ``epoch_seconds`` (of a timestamp)."""

    fn: str
    args: tuple["Expr", ...]
    type: str


@dataclass(frozen=True)
class InList:
    expr: "Expr"
    values: tuple[Literal, ...]
    negate: bool = False


@dataclass(frozen=True)
class SpanValue:
    """A value of one span of a trace query (`TraceRows`): ``v<i>`` reads ``TraceRows.values[i]``; the other names
    are worked out by the trace rows themselves -- ``service``, ``name``, ``start_us``, ``duration_ms``,
    ``span_error`` (the span's own error column), ``fault``, ``error``, ``throttle``, ``in_progress``, ``inferred``,
    ``node``, ``node_type`` (the graph node the span belongs to), ``service_origin`` (the origin the segments of
    the span's service carry in its trace), ``parent_service``, ``parent_node``, ``parent_type``, ``orphan`` (its
    parent is not among the rows), ``is_root`` (the trace's root: the earliest orphan), ``root_ms`` (the root's
    duration), ``leaf`` (no span has it as parent), ``child_fault`` / ``child_error`` (some child span has a fault /
    an error)."""

    name: str
    type: str


@dataclass(frozen=True)
class PerTrace:
    """An aggregate of a span expression over the spans of one trace: ``any`` (some span satisfies ``arg``), ``root``
    (``arg`` on the root span), ``min``, ``max``, ``sum``, ``count`` (spans satisfying ``arg``; all when None),
    ``distinct`` (the distinct non-null values, as a list)."""

    kind: str
    arg: "Expr | None"
    type: str


#: The kinds of root cause X-Ray's filter expressions name (``rootcause.<kind>.*``).
ROOT_CAUSE_KINDS = ("fault", "error", "responsetime")


@dataclass(frozen=True)
class RootCausePath:
    """Per trace: some root cause of one of ``kinds`` (``fault``, ``error``, ``responsetime``) has, for each of
    ``holds``, an element on its path satisfying it. A root cause's path is the chain of spans from the trace's
    root down to the root-cause span, read as X-Ray's summaries list it: services in order (``svc_index``,
    ``svc_last``), each with its entity path (``ent_index``, ``ent_last``), and the entities of the whole path
    (``path_index``, ``path_last``); ``holds`` read those `SpanValue`s beside the span's own. One condition is a
    keyword block (``rootcause.fault.service { last }``); several describe one root cause's whole shape
    (``rootcause.json``)."""

    kinds: tuple[str, ...]
    holds: tuple["Expr", ...]
    type: str = BOOLEAN


@dataclass(frozen=True)
class Related:
    """A value a span query reads off another span of each row's trace (Honeycomb's relational fields): entry
    ``index`` of the ``flags`` (``kind="flag"``: whether some related span satisfies it; NULL when the row has no
    related span at all) or ``picks`` (``kind="pick"``) of the query's `RelatedSpans` with this ``link``."""

    link: str
    kind: str
    index: int
    type: str


Expr = Union[Column, Literal, Call, InList, SpanValue, PerTrace, RootCausePath, Related]


#: How a row's span finds its related spans: ``trace`` (every span of its trace), ``parent`` (its direct parent),
#: ``children`` (its direct children).
RELATED_LINKS = ("trace", "parent", "children")


@dataclass(frozen=True)
class Pick:
    """``value`` read on one related span: the earliest (by start time; of spans starting
    in the same microsecond, any one) that satisfies ``match``."""

    match: Expr
    value: Expr


@dataclass(frozen=True)
class RelatedSpans:
    """The spans of the query's window linked to each row's span by ``link`` (one of `RELATED_LINKS`), summed up
    per row: ``flags`` (span conditions: does some linked span satisfy it) and ``picks``. A row without linked
    spans reads NULL for all of them. Spans of every dataset of the environment count: a trace crosses services."""

    link: str
    flags: tuple[Expr, ...] = ()
    picks: tuple[Pick, ...] = ()


@dataclass(frozen=True)
class SeriesColumns:
    """Where a metric row keeps what turns cumulative values into increases (``apiary.receivers.otlp.metrics``):
    its time series, start time (µs), temporality (``delta`` / ``cumulative``) and monotonicity."""

    series: Column
    start_us: Column
    temporality: Column
    monotonic: Column


@dataclass(frozen=True)
class Aggregate:
    """``kind``: count, count_distinct, sum, avg, min, max, quantile (with ``q``), concurrency,
    rate_avg, rate_sum, rate_max (per-second rate of change of ``arg`` between consecutive rows of a group),
    heatmap (value buckets of ``arg``);
    for metric data points (``counter`` set): increase (what a monotonic sum grew by, resets counted from
    zero, delta points summed as sent), rate (that increase per second of the time bucket or window);
    histogram_quantile (``q`` of the merged buckets of the histogram ``metric``, read from ``buckets``: the text
    column ``<metric>.buckets``, ``lower,upper,count`` per non-empty bucket, ``;`` between them)."""

    kind: str
    label: str
    arg: Expr | None = None
    q: float | None = None
    type: str = FLOAT
    counter: SeriesColumns | None = None
    buckets: Column | None = None
    metric: str | None = None


#: Aggregates the summary query cannot order or filter by (computed by queries of their own).
SEPARATE_KINDS = ("heatmap", "concurrency", "histogram_quantile")
#: Aggregates a sample rate weights (Honeycomb's "Sampled Data in Honeycomb"); COUNT_DISTINCT, MIN, MAX, the rates
#: and CONCURRENCY read each stored row once.
WEIGHTED_KINDS = ("count", "sum", "avg", "quantile", "heatmap")


@dataclass(frozen=True)
class Group:
    label: str
    expr: Expr


@dataclass(frozen=True)
class HavingTerm:
    aggregate: int  # index into SpanQuery.aggregates
    op: str  # eq, ne, lt, le, gt, ge
    value: float


@dataclass(frozen=True)
class OrderTerm:
    """By a group (breakdown) or an aggregate, by index."""

    target: str  # "group" | "aggregate"
    index: int
    descending: bool = False


@dataclass(frozen=True)
class SpanQuery:
    env: str
    datasets: tuple[str, ...] | None  # None: every dataset of the environment
    start: datetime  # naive UTC, inclusive
    end: datetime  # naive UTC, exclusive
    granularity_s: int
    where: Expr | None
    groups: tuple[Group, ...]
    aggregates: tuple[Aggregate, ...]
    having: tuple[HavingTerm, ...] = ()
    order: tuple[OrderTerm, ...] = ()
    limit: int = 100
    #: Row columns the plan needs besides the user's: the span's start, its trace id, its duration.
    timestamp: Column = field(default_factory=lambda: Column("timestamp", (Source(TIMESTAMP, "timestamp"),), TIMESTAMP))
    trace_id: Column = field(default_factory=lambda: Column("trace.trace_id", (Source(STRING, "trace.trace_id"),), STRING))
    duration: Column = field(default_factory=lambda: Column("duration_ms", (Source(FLOAT, "duration_ms"),), FLOAT))
    #: Example trace ids kept per result row (the slowest matching spans'); each one more costs a heap per group.
    examples: int = 1
    #: Value buckets of a heatmap.
    heatmap_buckets: int = 40
    #: Value buckets evenly spaced in log(value) rather than in value.
    heatmap_log: bool = False
    #: Honeycomb's sample rate (``meta.sample_rate``, 1 in N kept; missing means 1), when the datasets have one:
    #: COUNT, SUM, AVG, percentiles and HEATMAP weight each row by it, as Honeycomb does. None: every row counts once.
    sample_rate: Column | None = None
    #: What ``where`` and the groups read off other spans of each row's trace (`Related` values; Honeycomb's
    #: relational fields, ``apiary.query.relational``), one entry per link.
    related: tuple[RelatedSpans, ...] = ()

    @property
    def buckets(self) -> int:
        span = (self.end - self.start).total_seconds()
        return int(-(-span // self.granularity_s))


def weighted_percentiles(q: SpanQuery) -> bool:
    """Whether a percentile is weighted by sample rate: it ranks rows within each group, so totals and time series
    cannot share one grouping-sets scan."""
    return q.sample_rate is not None and any(a.kind == "quantile" for a in q.aggregates)


def columns_of(expr: Expr | None) -> list[Column]:
    """Every column reference inside an expression."""
    if expr is None or isinstance(expr, (Literal, SpanValue, Related)):
        return []
    if isinstance(expr, Column):
        return [expr]
    if isinstance(expr, InList):
        return columns_of(expr.expr)
    if isinstance(expr, PerTrace):
        return columns_of(expr.arg)
    return [c for a in expr.args for c in columns_of(a)]


def filter_reads_overflow(q: SpanQuery) -> bool:
    """Whether the WHERE clause reads an attribute kept inside the JSON overflow column.

    Such a filter makes the scan itself the cost (every row's JSON is parsed), so the engine
    computes totals and series in one pass over the matching rows rather than two scans.
    """
    return any(s.json_key is not None for c in columns_of(q.where) for s in c.sources)


@dataclass(frozen=True)
class Facet:
    """One column BubbleUp compares: by its values, by a histogram of ``bins`` equal buckets from ``lo`` (``bins`` > 0),
    or (``presence``) by whether it has a value at all."""

    column: Column
    lo: float = 0.0
    width: float = 1.0
    bins: int = 0
    presence: bool = False


@dataclass(frozen=True)
class BubbleUp:
    """The rows of ``rows`` (a query's datasets, window and WHERE), split by ``selection`` into the selection
    (true) and the baseline (false or unknown), and the columns to compare between the two."""

    rows: SpanQuery
    selection: Expr
    columns: tuple[Column, ...]
    #: When given, the baseline is read only in these (start, end) slices of the window, as a sample read by time
    #: range (which skips whole row groups); selected rows are always all read.
    baseline_slices: tuple[tuple[datetime, datetime], ...] = ()


@dataclass(frozen=True)
class TraceRows:
    """The spans trace queries (X-Ray's summaries and graphs) judge traces by: those of ``env`` starting in
    [``start``, ``end``), events and links left out, one row per span id (the completed version of a span sent
    in progress first), each joined to its parent and its children.

    ``values`` are read from a span's columns once (referenced as ``SpanValue("v<i>")``); ``origin`` is one of
    them; the other expressions are over `SpanValue`s: a span's ``in_progress``, ``fault``, ``error``,
    ``throttle`` and ``inferred`` flags, and the graph node it belongs to (``node``, ``node_type``)."""

    env: str
    start: datetime  # naive UTC
    end: datetime
    values: tuple[Expr, ...]
    origin: Expr
    in_progress: Expr
    fault: Expr
    error: Expr
    throttle: Expr
    inferred: Expr
    node: Expr
    node_type: Expr
    trace_ids: tuple[str, ...] | None = None


@dataclass(frozen=True)
class TraceQuery:
    """Traces whose first span starts in [``start``, ``end``) and that satisfy ``where`` (over `PerTrace` values),
    newest first, with ``columns`` (named per-trace values) and how many matched in all.
    ``sample``: keep only that fraction of the traces (chosen by a hash of the trace id, so pages agree)."""

    rows: TraceRows
    start: datetime
    end: datetime
    where: Expr | None
    columns: tuple[tuple[str, Expr], ...]
    sample: float | None = None
    limit: int = 100
    offset: int = 0


@dataclass(frozen=True)
class TraceRootCauses:
    """The root causes of the traces ``rows.trace_ids`` (a page of summaries), every kind, each as its path: a row
    per (root cause, span on its path) with the path's places (`RootCausePath`) and ``columns`` (named span
    values) -- what GetTraceSummaries lists, from the paths the ``rootcause.*`` keywords judge."""

    rows: TraceRows
    columns: tuple[tuple[str, Expr], ...]


@dataclass(frozen=True)
class TraceGraph:
    """The service graph of the traces that satisfy ``traces`` (all when None): a node per (``node``,
    ``node_type``) with the statistics of the spans that enter it, an edge per (parent's node, node) pair."""

    rows: TraceRows
    traces: Expr | None


@dataclass(frozen=True)
class TraceSeries:
    """GetServiceGraph's statistics cut into ``period_us`` buckets of span start time within [``start``, ``end``):
    of the spans of ``graph`` that enter a node (or, when ``edges``, cross an edge, the roots' from the client) and
    satisfy ``entity`` (a span predicate; every one when None). A page of buckets, oldest first."""

    graph: TraceGraph
    entity: Expr | None
    edges: bool
    start: datetime  # naive UTC
    end: datetime
    period_us: int
    limit: int = 1000
    offset: int = 0


@dataclass(frozen=True)
class NodeFaultSeries:
    """What X-Ray Insights judges, per ``period_us`` bucket of span start time within [``start``, ``end``) and per
    graph node of ``graph``'s traces: the requests entering the node (``total``, ``ok``, ``faults``, as the
    service graph counts them), ``root_causes``, the traces whose fault root cause (the span a `RootCausePath` of
    kind ``fault`` ends at: a faulting span none of whose children faulted) is a span of that node, and the same
    counts of the traces' roots in it (the client's requests). Oldest bucket first."""

    graph: TraceGraph
    start: datetime  # naive UTC
    end: datetime
    period_us: int
