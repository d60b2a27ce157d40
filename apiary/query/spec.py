"""Honeycomb's Query Specification, validated.

The shape and names follow Honeycomb's Query Data API (``calculations``,
``filters``, ``breakdowns``, ``orders``, ``havings`` ...). Validation here is
structural -- types, operators, counts, time rules; whether a column exists and
has a type an operator can use is decided when the spec is planned against a
dataset's columns (``apiary.query.planner``).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from apiary.model.timestamps import MAX_TIMESTAMP_US

PERCENTILES: dict[str, float] = {
    "P001": 0.001, "P01": 0.01, "P05": 0.05, "P10": 0.10, "P20": 0.20, "P25": 0.25, "P50": 0.50, "P75": 0.75,
    "P80": 0.80, "P90": 0.90, "P95": 0.95, "P99": 0.99, "P999": 0.999,
}
NO_COLUMN_OPS = ("COUNT", "CONCURRENCY")
NUMERIC_OPS = ("SUM", "AVG", "MAX", "MIN", "HEATMAP", "RATE_AVG", "RATE_SUM", "RATE_MAX", *PERCENTILES)
#: Percentiles of an OTLP histogram metric, from its merged buckets: ``HISTOGRAM_P99(http.server.duration)``.
HISTOGRAM_PERCENTILES: dict[str, float] = {f"HISTOGRAM_{name}": q for name, q in PERCENTILES.items()}
#: Operators on OTLP metric columns, aware of temporality and counter resets.
METRIC_OPS = ("RATE", "INCREASE", *HISTOGRAM_PERCENTILES)
CALCULATION_OPS = (*NO_COLUMN_OPS, "COUNT_DISTINCT", *NUMERIC_OPS, *METRIC_OPS)
FILTER_OPS = ("=", "!=", ">", ">=", "<", "<=", "starts-with", "does-not-start-with", "ends-with", "does-not-end-with",
              "contains", "does-not-contain", "exists", "does-not-exist", "in", "not-in")
VALUELESS_FILTER_OPS = ("exists", "does-not-exist")
LIST_FILTER_OPS = ("in", "not-in")
HAVING_OPS = ("=", "!=", ">", ">=", "<", "<=")

DEFAULT_TIME_RANGE = 7200
#: Unix seconds of 2262-04-11, the last time the stores hold (``apiary.model.timestamps``).
MAX_TIME_S = MAX_TIMESTAMP_US // 1_000_000
DEFAULT_LIMIT = 100
MAX_LIMIT = 10_000
MAX_ITEMS = 100
#: How many granularity buckets a default granularity aims for.
DEFAULT_BUCKETS = 100

Scalar = str | int | float | bool


class SpecError(ValueError):
    """A spec Apiary cannot run; the message names the field to fix."""


def _check_number(v: Any) -> Any:
    """Numbers a column can be compared with: finite, integers within 64 bits."""
    if isinstance(v, float) and not math.isfinite(v):
        raise ValueError("NaN and Infinity are not values a column holds")
    if isinstance(v, int) and not isinstance(v, bool) and not -(2**63) <= v < 2**63:
        raise ValueError(f"{v} does not fit a 64-bit integer")
    return v


def _choice(value: Any, allowed: tuple[str, ...], what: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{what} must be a string, one of {', '.join(allowed)}")
    if value in allowed:
        return value
    upper = value.upper() if what == "op" and value.upper() in allowed else None
    if upper:
        return upper
    raise ValueError(f"unknown {what} {value!r}; expected one of {', '.join(allowed)}")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Calculation(_Model):
    op: str
    column: str | None = None

    @field_validator("op", mode="before")
    @classmethod
    def _op(cls, v: Any) -> str:
        return _choice(v, CALCULATION_OPS, "op")

    @model_validator(mode="after")
    def _column(self) -> "Calculation":
        if self.op in NO_COLUMN_OPS and self.column:
            raise ValueError(f"{self.op} takes no column")
        if self.op not in NO_COLUMN_OPS and not self.column:
            raise ValueError(f"{self.op} needs a column")
        return self

    @property
    def label(self) -> str:
        return self.op if self.column is None else f"{self.op}({self.column})"


class Filter(_Model):
    column: str
    op: str
    value: Scalar | list[Scalar] | None = None

    @field_validator("op", mode="before")
    @classmethod
    def _op(cls, v: Any) -> str:
        return _choice(v, FILTER_OPS, "op")

    @model_validator(mode="after")
    def _value(self) -> "Filter":
        if self.op in VALUELESS_FILTER_OPS:
            if self.value is not None:
                raise ValueError(f"{self.op} takes no value")
        elif self.op in LIST_FILTER_OPS:
            if not isinstance(self.value, list) or not self.value:
                raise ValueError(f"{self.op} needs a non-empty list of values")
            if len(self.value) > MAX_ITEMS:
                raise ValueError(f"{self.op} takes at most {MAX_ITEMS} values")
        elif self.value is None or isinstance(self.value, list):
            raise ValueError(f"{self.op} needs a single value")
        for v in self.value if isinstance(self.value, list) else [self.value]:
            _check_number(v)
        return self


class Order(_Model):
    column: str | None = None
    op: str | None = None
    order: Literal["ascending", "descending"] = "ascending"

    @field_validator("op", mode="before")
    @classmethod
    def _op(cls, v: Any) -> str | None:
        return None if v is None else _choice(v, CALCULATION_OPS, "op")

    @model_validator(mode="after")
    def _something(self) -> "Order":
        if self.column is None and self.op is None:
            raise ValueError("an order needs a column (a breakdown) or an op (a calculation)")
        if self.op == "HEATMAP":
            raise ValueError("results cannot be ordered by a HEATMAP")
        return self


class Having(_Model):
    calculate_op: str
    column: str | None = None
    op: str
    value: int | float

    @field_validator("value")
    @classmethod
    def _finite(cls, v: int | float) -> int | float:
        return _check_number(v)

    @field_validator("calculate_op", mode="before")
    @classmethod
    def _calc(cls, v: Any) -> str:
        return _choice(v, CALCULATION_OPS, "op")

    @field_validator("op", mode="before")
    @classmethod
    def _op(cls, v: Any) -> str:
        return _choice(v, HAVING_OPS, "op")


class CalculatedField(_Model):
    name: str = Field(min_length=1, max_length=255)
    expression: str = Field(min_length=1, max_length=4096)


class QuerySpec(_Model):
    calculations: list[Calculation] = Field(default_factory=list, max_length=MAX_ITEMS)
    filters: list[Filter] = Field(default_factory=list, max_length=MAX_ITEMS)
    filter_combination: Literal["AND", "OR"] = "AND"
    breakdowns: list[str] = Field(default_factory=list, max_length=MAX_ITEMS)
    orders: list[Order] = Field(default_factory=list, max_length=MAX_ITEMS)
    havings: list[Having] = Field(default_factory=list, max_length=MAX_ITEMS)
    limit: int | None = Field(default=None, ge=1, le=MAX_LIMIT)
    time_range: int | None = Field(default=None, ge=1, le=MAX_TIME_S)
    start_time: int | None = Field(default=None, ge=0, le=MAX_TIME_S)
    end_time: int | None = Field(default=None, ge=0, le=MAX_TIME_S)
    granularity: int | None = Field(default=None, ge=1, le=MAX_TIME_S)
    calculated_fields: list[CalculatedField] = Field(default_factory=list, max_length=MAX_ITEMS)
    #: Apiary's own field (Honeycomb keeps this a graph setting): a HEATMAP's value buckets spaced evenly in the
    #: logarithm of the value, so a long tail and the fast bulk both get rows of their own.
    heatmap_scale: Literal["linear", "log"] = "linear"

    @field_validator("filter_combination", mode="before")
    @classmethod
    def _combination(cls, v: Any) -> Any:
        return v.upper() if isinstance(v, str) else v

    @model_validator(mode="after")
    def _rules(self) -> "QuerySpec":
        if self.start_time is not None and self.end_time is not None:
            if self.time_range is not None:
                raise ValueError("give time_range with start_time or with end_time, not with both")
            if self.end_time <= self.start_time:
                raise ValueError("end_time must be after start_time")
        labels = {c.label for c in self.calculations} or {"COUNT"}
        for i, o in enumerate(self.orders):
            if o.op is None:
                if o.column not in self.breakdowns:
                    raise ValueError(f"orders[{i}]: {o.column!r} is neither a breakdown nor a calculation of this query")
            elif Calculation(op=o.op, column=o.column).label not in labels:
                raise ValueError(f"orders[{i}]: {Calculation(op=o.op, column=o.column).label} is not a calculation of this query")
        for i, h in enumerate(self.havings):
            label = h.calculate_op if h.column is None else f"{h.calculate_op}({h.column})"
            if label not in labels:
                raise ValueError(f"havings[{i}]: {label} is not a calculation of this query")
            if h.calculate_op == "HEATMAP":
                raise ValueError(f"havings[{i}]: a HEATMAP cannot be compared to a value")
        names = [f.name for f in self.calculated_fields]
        if len(set(names)) != len(names):
            raise ValueError("calculated_fields: two fields have the same name")
        return self

    # -- derived --------------------------------------------------------------------------------

    def effective_calculations(self) -> list[Calculation]:
        """Honeycomb counts when no calculation is asked for."""
        return list(self.calculations) or [Calculation(op="COUNT")]

    def window(self, now: float | None = None) -> "TimeWindow":
        """The absolute window the query covers, by Honeycomb's rules."""
        if self.start_time is not None and self.end_time is not None:
            start, end = self.start_time, self.end_time
        else:
            span = self.time_range or DEFAULT_TIME_RANGE
            if self.start_time is not None:
                start, end = self.start_time, self.start_time + span
            elif self.end_time is not None:
                start, end = self.end_time - span, self.end_time
            else:
                end = int(now if now is not None else time.time()) + 1  # include this very second
                start = end - span
        # Nothing is stored before 1970 or after 2262 (``apiary.model.timestamps``): a window reaching
        # past either end is cut there, so no date outside what the stores hold reaches SQL.
        start, end = max(0, start), min(end, MAX_TIME_S)
        if end <= start:
            raise SpecError(f"the time range {start}..{end} lies outside 1970-01-01..2262-04-11, the times Apiary keeps")
        length = end - start
        lo, hi = max(1, -(-length // 1000)), max(1, length // 10)
        if self.granularity is None:
            granularity = _nice_granularity(length / DEFAULT_BUCKETS, lo, hi)
        else:
            granularity = self.granularity
            if not lo <= granularity <= hi:
                raise SpecError(f"granularity: {granularity} s is outside {lo}..{hi} s for a {length} s time range "
                                "(between time range/1000 and time range/10)")
        return TimeWindow(start, end, granularity)


_NICE = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 604800)


def _nice_granularity(ideal: float, lo: int, hi: int) -> int:
    for g in _NICE:
        if g >= ideal and lo <= g <= hi:
            return g
    return min(max(int(ideal), lo), hi)


@dataclass(frozen=True)
class TimeWindow:
    """Unix seconds; ``start`` inclusive, ``end`` exclusive."""

    start: int
    end: int
    granularity: int


def parse_spec(doc: Any) -> QuerySpec:
    """Validate a JSON document as a query spec; SpecError names the bad field."""
    if not isinstance(doc, dict):
        raise SpecError("a query spec is a JSON object")
    try:
        return QuerySpec.model_validate(doc)
    except ValidationError as exc:
        raise SpecError(describe(exc)) from None


def describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err["loc"]).lstrip(".")
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown field"
        parts.append(f"{where}: {msg}" if where else msg)
    return "; ".join(parts)
