"""Honeycomb query spec + a dataset's columns -> the query plan.

This is where names meet the catalogue: an unknown column, a percentile of a
string column, or a filter value that cannot take the column's type becomes
a `SpecError` naming the field, before anything reaches the database.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Sequence

from apiary.model.span import CORE_FIELDS, INGEST_COLUMN, column_type
from apiary.query.calculated import EventMetadata, ExpressionError, parse_expression
from apiary.query.plan import (
    BOOLEAN, FLOAT, INTEGER, NUMERIC, STRING, TIMESTAMP, Aggregate, Call, Column, Expr, Group, HavingTerm,
    InList, Literal, OrderTerm, SEPARATE_KINDS, SeriesColumns, Source, SpanQuery, WEIGHTED_KINDS,
)
from apiary.query.relational import RelationalFields, check_not_calculated, relation_of
from apiary.query.spec import DEFAULT_LIMIT, HISTOGRAM_PERCENTILES, PERCENTILES, QuerySpec, SpecError, TimeWindow
from apiary.store.base import ColumnInfo

_CORE_SOURCES: dict[str, Source] = {f.name: Source(column_type(f.type), f.name) for f in CORE_FIELDS}
#: Which dataset a row belongs to: useful when querying ``__all__``.
DATASET_PSEUDO_COLUMN = "meta.dataset"
#: Where the receivers keep an event's sample rate (libhoney's ``samplerate``, OTel's ``SampleRate`` attribute).
SAMPLE_RATE_COLUMN = "meta.sample_rate"
_CORE_SOURCES[DATASET_PSEUDO_COLUMN] = Source(STRING, "_dataset")
#: When the store accepted a span: read by ``INGEST_TIMESTAMP()`` alone, never a column of the catalogue.
INGEST_TIMESTAMP = Column("INGEST_TIMESTAMP()", (Source(TIMESTAMP, INGEST_COLUMN),), TIMESTAMP)

_COMPARE = {"=": "eq", "!=": "ne", ">": "gt", ">=": "ge", "<": "lt", "<=": "le"}
_MATCH = {"starts-with": ("starts_with", False), "does-not-start-with": ("starts_with", True),
          "ends-with": ("ends_with", False), "does-not-end-with": ("ends_with", True),
          "contains": ("contains", False), "does-not-contain": ("contains", True)}
_SIMPLE_AGGREGATES = {"SUM": "sum", "AVG": "avg", "MAX": "max", "MIN": "min", "HEATMAP": "heatmap",
                      "RATE_AVG": "rate_avg", "RATE_SUM": "rate_sum", "RATE_MAX": "rate_max"}
#: Columns every OTLP metric row has (``apiary.receivers.otlp.metrics``).
_SERIES_COLUMNS = ("meta.series", "meta.start_time_us", "meta.temporality", "meta.monotonic")


class Catalogue:
    """Column name -> where its values live, for one dataset (or all of an environment)."""

    def __init__(self, columns: Sequence[ColumnInfo], where: str) -> None:
        self.where = where
        self.sources: dict[str, list[Source]] = {n: [s] for n, s in _CORE_SOURCES.items()}
        for c in columns:
            if c.name in _CORE_SOURCES:
                continue
            self.sources.setdefault(c.name, []).append(Source(c.type, c.physical, c.json_key))

    def column(self, name: str, wanted: str | None = None) -> Column:
        sources = self.sources.get(name)
        if sources is None:
            raise KeyError(name)
        types = {s.type for s in sources}
        if wanted is None:
            wanted = natural_type(types)
        return Column(name, tuple(sorted(sources, key=lambda s: (s.type != wanted, s.type))), wanted)

    def types(self, name: str) -> set[str]:
        return {s.type for s in self.sources[name]}


def natural_type(types: set[str]) -> str:
    if len(types) == 1:
        return next(iter(types))
    if types <= set(NUMERIC):
        return FLOAT
    return STRING


def build_plan(spec: QuerySpec, catalogue: Catalogue, env: str, datasets: tuple[str, ...] | None,
               window: TimeWindow) -> SpanQuery:
    p = _Planner(spec, catalogue)
    calcs = spec.effective_calculations()
    for i, c in enumerate(calcs):
        if c.column is not None and c.column not in p.calculated:
            check_not_calculated(c.column, catalogue.sources, f"calculations[{i}]")
    aggregates = tuple(p.aggregate(c, f"calculations[{i}]") for i, c in enumerate(calcs))
    labels = {a.label: i for i, a in enumerate(aggregates)}
    # Relational fields (root., parent., any., ...) read other spans of a row's trace.
    relational = RelationalFields(p, spec.filter_combination)
    filters: list[tuple[str | None, Expr]] = []
    for i, f in enumerate(spec.filters):
        relation = None if f.column in p.calculated else relation_of(f.column, catalogue.sources)
        prefix, column = relation if relation is not None else (None, f.column)
        filters.append((prefix, p.filter(column, f.op, f.value, f"filters[{i}]")))
    where = relational.where(filters)
    groups = []
    for i, b in enumerate(spec.breakdowns):
        relation = None if b in p.calculated else relation_of(b, catalogue.sources)
        expr = (p.operand(b, None, f"breakdowns[{i}]") if relation is None
                else relational.breakdown(*relation, f"breakdowns[{i}]"))
        groups.append(Group(b, expr))
    having = []
    for i, h in enumerate(spec.havings):
        label = h.calculate_op if h.column is None else f"{h.calculate_op}({h.column})"
        idx = labels[label]
        if aggregates[idx].kind in SEPARATE_KINDS:
            raise SpecError(f"havings[{i}]: cannot filter groups by {label}")
        having.append(HavingTerm(idx, _COMPARE[h.op], float(h.value)))
    order = []
    for i, o in enumerate(spec.orders):
        descending = o.order == "descending"
        if o.op is None:
            order.append(OrderTerm("group", spec.breakdowns.index(o.column or ""), descending))
            continue
        label = o.op if o.column is None else f"{o.op}({o.column})"
        idx = labels[label]
        if aggregates[idx].kind in SEPARATE_KINDS:
            raise SpecError(f"orders[{i}]: cannot order results by {label}")
        order.append(OrderTerm("aggregate", idx, descending))
    if not order:
        first = next((i for i, a in enumerate(aggregates) if a.kind not in SEPARATE_KINDS), None)
        if first is not None:
            order.append(OrderTerm("aggregate", first, True))
    return SpanQuery(
        env=env, datasets=datasets, start=_naive(window.start), end=_naive(window.end), granularity_s=window.granularity,
        where=where, groups=tuple(groups), aggregates=aggregates, having=tuple(having), order=tuple(order),
        limit=spec.limit or DEFAULT_LIMIT, heatmap_log=spec.heatmap_scale == "log",
        sample_rate=sample_rate_column(catalogue, aggregates),
        related=relational.related())


def sample_rate_column(catalogue: Catalogue, aggregates: Sequence[Aggregate]) -> Column | None:
    """``meta.sample_rate`` read as a number, when the datasets hold one and an aggregate is weighted by it."""
    if SAMPLE_RATE_COLUMN not in catalogue.sources or not any(a.kind in WEIGHTED_KINDS for a in aggregates):
        return None
    return catalogue.column(SAMPLE_RATE_COLUMN, FLOAT)


def planner_for(spec: QuerySpec, catalogue: Catalogue) -> "_Planner":
    """Column and filter resolution on their own (with the spec's calculated fields), for plans built around a query."""
    return _Planner(spec, catalogue)


def _naive(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, timezone.utc).replace(tzinfo=None)


class _Planner:
    def __init__(self, spec: QuerySpec, catalogue: Catalogue) -> None:
        self.catalogue = catalogue
        self.calculated: dict[str, str] = {f.name: f.expression for f in spec.calculated_fields}
        self._expanding: set[str] = set()

    # -- columns --------------------------------------------------------------------------------

    def operand(self, name: str, wanted: str | None, where: str) -> Expr:
        """A column or calculated field, read as ``wanted`` (its natural type when None)."""
        if name in self.calculated:
            expr = self._calculated(name, where)
            return expr if wanted is None or expr.type == wanted else _cast(expr, wanted)
        try:
            return self.catalogue.column(name, wanted)
        except KeyError:
            raise SpecError(f"{where}: unknown column {name!r} in {self.catalogue.where}") from None

    def _calculated(self, name: str, where: str) -> Expr:
        if name in self._expanding:
            raise SpecError(f"{where}: calculated field {name!r} refers to itself")
        self._expanding.add(name)
        try:
            def resolve(col: str, wanted: str | None) -> Column:
                expr = self.operand(col, wanted, f"calculated field {name!r}")
                if not isinstance(expr, Column):
                    raise SpecError(f"{where}: calculated field {name!r} uses another calculated field ({col!r}); "
                                    "inline its expression instead")
                return expr
            return parse_expression(self.calculated[name], resolve, self.event_metadata())
        except ExpressionError as exc:
            raise SpecError(f"{where}: calculated field {name!r}: {exc}") from None
        finally:
            self._expanding.discard(name)

    def event_metadata(self) -> EventMetadata:
        """What the event metadata functions read; ``SAMPLE_RATE()`` the column the weighting reads."""
        rate = self.catalogue.column(SAMPLE_RATE_COLUMN, INTEGER) if SAMPLE_RATE_COLUMN in self.catalogue.sources else None
        return EventMetadata(self.catalogue.column("timestamp"), INGEST_TIMESTAMP, rate)

    def _types(self, name: str) -> set[str]:
        if name in self.calculated:
            return {self._calculated(name, "").type}
        return self.catalogue.types(name)

    # -- calculations ---------------------------------------------------------------------------

    def aggregate(self, calc: Any, where: str) -> Aggregate:
        op, col, label = calc.op, calc.column, calc.label
        if op == "COUNT":
            return Aggregate("count", label, type=INTEGER)
        if op == "CONCURRENCY":
            return Aggregate("concurrency", label, type=INTEGER)
        if op in HISTOGRAM_PERCENTILES:
            return self._histogram(op, col, label, where)
        expr = self.operand(col, None, f"{where}.column")
        if op == "COUNT_DISTINCT":
            return Aggregate("count_distinct", label, expr, type=INTEGER)
        types = self._types(col)
        if not types & set(NUMERIC):
            kind = "/".join(sorted(types))
            raise SpecError(f"{where}: {label} needs a numeric column, but {col!r} is a {kind} column")
        wanted = INTEGER if types & set(NUMERIC) == {INTEGER} else FLOAT
        expr = self.operand(col, wanted, f"{where}.column")
        if op in PERCENTILES:
            return Aggregate("quantile", label, expr, q=PERCENTILES[op], type=FLOAT)
        if op in ("RATE", "INCREASE"):
            counter = SeriesColumns(*self._metric_columns(_SERIES_COLUMNS, label, where))
            return Aggregate(op.lower(), label, self.operand(col, FLOAT, f"{where}.column"), type=FLOAT, counter=counter)
        kind = _SIMPLE_AGGREGATES[op]
        result = wanted if kind in ("sum", "min", "max") else FLOAT
        return Aggregate(kind, label, expr, type=result)

    def _metric_columns(self, names: Sequence[str], label: str, where: str) -> list[Column]:
        try:
            return [self.catalogue.column(n) for n in names]
        except KeyError:
            raise SpecError(f"{where}: {label} works on OTLP metrics (POST /v1/metrics), and {self.catalogue.where} "
                            "has no metric data points") from None

    def _histogram(self, op: str, col: str | None, label: str, where: str) -> Aggregate:
        counter = SeriesColumns(*self._metric_columns(_SERIES_COLUMNS, label, where))
        try:
            buckets = self.catalogue.column(f"{col}.buckets", STRING)
        except KeyError:
            raise SpecError(f"{where}: {label}: {col!r} is not a histogram metric of {self.catalogue.where}") from None
        return Aggregate("histogram_quantile", label, q=HISTOGRAM_PERCENTILES[op], counter=counter, buckets=buckets,
                         metric=col)

    # -- filters --------------------------------------------------------------------------------

    def filter(self, name: str, op: str, value: Any, where: str) -> Expr:
        types = self._types(name) if name in self.calculated else self._known_types(name, where)
        if op in ("exists", "does-not-exist"):
            expr = self.operand(name, None, f"{where}.column")
            return Call("not_null" if op == "exists" else "is_null", (expr,), BOOLEAN)
        if op in _MATCH:
            fn, negate = _MATCH[op]
            if isinstance(value, bool) or not isinstance(value, (str, int, float)):
                raise SpecError(f"{where}.value: {op} needs a string")
            expr = self.operand(name, STRING, f"{where}.column")
            call = Call(fn, (expr, Literal(str(value), STRING)), BOOLEAN)
            return Call("not", (call,), BOOLEAN) if negate else call
        if op in ("in", "not-in"):
            target = _target_type(types, value[0], name, f"{where}.value")
            literals = tuple(_literal(v, target, name, f"{where}.value[{i}]") for i, v in enumerate(value))
            return InList(self.operand(name, target, f"{where}.column"), literals, op == "not-in")
        target = _target_type(types, value, name, f"{where}.value")
        if op in (">", ">=", "<", "<=") and target == BOOLEAN:
            raise SpecError(f"{where}: {op} does not apply to the boolean column {name!r}")
        if TIMESTAMP in types and target == TIMESTAMP:
            raise SpecError(f"{where}: filtering on the timestamp column is done with the time range")
        return Call(_COMPARE[op], (self.operand(name, target, f"{where}.column"), _literal(value, target, name, f"{where}.value")),
                    BOOLEAN)

    def _known_types(self, name: str, where: str) -> set[str]:
        try:
            return self.catalogue.types(name)
        except KeyError:
            raise SpecError(f"{where}.column: unknown column {name!r} in {self.catalogue.where}") from None


def _target_type(types: set[str], value: Any, name: str, where: str) -> str:
    """The type a comparison happens in: the column's, when the value can take it."""
    if isinstance(value, bool):
        return BOOLEAN if BOOLEAN in types else STRING
    if isinstance(value, (int, float)):
        if types & set(NUMERIC):
            return FLOAT if isinstance(value, float) or FLOAT in types else INTEGER
        return STRING
    # A string value
    numeric = types & set(NUMERIC)
    if numeric and not (types - set(NUMERIC)):
        if _as_number(value) is None:
            raise SpecError(f"{where}: {value!r} is not a number, and {name!r} is a numeric column")
        return FLOAT if FLOAT in types else INTEGER if isinstance(_as_number(value), int) else FLOAT
    if types == {BOOLEAN}:
        if value.lower() not in ("true", "false"):
            raise SpecError(f"{where}: {value!r} is not true or false, and {name!r} is a boolean column")
        return BOOLEAN
    return STRING


def _as_number(value: str) -> int | float | None:
    try:
        return int(value)
    except ValueError:
        try:
            return float(value)
        except ValueError:
            return None


def _literal(value: Any, target: str, name: str, where: str) -> Literal:
    if isinstance(value, list):
        raise SpecError(f"{where}: expected a single value")
    if target == STRING:
        text = ("true" if value else "false") if isinstance(value, bool) else str(value)
        return Literal(text, STRING)
    if target == BOOLEAN:
        if isinstance(value, bool):
            return Literal(value, BOOLEAN)
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return Literal(value.lower() == "true", BOOLEAN)
        raise SpecError(f"{where}: {value!r} is not true or false ({name!r} is boolean)")
    number = value if isinstance(value, (int, float)) and not isinstance(value, bool) else \
        _as_number(value) if isinstance(value, str) else None
    if number is None:
        raise SpecError(f"{where}: {value!r} is not a number ({name!r} is numeric)")
    if target == INTEGER and isinstance(number, int):
        return Literal(number, INTEGER)
    return Literal(float(number), FLOAT)


def _cast(expr: Expr, wanted: str) -> Expr:
    fn = {STRING: "to_string", FLOAT: "to_float", INTEGER: "to_integer", BOOLEAN: "to_boolean"}.get(wanted)
    if fn is None:
        raise SpecError(f"cannot read a calculated field as {wanted}")
    return Call(fn, (expr,), wanted)


