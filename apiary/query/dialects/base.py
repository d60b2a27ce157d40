"""The query plan rendered as SQL, once: every statement shape, with hooks where the engines differ.

`SpanRender` renders expressions and the filtered rows every statement reads;
`SpanDialect` holds the statements (summary, series, heatmap, bubble-up...).
A store's dialect (``duckdb.py``, ``clickhouse.py``) subclasses `SpanRender`
and overrides only what its engine spells its own way -- quoting, parameters,
casts, the function map, percentiles, window frames, a few constructs
(exploding a text list, keeping listed groups, the examples column) -- as
sqlglot's generators do. Its `SpanDialect` subclass only names that renderer.

Every value travels as a parameter (`SpanRender.param`); identifiers come
only from the store's catalogue and are checked against its physical layout
before they are quoted. The only numbers written into SQL text are the plan's
own constants (percentile fractions, bucket counts), never a user's value.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any, Callable, ClassVar, Sequence

from apiary.model.span import CORE_NAMES, INTERNAL_NAMES
from apiary.query.dialects import Compiled
from apiary.query.dialects.related import RelatedSQL, related_column, related_joins
from apiary.query.plan import (
    BOOLEAN, FLOAT, INTEGER, NUMERIC, STRING, Aggregate, BubbleUp, Call, Column, Expr, Facet, InList, Literal,
    Related, SEPARATE_KINDS, SeriesColumns, Source, SpanQuery, weighted_percentiles,
)

#: Columns of the spans table that are neither a core field nor a promoted attribute.
INTERNAL_COLUMNS = INTERNAL_NAMES
#: Seconds since the epoch FORMAT_TIME formats: up to 2262-04-11, the last time the stores hold.
MAX_SECONDS = 9_223_372_036
#: The plan's cast functions and the type each gives.
CASTS = {"to_integer": INTEGER, "to_float": FLOAT, "to_string": STRING, "to_boolean": BOOLEAN}
_LOGIC = ("and", "or")


def epoch_us(naive_utc: datetime) -> int:
    """Microseconds since the epoch of a plan's (naive, UTC) time."""
    return int(naive_utc.replace(tzinfo=timezone.utc).timestamp() * 1_000_000)


class SpanRender(ABC):
    """One statement's rendering: its parameters, and the SQL of the plan's expressions and rows.

    The class attributes and the abstract methods are what a store's engine says its own way; everything else is
    the one rendering both stores share.
    """

    #: Physical names of promoted attribute columns (the store's catalogue allots them).
    PHYSICAL: ClassVar[re.Pattern[str]]
    #: Plan type -> the engine's SQL type.
    SQL_TYPE: ClassVar[dict[str, str]]
    #: The plan's comparison and arithmetic operators.
    BINARY: ClassVar[dict[str, str]]
    #: The plan's plain functions -> the engine's name for them.
    FUNCTIONS: ClassVar[dict[str, str]]
    #: The functions of calculated fields (``apiary.query.calculated``), from their rendered arguments.
    CALCULATED: ClassVar[dict[str, Callable[[list[str]], str]]]
    #: Functions the statements call that the engines name differently: ``nullif``, ``ifnull``, ``any``
    #: (any one value of a group), ``uniq`` (estimated distinct count), ``ln``, ``arg_min``.
    NAMES: ClassVar[dict[str, str]]
    #: Appended to a statement with GROUPING SETS (an engine may need a setting for SQL's NULLs there).
    GROUPING_SETS_SETTINGS: ClassVar[str] = ""
    #: Appended to a statement with an outer join whose missing side must read NULL.
    JOIN_SETTINGS: ClassVar[str] = ""
    #: How the engine spells the summaries of related spans (relational fields, ``apiary.query.dialects.related``).
    RELATED: ClassVar[RelatedSQL]
    #: Whether the store's ``trace_summary`` has one row per trace (merged at ingest) rather than partial rows to
    #: merge when read (``apiary.store.trace_summary``).
    SUMMARY_MERGED: ClassVar[bool] = False
    #: Whether a trace search counts its matches by a window over its rows (else by a subquery reading them again).
    COUNT_BY_WINDOW: ClassVar[bool] = True
    #: The count of a statement's rows (``bubbleup_sides``).
    COUNT: ClassVar[str] = "count(*)"

    def __init__(self) -> None:
        self.params: list[Any] = []

    # -- what each engine says its own way ------------------------------------------------------

    @abstractmethod
    def quote(self, name: str) -> str:
        """A checked column name as a quoted identifier."""

    @abstractmethod
    def param(self, value: Any) -> str:
        """A placeholder bound to ``value`` (appended to ``params``)."""

    @abstractmethod
    def float_param(self, value: float) -> str:
        """A placeholder that reads as a double."""

    @abstractmethod
    def number_param(self, value: float) -> str:
        """A placeholder for a user's number compared with a computed one (a HAVING threshold, trace milliseconds)."""

    @abstractmethod
    def limit_param(self, value: int) -> str:
        """A placeholder for a LIMIT."""

    @abstractmethod
    def literal(self, value: Any, type_: str) -> str:
        """A non-null value of the plan, typed as the plan types it."""

    @abstractmethod
    def list_param(self, values: Sequence[str]) -> str:
        """A placeholder for a list of strings, as the right side of `in_list`."""

    @abstractmethod
    def in_list(self, key: str, values: str) -> str:
        """Whether the (never null) ``key`` is in the bound list ``values`` (from `list_param`)."""

    @abstractmethod
    def cast(self, sql: str, want: str) -> str:
        """``sql`` as the plan type ``want``: NULL where it does not convert (text always converts)."""

    @abstractmethod
    def to_int64(self, sql: str) -> str:
        """A number the engine knows fits, as a 64-bit integer."""

    @abstractmethod
    def to_double(self, sql: str) -> str:
        """A number as a double."""

    @abstractmethod
    def parse_number(self, text: str, type_: str) -> str:
        """Text as a number of the plan type ``type_`` (FLOAT or INTEGER); NULL where it is not one."""

    @abstractmethod
    def weight(self, sql: str) -> str:
        """A row's sample rate, defaulted already, in the type its weighted sums expect."""

    @abstractmethod
    def json_text(self, doc: str, key: str) -> str:
        """The value of ``key`` in the JSON object column ``doc``, as text (a JSON string as the string)."""

    @abstractmethod
    def format_time(self, fmt: Expr, seconds: Expr) -> str:
        """FORMAT_TIME: ``seconds`` since the epoch in strftime's ``fmt``; NULL outside the stores' range."""

    @abstractmethod
    def micros(self, ts: str) -> str:
        """A timestamp as microseconds since the epoch."""

    @abstractmethod
    def int_div(self, a: str, b: str) -> str:
        """Integer division (floored) of ``a`` by ``b``."""

    @abstractmethod
    def checked(self, arithmetic: str) -> str:
        """Integer arithmetic that overflows (or divides by zero) to NULL where the engine would fail."""

    @abstractmethod
    def when(self, condition: str, value: str) -> str:
        """``value`` where ``condition`` holds, else NULL."""

    @abstractmethod
    def prior(self, value: str, window: str) -> str:
        """The last non-null ``value`` before the current row in ``window`` (``PARTITION BY .. ORDER BY ..``)."""

    @abstractmethod
    def distinct_from(self, a: str, b: str) -> str:
        """Null-safe inequality, as ``IS DISTINCT FROM``."""

    @abstractmethod
    def same_key(self, a: str, b: str) -> str:
        """Null-safe equality in a join's ON, as ``IS NOT DISTINCT FROM``."""

    @abstractmethod
    def agg_if(self, fn: str, args: str, condition: str) -> str:
        """The aggregate ``fn(args)`` over the rows where ``condition`` holds."""

    @abstractmethod
    def count_if(self, condition: str) -> str:
        """The rows where ``condition`` holds, counted."""

    @abstractmethod
    def quantile(self, value: str, level: float) -> str:
        """A percentile interpolated between the two closest ranks (``level`` is the plan's constant)."""

    @abstractmethod
    def integer_sum(self, value: str) -> str:
        """SUM of 64-bit integers, as a 64-bit integer."""

    @abstractmethod
    def examples(self, n: int) -> str:
        """The aggregate of up to ``n`` trace ids (``_tid``) of a group's slowest rows (by ``_dur``), slowest first."""

    @abstractmethod
    def keep_groups(self, sql: str, q: SpanQuery, groups: Sequence[tuple[Any, ...]]) -> str:
        """The rows of ``sql`` whose ``g0..gN`` are one of ``groups`` (NULL matching NULL)."""

    @abstractmethod
    def explode(self, sql: str, column: str, sep: str, alias: str) -> str:
        """Every row of ``sql`` once per piece of its text ``column`` split on ``sep``, as ``alias`` (as a FROM item;
        an engine may leave out empty pieces, which parse to NULL anyway)."""

    @abstractmethod
    def field_at(self, text: str, sep: str, index: int) -> str:
        """The ``index``-th (from 1) piece of ``text`` split on the one character ``sep``."""

    @abstractmethod
    def distinct_list(self, value: str) -> str:
        """The aggregate of the distinct non-null values as a sorted list."""

    @abstractmethod
    def distinct_union(self, lists: str) -> str:
        """The aggregate of lists: their distinct non-null values as one sorted list."""

    def distinct_union_row(self, values: str) -> str:
        """One row's list as `distinct_union` would give it (only where ``SUMMARY_MERGED``)."""
        raise NotImplementedError

    @abstractmethod
    def any_flag(self, flag: str) -> str:
        """Whether some row's flag (from `flag`) holds, as a flag."""

    def sum_where(self, value: str, condition: str) -> str:
        """SUM of ``value`` over the rows where ``condition`` holds (NULL over none)."""
        return f"sum({self.when(condition, value)})"

    def group(self, e: Expr) -> str:
        """A breakdown's values (an engine may have to say their type, to compare them with typed group keys)."""
        return self.expr(e)

    def nullable(self, sql: str, type_: str) -> str:
        """``sql`` where an engine has to be told that it may be NULL (a LEFT JOIN's column)."""
        return sql

    def not_null(self, sql: str) -> str:
        """``sql`` that cannot be NULL here, where an engine must be told so."""
        return sql

    def flag(self, condition: str) -> str:
        """A condition as a flag column: false (never NULL) where it does not hold."""
        return f"coalesce({condition}, false)"

    def as_flag(self, condition: str) -> str:
        """A condition that is never NULL as a flag column."""
        return condition

    def is_set(self, flag: str) -> str:
        """A flag column (or `any_flag`) as a condition."""
        return flag

    def tiny(self, n: int) -> str:
        """A small integer constant that both sides of a UNION read in one type."""
        return str(int(n))

    def row_number(self, order: str) -> str:
        """Each row's number from 0 (any order where the engine reads a WITH item once; ``order``, a unique key
        up to repeated rows, where it reads it again at each use and the numbers must agree)."""
        return "row_number() OVER () - 1"

    def inlined(self, name: str, sql: str) -> str:
        """A WITH item read more than once that is cheaper to compute again than to keep."""
        return f"{name} AS ({sql})"

    def reused(self, name: str, sql: str) -> str:
        """A WITH item read more than once, computed once where the engine can be told to."""
        return f"{name} AS ({sql})"

    # -- identifiers ----------------------------------------------------------------------------

    def ident(self, name: str) -> str:
        if not (name in CORE_NAMES or name in INTERNAL_COLUMNS or self.PHYSICAL.fullmatch(name)):
            raise ValueError(f"{name!r} is not a column of the spans table")
        return self.quote(name)

    # -- expressions ----------------------------------------------------------------------------

    def source(self, s: Source, want: str) -> str:
        if s.json_key is not None:
            raw, raw_type = self.json_text(self.ident(s.physical), s.json_key), STRING
        else:
            raw, raw_type = self.ident(s.physical), s.type
        if raw_type == INTEGER and want == FLOAT:
            # An integer always converts: ClickHouse's checked cast (accurateCastOrNull) of an Int64 sample rate
            # cost a weighted AVG a fifth of its time beside the hand-written toFloat64 (bench/query.py --sampled).
            return self.to_double(raw)
        return raw if raw_type == want else self.cast(raw, want)

    def expr(self, e: Expr) -> str:
        if isinstance(e, Column):
            parts = [self.source(s, e.type) for s in e.sources]
            return parts[0] if len(parts) == 1 else f"coalesce({', '.join(parts)})"
        if isinstance(e, Literal):
            return "NULL" if e.value is None else self.literal(e.value, e.type)
        if isinstance(e, InList):
            values = ", ".join(self.expr(v) for v in e.values)
            return f"({self.expr(e.expr)} {'NOT IN' if e.negate else 'IN'} ({values}))"
        if isinstance(e, Related):
            return related_column(e)
        return self.call(e)

    def call(self, e: Call) -> str:
        if e.fn == "format_time":
            fmt, seconds = e.args
            return self.format_time(fmt, seconds)
        fn, args = e.fn, [self.expr(a) for a in e.args]
        nullif = self.NAMES["nullif"]
        if fn == "mod":
            return self.checked(f"{args[0]} % {nullif}({args[1]}, 0)")
        if fn in ("add", "sub", "mul") and e.type == INTEGER:
            return self.checked(f" {self.BINARY[fn]} ".join(args))
        if fn in self.BINARY:
            return "(" + f" {self.BINARY[fn]} ".join(args) + ")"
        if fn == "div":
            return f"({args[0]} / {nullif}({args[1]}, 0))"
        if fn == "neg":
            return f"(-{args[0]})"
        if fn in self.CALCULATED:
            return self.CALCULATED[fn](args)
        if fn in _LOGIC:
            return "(" + f" {fn.upper()} ".join(args) + ")"
        if fn == "not":
            return f"(NOT {args[0]})"
        if fn == "is_null":
            return f"({args[0]} IS NULL)"
        if fn == "not_null":
            return f"({args[0]} IS NOT NULL)"
        if fn == "if":
            return f"(CASE WHEN {args[0]} THEN {args[1]} ELSE {args[2]} END)"
        if fn == "to_integer" and e.args[0].type == FLOAT:  # INT() drops the fraction, as Honeycomb's does
            return self.cast(f"trunc({args[0]})", INTEGER)
        if fn in CASTS:
            return self.cast(args[0], CASTS[fn])
        if fn == "epoch_seconds":
            return f"({self.micros(args[0])} / 1000000.0)"
        return self.function(fn, args)

    def function(self, fn: str, args: list[str]) -> str:
        """A plain function of the plan, through the engine's function map."""
        if fn in self.FUNCTIONS:
            return f"{self.FUNCTIONS[fn]}({', '.join(args)})"
        raise ValueError(f"{type(self).__name__} has no function {fn!r}")

    def series_columns(self, c: SeriesColumns) -> tuple[str, str, str, str]:
        """SQL of a metric row's series id, start time, temporality and monotonicity."""
        return self.expr(c.series), self.expr(c.start_us), self.expr(c.temporality), self.expr(c.monotonic)

    def increment(self, value: str, ts: str, q: SpanQuery, series: str, start: str, temporality: str, monotonic: str,
                  partition: Sequence[str] = ()) -> str:
        """What a metric point adds to its series: a delta point its value; a cumulative one the growth since the
        series' previous point, or its whole value after a reset (a new start time, or a value that fell) and
        when its series started inside the window. Gauges and up-down counters add nothing (NULL)."""
        window = f"PARTITION BY {', '.join([series, *partition])} ORDER BY {ts}"
        prev = self.prior(value, window)
        prev_start = self.prior(self.when(f"({value}) IS NOT NULL", start), window)
        # Histogram buckets are stored only when not empty: one first seen after an earlier point of its series
        # (same start) was empty until then, so all of it is new.
        earlier = f" OR min({ts}) OVER (PARTITION BY {series}, {start}) < {ts}" if partition else ""
        return (f"CASE WHEN ({value}) IS NULL OR NOT coalesce({monotonic}, false) THEN NULL "
                f"WHEN {temporality} = {self.param('delta')} THEN {value} "
                f"WHEN {temporality} {self.BINARY['ne']} {self.param('cumulative')} THEN NULL "
                f"WHEN {prev} IS NULL THEN {self.when(f'{start} >= {self.param(epoch_us(q.start))}{earlier}', value)} "
                f"WHEN {self.distinct_from(start, prev_start)} OR ({value}) < {prev} THEN {value} "
                f"ELSE ({value}) - {prev} END")

    # -- the filtered rows ----------------------------------------------------------------------

    def base(self, q: SpanQuery, *, args: bool = True, groups: Sequence[tuple[Any, ...]] | None = None,
             extra: Sequence[tuple[str, str]] = (), conditions: Sequence[Expr] = ()) -> str:
        """The filtered rows, with ``_bucket``, ``g*``, ``v*`` (aggregate arguments), ``_tid``, ``_dur``."""
        ts = self.expr(q.timestamp)
        bucket = self.int_div(f"{self.micros(ts)} - {self.param(epoch_us(q.start))}",
                              self.param(q.granularity_s * 1_000_000))
        cols = [f"{bucket} AS _bucket"]
        cols += [f"{self.group(g.expr)} AS g{i}" for i, g in enumerate(q.groups)]
        if args:
            for j, a in enumerate(q.aggregates):
                if a.arg is None:
                    continue
                value = self.expr(a.arg)
                if a.counter is not None:
                    value = self.increment(value, ts, q, *self.series_columns(a.counter))
                elif a.kind.startswith("rate_"):
                    part = ", ".join(self.expr(g.expr) for g in q.groups)
                    window = f"{'PARTITION BY ' + part + ' ' if part else ''}ORDER BY {ts}"
                    # Between consecutive rows that have a value: rows without one do not break the sequence.
                    when = self.when(f"({value}) IS NOT NULL", self.micros(ts))
                    value = (f"(({value}) - {self.prior(value, window)}) / "
                             f"{self.NAMES['nullif']}((({when}) - {self.prior(when, window)}) / 1000000.0, 0)")
                cols.append(f"{value} AS v{j}")
        cols += [f"{self.expr(q.trace_id)} AS _tid", f"{self.expr(q.duration)} AS _dur"]
        if q.sample_rate is not None:
            cols.append(f"{self.weight(f'coalesce({self.expr(q.sample_rate)}, 1.0)')} AS _w")
        cols += [f"{sql} AS {name}" for name, sql in extra]
        where = [f"_env = {self.param(q.env)}", f"{ts} >= {self.param(q.start)}", f"{ts} < {self.param(q.end)}"]
        if q.datasets is not None:
            where.append(f"_dataset IN ({', '.join(self.param(d) for d in q.datasets)})")
        if q.where is not None:
            where.append(self.expr(q.where))
        where += [self.expr(c) for c in conditions]
        sql = f"SELECT {', '.join(cols)} FROM spans{related_joins(self, q, self.RELATED)} WHERE {' AND '.join(where)}"
        if groups is not None and q.groups:
            sql = self.keep_groups(sql, q, groups)
        return sql

    # -- aggregates -----------------------------------------------------------------------------

    def weighted_percentiles(self, q: SpanQuery, make_base: Callable[[], str], keys: Sequence[str], aggregated: str,
                             columns: Sequence[str]) -> str | None:
        """``aggregated`` (one row per ``keys``, its columns ``columns``, ``_rows`` among them) with each weighted
        percentile joined on per group as ``c{j}``; None when the query has none.

        A percentile ranks the distinct values of its group by their summed sample rates (the running sum, ``_c``,
        against the total, ``_t``). Ranking distinct values rather than rows took a weighted P99 over 1 M sampled
        spans from 2.6 s to 1.3 s (``bench/query.py --sampled``, a loaded machine). It is joined on to the groups
        once they are aggregated, not to every row before: ClickHouse ran that join over the whole scan (weighted
        P99 1.4-1.5 x the hand-written SQL, which joins the two results, at 2 M spans). A group with no value to
        rank, and no rows at all, has no percentile (NULL)."""
        if q.sample_rate is None or not any(a.kind == "quantile" for a in q.aggregates):
            return None
        joins, picked = "", [f"_a.{c} AS {c}" for c in columns]
        for j, a in enumerate(q.aggregates):
            if a.kind != "quantile":
                continue
            part = f"PARTITION BY {', '.join(keys)} " if keys else ""
            lead = "".join(f"{k}, " for k in keys)
            ranked = (f"SELECT {lead}v{j} AS _v, sum(sum(_w)) OVER ({part}ORDER BY v{j} ROWS BETWEEN UNBOUNDED PRECEDING "
                      f"AND CURRENT ROW) AS _c, sum(sum(_w)) OVER ({part.strip()}) AS _t FROM ({make_base()}) "
                      f"WHERE v{j} IS NOT NULL GROUP BY {lead}v{j}")
            level = float(a.q)  # a constant of the plan, never user input
            h = f"((max(_t) - 1) * {level!r})"
            at = (lambda rank: self.agg_if("min", "_v", f"_c > {rank}(greatest(_t - 1, 0) * {level!r})"))
            value = self.nullable(f"({at('floor')} + ({at('ceil')} - {at('floor')}) * ({h} - floor({h})))", FLOAT)
            pick = f"SELECT {''.join(f'{k} AS _p{j}_{k}, ' for k in keys)}{value} AS _q{j} FROM ({ranked})"
            if keys:
                on = " AND ".join(self.same_key(f"_a.{k}", f"_p{j}._p{j}_{k}") for k in keys)
                joins += f" LEFT JOIN ({pick} GROUP BY {', '.join(keys)}) AS _p{j} ON {on}"
                picked.append(f"_p{j}._q{j} AS c{j}")
            else:  # one row, even over no rows: then the aggregate over no rows has none
                joins += f" CROSS JOIN ({pick}) AS _p{j}"
                picked.append(f"CASE WHEN _a._rows > 0 THEN _p{j}._q{j} END AS c{j}")
        return f"SELECT {', '.join(picked)} FROM ({aggregated}) AS _a{joins}"

    def weighted(self, j: int, a: Aggregate) -> str | None:
        """Honeycomb's weighting by sample rate (``_w``): each row stands for ``_w`` events. A percentile is the one
        of the rows repeated ``_w`` times, interpolated between the two closest ranks, is joined on after the
        aggregates (`weighted_percentiles`)."""
        v = f"v{j}"
        if a.kind == "count":
            return self.cast("round(coalesce(sum(_w), 0))", INTEGER)
        if a.kind == "sum":
            return self.cast(f"round(sum({v} * _w))", INTEGER) if a.type == INTEGER else f"sum({v} * _w)"
        if a.kind == "avg":
            return f"(sum({v} * _w) / {self.NAMES['nullif']}({self.sum_where('_w', f'{v} IS NOT NULL')}, 0))"
        return None

    def aggregate(self, j: int, a: Aggregate, weighted: bool = False) -> str:
        v = f"v{j}"
        if weighted and (sql := self.weighted(j, a)) is not None:
            return sql
        if a.kind == "count":
            return "count(*)"
        if a.kind == "count_distinct":
            return f"{self.NAMES['uniq']}({v})"
        if a.kind == "sum" and a.type == INTEGER:
            return self.integer_sum(v)
        if a.kind in ("sum", "avg", "min", "max"):
            return f"{a.kind}({v})"
        if a.kind == "quantile":
            return self.quantile(v, float(a.q))  # a constant of the plan, never user input
        if a.kind in ("rate_avg", "rate_sum", "rate_max"):
            return f"{a.kind[5:]}({v})"
        raise ValueError(f"{a.kind} is not a summary aggregate")

    def aggregates(self, q: SpanQuery, per_s: Callable[[], str] | None = None) -> list[str]:
        """``per_s`` renders the seconds a RATE divides by (the window's in a summary, the bucket's in a series)."""
        out = []
        for j, a in enumerate(q.aggregates):
            if a.kind in SEPARATE_KINDS or (a.kind == "quantile" and q.sample_rate is not None):
                continue  # a weighted percentile is joined on afterwards (`weighted_percentiles`)
            if a.kind == "increase":
                out.append(f"sum(v{j}) AS c{j}")
            elif a.kind == "rate":
                seconds = per_s() if per_s else self.float_param((q.end - q.start).total_seconds())
                out.append(f"sum(v{j}) / {seconds} AS c{j}")
            else:
                out.append(f"{self.aggregate(j, a, q.sample_rate is not None)} AS c{j}")
        return out

    def bucket_of(self, value: str, lo: float, width: float, buckets: int) -> str:
        """The bucket (``0 .. buckets - 1`` from ``lo`` up) of ``value``; below ``lo`` in the first when ``floor``."""
        return (f"least({self.to_int64(f'floor(({value} - {self.param(float(lo))}) / {self.param(float(width))})')}, "
                f"{int(buckets) - 1})")


class SpanDialect:
    """The statements of `apiary.query.dialects.Dialect`, each rendered by a fresh ``render`` (one per statement:
    it holds that statement's parameters)."""

    name: ClassVar[str]
    render: ClassVar[type[SpanRender]]

    def summary(self, q: SpanQuery) -> Compiled:
        r = self.render()
        groups = [f"g{i}" for i in range(len(q.groups))]
        cols = groups + r.aggregates(q) + ["count(*) AS _rows", f"{r.examples(q.examples)} AS _examples"]
        sql = f"SELECT {', '.join(cols)} FROM ({r.base(q)}) AS _b"
        if groups:
            sql += f" GROUP BY {', '.join(groups)}"
        having = [f"c{h.aggregate} {r.BINARY[h.op]} {r.number_param(h.value)}" for h in q.having]
        names = [c.rsplit(" AS ", 1)[-1] for c in cols]
        joined = r.weighted_percentiles(q, lambda: r.base(q), groups, sql, names)
        if joined is not None:
            sql = f"SELECT * FROM ({joined}) AS _s" + (" WHERE " + " AND ".join(having) if having else "")
        elif having:
            sql += " HAVING " + " AND ".join(having)
        order = [f"{'g' if o.target == 'group' else 'c'}{o.index} {'DESC' if o.descending else 'ASC'} NULLS LAST"
                 for o in q.order]
        if not any(o.target == "aggregate" for o in q.order):
            order.append("_rows DESC")
        order += [f"g{i} ASC NULLS LAST" for i in range(len(q.groups))
                  if not any(o.target == "group" and o.index == i for o in q.order)]
        sql += f" ORDER BY {', '.join(order)} LIMIT {r.limit_param(q.limit)}"
        return Compiled(sql, r.params)

    def series(self, q: SpanQuery, groups: Sequence[tuple[Any, ...]] | None) -> Compiled:
        r = self.render()
        keys = ["_bucket"] + [f"g{i}" for i in range(len(q.groups))]
        aggs = r.aggregates(q, lambda: r.float_param(q.granularity_s))
        sql = (f"SELECT {', '.join(keys + aggs)}, count(*) AS _rows FROM ({r.base(q, groups=groups)}) AS _b "
               f"GROUP BY {', '.join(keys)}")
        names = keys + [c.rsplit(" AS ", 1)[-1] for c in aggs] + ["_rows"]
        joined = r.weighted_percentiles(q, lambda: r.base(q, groups=groups), keys, sql, names)
        return Compiled(joined or sql, r.params)

    def totals_and_series(self, q: SpanQuery) -> Compiled:
        assert not q.groups and not q.having and not weighted_percentiles(q)
        r = self.render()
        base = r.base(q)

        def per_s() -> str:  # a RATE's seconds: the window's on the totals row, the bucket's on the others
            window = r.float_param((q.end - q.start).total_seconds())
            return f"(CASE WHEN grouping(_bucket) = 1 THEN {window} ELSE {r.float_param(q.granularity_s)} END)"

        cols = ["_bucket", "grouping(_bucket) AS _total"] + r.aggregates(q, per_s) + [
            "count(*) AS _rows", f"{r.examples(q.examples)} AS _examples"]
        return Compiled(f"SELECT {', '.join(cols)} FROM ({base}) GROUP BY GROUPING SETS ((_bucket), ())"
                        f"{r.GROUPING_SETS_SETTINGS}", r.params)

    def bounds(self, q: SpanQuery, aggregate: int, groups: Sequence[tuple[Any, ...]] | None) -> Compiled:
        r = self.render()
        base = r.base(q, groups=groups)
        return Compiled(f"SELECT min(v{aggregate}) AS lo, max(v{aggregate}) AS hi FROM ({base})", r.params)

    def heatmap(self, q: SpanQuery, aggregate: int, groups: Sequence[tuple[Any, ...]] | None,
                lo: float, width: float, log_floor: float | None = None) -> Compiled:
        """Cells of ``width`` from ``lo``; with ``log_floor``, of the value's logarithm (values below the floor in the first)."""
        r = self.render()
        base = r.base(q, groups=groups)
        keys = ["_bucket"] + [f"g{i}" for i in range(len(q.groups))]
        v = (f"v{aggregate}" if log_floor is None
             else f"{r.NAMES['ln']}(greatest(v{aggregate}, {r.param(float(log_floor))}))")
        cell = f"{r.bucket_of(v, lo, width, q.heatmap_buckets)} AS _cell"
        n = r.cast("round(sum(_w))", INTEGER) if q.sample_rate is not None else "count(*)"
        sql = (f"SELECT {', '.join(keys)}, {cell}, {n} AS n, {r.NAMES['any']}(_tid) AS _example FROM ({base}) "
               f"WHERE v{aggregate} IS NOT NULL GROUP BY {', '.join(keys)}, _cell")
        return Compiled(sql, r.params)

    def histogram_buckets(self, q: SpanQuery, aggregate: int, groups: Sequence[tuple[Any, ...]] | None) -> Compiled:
        r = self.render()
        a = q.aggregates[aggregate]
        assert a.buckets is not None and a.counter is not None
        series, start, temporality, monotonic = r.series_columns(a.counter)
        base = r.base(q, args=False, groups=groups, conditions=[Call("not_null", (a.buckets,), BOOLEAN)], extra=[
            ("_ts", r.expr(q.timestamp)), ("_b", r.expr(a.buckets)), ("_series", series), ("_start", start),
            ("_temp", temporality), ("_mono", monotonic)])
        keys = ", ".join(["_bucket"] + [f"g{i}" for i in range(len(q.groups))])
        # One row per bucket of each point (the text column holds ``lower,upper,count;...``), then each bucket's
        # increase within its series, as INCREASE computes it for a counter.
        fields = [(FLOAT, "_lo"), (FLOAT, "_hi"), (INTEGER, "_c")]
        parsed = (f"SELECT {keys}, _ts, _series, _start, _temp, _mono, "
                  + ", ".join(f"{r.parse_number(r.field_at('_e', ',', i + 1), t)} AS {name}"
                              for i, (t, name) in enumerate(fields))
                  + f" FROM {r.explode(base, '_b', ';', '_e')}")
        n = r.increment("_c", "_ts", q, "_series", "_start", "_temp", "_mono", ["_lo", "_hi"])
        sql = (f"SELECT {keys}, _lo, _hi, {r.to_double('sum(_n)')} AS n FROM (SELECT {keys}, _lo, _hi, {n} AS _n "
               f"FROM ({parsed})) WHERE _n IS NOT NULL GROUP BY {keys}, _lo, _hi")
        return Compiled(sql, r.params)

    def concurrency(self, q: SpanQuery, groups: Sequence[tuple[Any, ...]] | None) -> Compiled:
        r = self.render()
        ts = r.micros(r.expr(q.timestamp))
        base = r.base(q, args=False, groups=groups, extra=[
            ("_s", ts), ("_e", f"{ts} + {r.to_int64(f'coalesce({r.expr(q.duration)}, 0) * 1000')}")])
        g = [f"g{i}" for i in range(len(q.groups))]
        gsel = "".join(f"{x}, " for x in g)
        part = f"PARTITION BY {', '.join(g)} " if g else ""
        start_us = r.param(epoch_us(q.start))
        sql = (f"WITH b AS ({base}), "
               f"ev AS (SELECT {gsel}_s AS t, {r.tiny(1)} AS d FROM b UNION ALL SELECT {gsel}_e AS t, {r.tiny(-1)} AS d "
               f"FROM b), "
               f"run AS (SELECT {gsel}t, sum(d) OVER ({part}ORDER BY t, d ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS c "
               f"FROM ev) "
               f"SELECT {r.int_div(f't - {start_us}', r.param(q.granularity_s * 1_000_000))} AS _bucket, {gsel}max(c) AS v "
               f"FROM run WHERE t >= {start_us} AND t < {r.param(epoch_us(q.end))} GROUP BY _bucket{''.join(', ' + x for x in g)}")
        return Compiled(sql, r.params)

    def bubbleup_sides(self, b: BubbleUp) -> Compiled:
        """Two plain counts, not one GROUP BY on the selection flag: the selected rows are read from their own time
        range, and the whole's count and time range need the timestamp alone (73 against 557 ms at 10 M spans)."""
        r = self.render()
        ts = [("_ts", r.expr(b.rows.timestamp))]
        chosen = b.selection if b.rows.where is None else Call("and", (b.rows.where, b.selection), BOOLEAN)
        selected = r.base(replace(b.rows, where=chosen), args=False, extra=ts)
        rows = r.base(b.rows, args=False, extra=ts)
        return Compiled(f"SELECT (SELECT {r.COUNT} FROM ({selected})) AS n_sel, {r.COUNT} AS n, min(_ts) AS t0, "
                        f"max(_ts) AS t1 FROM ({rows})", r.params)

    def bubbleup_profile(self, b: BubbleUp) -> Compiled:
        r = self.render()
        base = _bubbleup_rows(r, b, [Facet(c) for c in b.columns])
        cols = ["_sel", "count(*) AS n"]
        for i, c in enumerate(b.columns):
            cols += [f"count(k{i}) AS s{i}", f"{r.NAMES['uniq']}(k{i}) AS d{i}"]
            if c.type in NUMERIC:
                cols += [f"min(k{i}) AS lo{i}", f"max(k{i}) AS hi{i}"]
        return Compiled(f"SELECT {', '.join(cols)} FROM ({base}) GROUP BY _sel", r.params)

    def bubbleup_counts(self, b: BubbleUp, facets: Sequence[Facet]) -> Compiled:
        r = self.render()
        base = _bubbleup_rows(r, b, facets)
        keys = [f"k{i}" for i in range(len(facets))]
        cols = ["_sel", *keys, *(f"grouping({k}) AS g{i}" for i, k in enumerate(keys)), "count(*) AS n"]
        sets = ", ".join(f"(_sel, {k})" for k in keys)
        return Compiled(f"SELECT {', '.join(cols)} FROM ({base}) GROUP BY GROUPING SETS ({sets})"
                        f"{r.GROUPING_SETS_SETTINGS}", r.params)

    def bubbleup_keys(self, b: BubbleUp, facets: Sequence[Facet]) -> Compiled:
        r = self.render()
        base = _bubbleup_rows(r, b, facets)
        return Compiled(f"SELECT _sel, {', '.join(f'k{i}' for i in range(len(facets)))} FROM ({base})", r.params)


def _bubbleup_rows(r: SpanRender, b: BubbleUp, facets: Sequence[Facet]) -> str:
    """The rows compared: ``_sel`` (NULL counts as outside the selection) and each facet's key (its value or its
    histogram bucket); with ``b.baseline_slices``, every selected row and the baseline's in those slices of time."""
    keys = [("_ts", r.expr(b.rows.timestamp))]
    for i, f in enumerate(facets):
        value = r.expr(f.column)
        if f.bins:
            value = f"greatest({r.bucket_of(value, f.lo, f.width, f.bins)}, 0)"
        elif f.presence:
            value = f"(CASE WHEN {value} IS NOT NULL THEN true END)"
        keys.append((f"k{i}", value))
    if not b.baseline_slices:
        return r.base(b.rows, args=False, extra=[("_sel", f"coalesce({r.expr(b.selection)}, false)"), *keys])
    unselected = Call("not", (Call("coalesce", (b.selection, Literal(False, BOOLEAN)), BOOLEAN),), BOOLEAN)
    chosen, rest = ((part if b.rows.where is None else Call("and", (b.rows.where, part), BOOLEAN))
                    for part in (b.selection, unselected))
    parts = [r.base(replace(b.rows, where=chosen), args=False, extra=[("_sel", "true"), *keys])]
    parts += [r.base(replace(b.rows, start=start, end=end, where=rest), args=False, extra=[("_sel", "false"), *keys])
              for start, end in b.baseline_slices]
    return " UNION ALL ".join(parts)
