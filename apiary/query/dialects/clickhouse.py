"""The query plan rendered as ClickHouse SQL, answering as the DuckDB dialect does.

Every value travels as a typed server-side parameter (``{p1:String}``, bound
by ``ClickHouseStore.query``); identifiers come only from the store's
catalogue and are checked against the physical layout before they are
quoted. The only numbers in SQL text are the plan's own constants
(percentile fractions, bucket counts).

Where the engines differ, this side bends to DuckDB's answers:

* percentiles: ``quantileExactInclusive`` -- linear interpolation between the
  two closest ranks, the same definition as DuckDB's ``quantile_cont`` (and
  numpy's default), so both stores give the same number; exact, at the cost of
  holding a group's values in memory while it is computed.
* COUNT_DISTINCT: ``uniq`` (exact up to 65 536 distinct values, then an
  adaptive sample, error well under 1 %), where DuckDB uses HyperLogLog.
* ``concat``, ``least`` and ``greatest`` skip NULLs, as DuckDB's do.
* an overflowed key (inside ``_attrs``) reads as text: a JSON string as the
  string, any other JSON value as its JSON text, missing as NULL.
* rates: the previous non-null value comes from ``anyLast`` over the
  preceding rows (ClickHouse's ``lag`` cannot skip NULLs).
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any, Callable, Sequence

from apiary.model.span import CORE_NAMES
from apiary.query.dialects import Compiled
from apiary.query.plan import (
    BOOLEAN, FLOAT, INTEGER, NUMERIC, STRING, TIMESTAMP, Aggregate, BubbleUp, Call, Column, Expr, Facet, InList, Literal,
    SEPARATE_KINDS, SeriesColumns,
    Source, SpanQuery, weighted_percentiles,
)

TS = "DateTime64(6, 'UTC')"
_SQL_TYPE = {STRING: "String", INTEGER: "Int64", FLOAT: "Float64", BOOLEAN: "Bool", TIMESTAMP: TS}
_PHYSICAL = re.compile(r"a_[0-9a-f]{12}")
_INTERNAL = {"_dataset", "_attrs"}
_BINARY = {"eq": "=", "ne": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">=", "add": "+", "sub": "-", "mul": "*",
           "mod": "%"}
_FUNCTIONS = {"starts_with": "startsWith", "ends_with": "endsWith", "lower": "lowerUTF8", "upper": "upperUTF8",
              "length": "lengthUTF8", "coalesce": "coalesce"}
#: Functions of calculated fields (``apiary.query.calculated``), answering as the DuckDB dialect's do.
_CALCULATED: dict[str, Callable[[list[str]], str]] = {
    "abs": lambda a: f"abs({a[0]})",
    "ceil": lambda a: f"ceil({a[0]})",
    "floor": lambda a: f"floor({a[0]})",
    "pow": lambda a: f"pow({a[0]}, {a[1]})",
    "log10": lambda a: f"log10(if({a[0]} > 0, {a[0]}, NULL))",
    "null_if_empty": lambda a: f"nullIf({a[0]}, '')",
    "byte_length": lambda a: f"length({a[0]})",
    "substring": lambda a: (f"substringUTF8({a[0]}, least(greatest({a[1]}, 0), 2147483647) + 1"
                            + (f", least(greatest({a[2]}, 0), 2147483647))" if len(a) > 2 else ")")),
    "regex_match": lambda a: f"match({a[0]}, {a[1]})",
    "regex_value": lambda a: f"extract({a[0]}, {a[1]})",
    "regex_group": lambda a: f"extract({a[0]}, {a[1]})",  # extract gives the first group when the pattern has one
    "regex_count": lambda a: f"countMatches({a[0]}, {a[1]})",
    "parse_time": lambda a: f"(toUnixTimestamp64Micro(parseDateTime64BestEffortOrNull({a[0]}, 6, 'UTC')) / 1000000.0)",
}
#: strftime directive -> formatDateTime's (the others are spelled alike).
_TIME_DIRECTIVES = {"M": "i", "A": "W"}
_MAX_SECONDS = 9_223_372_036
_CASTS = {"to_integer": INTEGER, "to_float": FLOAT, "to_string": STRING, "to_boolean": BOOLEAN}


def ident(name: str) -> str:
    if not (name in CORE_NAMES or name in _INTERNAL or _PHYSICAL.fullmatch(name)):
        raise ValueError(f"{name!r} is not a column of the spans table")
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def param_type(value: Any) -> str:
    """The ClickHouse type a scalar parameter is bound as (``{pN:Type}``)."""
    if isinstance(value, bool):
        return "Bool"
    if isinstance(value, int):
        return "Int64"
    if isinstance(value, float):
        return "Float64"
    if isinstance(value, datetime):
        return TS
    return "String"


class _Render:
    def __init__(self) -> None:
        self.params: list[Any] = []

    def param(self, value: Any, sql_type: str | None = None) -> str:
        if isinstance(value, datetime) and value.tzinfo is not None:
            value = value.astimezone(timezone.utc).replace(tzinfo=None)
        self.params.append(value)
        return f"{{p{len(self.params)}:{sql_type or param_type(value)}}}"

    def float_param(self, value: float) -> str:
        return self.param(float(value), "Float64")

    def series_columns(self, c: SeriesColumns) -> tuple[str, str, str, str]:
        """SQL of a metric row's series id, start time, temporality and monotonicity."""
        return self.expr(c.series), self.expr(c.start_us), self.expr(c.temporality), self.expr(c.monotonic)

    def increment(self, value: str, ts: str, q: SpanQuery, series: str, start: str, temporality: str, monotonic: str,
                  partition: Sequence[str] = ()) -> str:
        """As the DuckDB dialect's: what a metric point adds to its series, resets counted from zero."""
        window = (f"OVER (PARTITION BY {', '.join([series, *partition])} ORDER BY {ts} "
                  f"ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)")
        prev = f"anyLast({value}) {window}"
        prev_start = f"anyLast(if(({value}) IS NOT NULL, {start}, NULL)) {window}"
        # Histogram buckets are stored only when not empty: one first seen after an earlier point of its series
        # (same start) was empty until then, so all of it is new.
        earlier = f" OR min({ts}) OVER (PARTITION BY {series}, {start}) < {ts}" if partition else ""
        return (f"CASE WHEN ({value}) IS NULL OR NOT coalesce({monotonic}, false) THEN NULL "
                f"WHEN {temporality} = {self.param('delta', 'String')} THEN {value} "
                f"WHEN {temporality} != {self.param('cumulative', 'String')} THEN NULL "
                f"WHEN {prev} IS NULL THEN if({start} >= {self.param(_epoch_us(q.start), 'Int64')}{earlier}, {value}, NULL) "
                f"WHEN NOT ({start} <=> {prev_start}) OR ({value}) < {prev} THEN {value} "
                f"ELSE ({value}) - {prev} END")

    # -- expressions ----------------------------------------------------------------------------

    def source(self, s: Source, want: str) -> str:
        if s.json_key is not None:
            doc, key = ident(s.physical), self.param(s.json_key, "String")
            raw = (f"if(JSONHas(ifNull({doc}, '{{}}'), {key}), if(JSONType(ifNull({doc}, '{{}}'), {key}) = 'String', "
                   f"JSONExtractString(ifNull({doc}, '{{}}'), {key}), JSONExtractRaw(ifNull({doc}, '{{}}'), {key})), NULL)")
            raw_type = STRING
        else:
            raw, raw_type = ident(s.physical), s.type
        if raw_type == want:
            return raw
        return self.cast(raw, want)

    @staticmethod
    def cast(sql: str, want: str) -> str:
        if want == STRING:
            return f"CAST({sql} AS Nullable(String))"
        return f"accurateCastOrNull({sql}, '{_SQL_TYPE[want]}')"

    def expr(self, e: Expr) -> str:
        if isinstance(e, Column):
            parts = [self.source(s, e.type) for s in e.sources]
            return parts[0] if len(parts) == 1 else f"coalesce({', '.join(parts)})"
        if isinstance(e, Literal):
            if e.value is None:
                return "NULL"
            return self.param(e.value, _SQL_TYPE[e.type])
        if isinstance(e, InList):
            values = ", ".join(self.expr(v) for v in e.values)
            return f"({self.expr(e.expr)} {'NOT IN' if e.negate else 'IN'} ({values}))"
        return self.call(e)

    def call(self, e: Call) -> str:
        if e.fn == "format_time":  # strftime directives, spelled as formatDateTime spells them
            fmt, seconds = e.args
            assert isinstance(fmt, Literal) and isinstance(fmt.value, str)
            spelled = self.param(re.sub(r"%(.)", lambda m: "%" + _TIME_DIRECTIVES.get(m[1], m[1]), fmt.value), "String")
            t = self.expr(seconds)
            return (f"if({t} >= 0 AND {t} < {_MAX_SECONDS}, "
                    f"formatDateTime(toDateTime64(assumeNotNull({t}), 6, 'UTC'), {spelled}, 'UTC'), NULL)")
        fn, args = e.fn, [self.expr(a) for a in e.args]
        if fn == "mod":
            return f"({args[0]} % nullIf({args[1]}, 0))"
        if fn in _CALCULATED:
            return _CALCULATED[fn](args)
        if fn in _BINARY:
            return "(" + f" {_BINARY[fn]} ".join(args) + ")"
        if fn == "div":
            return f"({args[0]} / nullIf({args[1]}, 0))"
        if fn == "neg":
            return f"(-{args[0]})"
        if fn in ("and", "or"):
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
        if fn in _CASTS:
            return self.cast(args[0], _CASTS[fn])
        if fn == "epoch_seconds":
            return f"(toUnixTimestamp64Micro({args[0]}) / 1000000.0)"
        if fn == "contains":
            return f"(position({args[0]}, {args[1]}) > 0)"
        if fn == "concat":
            return "concat(" + ", ".join(f"ifNull(CAST({a} AS Nullable(String)), '')" for a in args) + ")"
        if fn in ("least", "greatest"):
            # DuckDB's skip NULLs: the extreme of the non-null arguments, NULL only when all are.
            return f"arrayReduce('{'min' if fn == 'least' else 'max'}', [{', '.join(args)}])"
        if fn in _FUNCTIONS:
            return f"{_FUNCTIONS[fn]}({', '.join(args)})"
        raise ValueError(f"ClickHouse dialect has no function {fn!r}")

    # -- the filtered rows ----------------------------------------------------------------------

    def micros(self, ts: str) -> str:
        return f"toUnixTimestamp64Micro({ts})"

    def base(self, q: SpanQuery, *, args: bool = True, groups: Sequence[tuple[Any, ...]] | None = None,
             extra: Sequence[tuple[str, str]] = (), conditions: Sequence[Expr] = ()) -> str:
        """The filtered rows, with ``_bucket``, ``g*``, ``v*`` (aggregate arguments), ``_tid``, ``_dur``."""
        ts = self.expr(q.timestamp)
        cols = [f"intDiv({self.micros(ts)} - {self.param(_epoch_us(q.start))}, {self.param(q.granularity_s * 1_000_000)}) AS _bucket"]
        cols += [f"{'_root.r' + str(i) if g.relation else self.group(g.expr)} AS g{i}" for i, g in enumerate(q.groups)]
        if args:
            for j, a in enumerate(q.aggregates):
                if a.arg is None:
                    continue
                value = self.expr(a.arg)
                if a.counter is not None:
                    value = self.increment(value, ts, q, *self.series_columns(a.counter))
                elif a.kind.startswith("rate_"):
                    part = ", ".join(self.expr(g.expr) for g in q.groups)
                    window = (f"OVER ({'PARTITION BY ' + part + ' ' if part else ''}ORDER BY {ts} "
                              f"ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)")
                    # Between consecutive rows that have a value: rows without one do not break the sequence.
                    when = f"if(({value}) IS NOT NULL, {self.micros(ts)}, NULL)"
                    value = (f"(({value}) - anyLast({value}) {window}) / "
                             f"nullIf((({when}) - anyLast({when}) {window}) / 1000000.0, 0)")
                cols.append(f"{value} AS v{j}")
        cols += [f"{self.expr(q.trace_id)} AS _tid", f"{self.expr(q.duration)} AS _dur"]
        if q.sample_rate is not None:
            cols.append(f"toFloat64(coalesce({self.expr(q.sample_rate)}, 1.0)) AS _w")
        cols += [f"{sql} AS {name}" for name, sql in extra]
        where = [f"_env = {self.param(q.env, 'String')}", f"{ts} >= {self.param(q.start, TS)}", f"{ts} < {self.param(q.end, TS)}"]
        if q.datasets is not None:
            where.append(f"_dataset IN ({', '.join(self.param(d, 'String') for d in q.datasets)})")
        if q.where is not None:
            where.append(self.expr(q.where))
        where += [self.expr(c) for c in conditions]
        if q.related_traces is not None:  # relational fields: the trace search's own SQL picks the traces
            from apiary.query.dialects.clickhouse_traces import matching_trace_ids

            where.append(f"{self.expr(q.trace_id)} IN ({matching_trace_ids(self, q.related_traces)})")
        sql = f"SELECT {', '.join(cols)} FROM spans{self.roots(q)} WHERE {' AND '.join(where)}"
        if groups is not None and q.groups:
            # Null-safe membership: has() compares NULL equal to NULL, as DuckDB's IS NOT DISTINCT FROM does.
            types = ", ".join(f"Nullable({_SQL_TYPE[g.expr.type]})" for g in q.groups)
            keys = self.param([tuple(row) for row in groups], f"Array(Tuple({types}))")
            sql = f"SELECT * FROM ({sql}) WHERE has({keys}, tuple({', '.join(f'g{i}' for i in range(len(q.groups)))}))"
        return sql

    def weighted_ranks(self, q: SpanQuery, make_base: Callable[[], str], keys: Sequence[str]) -> str:
        """As the DuckDB dialect's: the rows, and each weighted percentile per group as ``_q{j}``."""
        source = f"({make_base()}) AS _b"
        for j, a in enumerate(q.aggregates):
            if q.sample_rate is None or a.kind != "quantile":
                continue
            part = f"PARTITION BY {', '.join(keys)} " if keys else ""
            lead = "".join(f"{k}, " for k in keys)
            ranked = (f"SELECT {lead}v{j} AS _v, sum(sum(_w)) OVER ({part}ORDER BY v{j} ROWS BETWEEN UNBOUNDED PRECEDING "
                      f"AND CURRENT ROW) AS _c, sum(sum(_w)) OVER ({part.strip()}) AS _t FROM ({make_base()}) "
                      f"WHERE v{j} IS NOT NULL GROUP BY {lead}v{j}")
            level = float(a.q)  # a constant of the plan, never user input
            h = f"((max(_t) - 1) * {level!r})"
            at = (lambda rank: f"minIf(_v, _c > {rank}(greatest(_t - 1, 0) * {level!r}))")
            value = f"CAST(({at('floor')} + ({at('ceil')} - {at('floor')}) * ({h} - floor({h}))) AS Nullable(Float64)) AS _q{j}"
            pick = f"SELECT {''.join(f'{k} AS _p{j}_{k}, ' for k in keys)}{value} FROM ({ranked})"
            if keys:
                on = " AND ".join(f"isNotDistinctFrom(_b.{k}, _p{j}._p{j}_{k})" for k in keys)
                source += f" LEFT JOIN ({pick} GROUP BY {', '.join(keys)}) AS _p{j} ON {on}"
            else:  # one row, even over no rows
                source += f" CROSS JOIN ({pick}) AS _p{j}"
        return source

    def weighted(self, j: int, a: Aggregate) -> str | None:
        """As the DuckDB dialect's: each row stands for ``_w`` events."""
        v = f"v{j}"
        if a.kind == "count":
            return "accurateCastOrNull(round(sum(_w)), 'Int64')"
        if a.kind == "sum":
            return f"accurateCastOrNull(round(sum({v} * _w)), 'Int64')" if a.type == INTEGER else f"sum({v} * _w)"
        if a.kind == "avg":
            return f"(sum({v} * _w) / nullIf(sumIf(_w, {v} IS NOT NULL), 0))"
        if a.kind == "quantile":  # worked out per group by ``weighted_ranks``
            return f"any(_q{j})"
        return None

    def roots(self, q: SpanQuery) -> str:
        """As the DuckDB dialect's: each trace's root span in the window, joined by trace id (a trace without one
        reads NULL: the picked columns are Nullable, which a LEFT JOIN fills with NULL)."""
        picked = [f"CAST(any({self.expr(g.expr)}) AS Nullable({_SQL_TYPE[g.expr.type]})) AS r{i}"
                  for i, g in enumerate(q.groups) if g.relation == "root"]
        if not picked:
            return ""
        ts, tid = self.expr(q.timestamp), self.expr(q.trace_id)
        where = [f"_env = {self.param(q.env, 'String')}", f"{ts} >= {self.param(q.start, TS)}",
                 f"{ts} < {self.param(q.end, TS)}", "ifNull(`trace.parent_id`, '') = ''", "`meta.annotation_type` IS NULL",
                 f"{tid} IS NOT NULL"]
        return (f" LEFT JOIN (SELECT assumeNotNull({tid}) AS _rt, {', '.join(picked)} FROM spans "
                f"WHERE {' AND '.join(where)} GROUP BY _rt) AS _root ON spans.{ident('trace.trace_id')} = _root._rt")

    def group(self, e: Expr) -> str:
        """A breakdown's values, in the type the plan gives it: a function's own result type (``lengthUTF8``'s UInt64,
        ``arrayReduce``'s) would not match the typed group keys a series query is filtered by."""
        sql = self.expr(e)
        if isinstance(e, Call) and e.type in _SQL_TYPE:
            return f"CAST({sql} AS Nullable({_SQL_TYPE[e.type]}))"
        return sql

    def aggregate(self, j: int, a: Aggregate, weighted: bool = False) -> str:
        v = f"v{j}"
        if weighted and (sql := self.weighted(j, a)) is not None:
            return sql
        if a.kind == "count":
            return "count()"
        if a.kind == "count_distinct":
            return f"uniq({v})"
        if a.kind in ("sum", "avg", "min", "max"):
            return f"{a.kind}({v})"
        if a.kind == "quantile":
            return f"quantileExactInclusive({float(a.q)!r})({v})"  # a constant of the plan, never user input
        if a.kind in ("rate_avg", "rate_sum", "rate_max"):
            return f"{a.kind[5:]}({v})"
        raise ValueError(f"{a.kind} is not a summary aggregate")

    def aggregates(self, q: SpanQuery, per_s: Callable[[], str] | None = None) -> list[str]:
        """``per_s`` renders the seconds a RATE divides by (the window's in a summary, the bucket's in a series)."""
        out = []
        for j, a in enumerate(q.aggregates):
            if a.kind in SEPARATE_KINDS:
                continue
            if a.kind == "increase":
                out.append(f"sum(v{j}) AS c{j}")
            elif a.kind == "rate":
                seconds = per_s() if per_s else self.float_param((q.end - q.start).total_seconds())
                out.append(f"sum(v{j}) / {seconds} AS c{j}")
            else:
                out.append(f"{self.aggregate(j, a, q.sample_rate is not None)} AS c{j}")
        return out


class ClickHouseDialect:
    name = "clickhouse"

    def summary(self, q: SpanQuery) -> Compiled:
        r = _Render()
        groups = [f"g{i}" for i in range(len(q.groups))]
        source = r.weighted_ranks(q, lambda: r.base(q), groups)
        cols = groups + r.aggregates(q) + ["count() AS _rows", _examples(q)]
        sql = f"SELECT {', '.join(cols)} FROM {source}"
        if groups:
            sql += f" GROUP BY {', '.join(groups)}"
        having = [f"c{h.aggregate} {_BINARY[h.op]} {r.param(float(h.value), 'Float64')}" for h in q.having]
        if having:
            sql += " HAVING " + " AND ".join(having)
        order = [f"{'g' if o.target == 'group' else 'c'}{o.index} {'DESC' if o.descending else 'ASC'} NULLS LAST"
                 for o in q.order]
        if not any(o.target == "aggregate" for o in q.order):
            order.append("_rows DESC")
        order += [f"g{i} ASC NULLS LAST" for i in range(len(q.groups))
                  if not any(o.target == "group" and o.index == i for o in q.order)]
        sql += f" ORDER BY {', '.join(order)} LIMIT {r.param(int(q.limit), 'UInt64')}"
        return Compiled(sql, r.params)

    def series(self, q: SpanQuery, groups: Sequence[tuple[Any, ...]] | None) -> Compiled:
        r = _Render()
        keys = ["_bucket"] + [f"g{i}" for i in range(len(q.groups))]
        source = r.weighted_ranks(q, lambda: r.base(q, groups=groups), keys)
        aggs = r.aggregates(q, lambda: r.float_param(q.granularity_s))
        sql = f"SELECT {', '.join(keys + aggs)}, count() AS _rows FROM {source} GROUP BY {', '.join(keys)}"
        return Compiled(sql, r.params)

    def totals_and_series(self, q: SpanQuery) -> Compiled:
        assert not q.groups and not q.having and not weighted_percentiles(q)
        r = _Render()
        base = r.base(q)

        def per_s() -> str:  # a RATE's seconds: the window's on the totals row, the bucket's on the others
            window = r.float_param((q.end - q.start).total_seconds())
            return f"(CASE WHEN grouping(_bucket) = 1 THEN {window} ELSE {r.float_param(q.granularity_s)} END)"

        cols = ["_bucket", "grouping(_bucket) AS _total"] + r.aggregates(q, per_s) + ["count() AS _rows", _examples(q)]
        return Compiled(f"SELECT {', '.join(cols)} FROM ({base}) GROUP BY GROUPING SETS ((_bucket), ()) "
                        "SETTINGS group_by_use_nulls = 1", r.params)

    def bounds(self, q: SpanQuery, aggregate: int, groups: Sequence[tuple[Any, ...]] | None) -> Compiled:
        r = _Render()
        base = r.base(q, groups=groups)
        return Compiled(f"SELECT min(v{aggregate}) AS lo, max(v{aggregate}) AS hi FROM ({base})", r.params)

    def heatmap(self, q: SpanQuery, aggregate: int, groups: Sequence[tuple[Any, ...]] | None,
                lo: float, width: float, log_floor: float | None = None) -> Compiled:
        """Cells of ``width`` from ``lo``; with ``log_floor``, of the value's logarithm (values below the floor in the first)."""
        r = _Render()
        base = r.base(q, groups=groups)
        keys = ["_bucket"] + [f"g{i}" for i in range(len(q.groups))]
        v = f"v{aggregate}" if log_floor is None else f"log(greatest(v{aggregate}, {r.param(float(log_floor), 'Float64')}))"
        cell = (f"least(toInt64(floor(({v} - {r.param(float(lo), 'Float64')}) / {r.param(float(width), 'Float64')})), "
                f"{int(q.heatmap_buckets) - 1}) AS _cell")
        n = "toInt64(round(sum(_w)))" if q.sample_rate is not None else "count()"
        sql = (f"SELECT {', '.join(keys)}, {cell}, {n} AS n, any(_tid) AS _example FROM ({base}) "
               f"WHERE v{aggregate} IS NOT NULL GROUP BY {', '.join(keys)}, _cell")
        return Compiled(sql, r.params)

    def histogram_buckets(self, q: SpanQuery, aggregate: int, groups: Sequence[tuple[Any, ...]] | None) -> Compiled:
        r = _Render()
        a = q.aggregates[aggregate]
        assert a.buckets is not None and a.counter is not None
        series, start, temporality, monotonic = r.series_columns(a.counter)
        base = r.base(q, args=False, groups=groups, conditions=[Call("not_null", (a.buckets,), BOOLEAN)], extra=[
            ("_ts", r.expr(q.timestamp)), ("_b", r.expr(a.buckets)), ("_series", series), ("_start", start),
            ("_temp", temporality), ("_mono", monotonic)])
        keys = ", ".join(["_bucket"] + [f"g{i}" for i in range(len(q.groups))])
        # One row per bucket of each point (the text column holds ``lower,upper,count;...``), then each bucket's
        # increase within its series, as INCREASE computes it for a counter.
        exploded = f"SELECT *, arrayJoin(splitByChar(';', ifNull(_b, ''))) AS _e FROM ({base})"
        parsed = (f"SELECT {keys}, _ts, _series, _start, _temp, _mono, toFloat64OrNull(splitByChar(',', _e)[1]) AS _lo, "
                  f"toFloat64OrNull(splitByChar(',', _e)[2]) AS _hi, toInt64OrNull(splitByChar(',', _e)[3]) AS _c "
                  f"FROM ({exploded}) WHERE _e != ''")
        n = r.increment("_c", "_ts", q, "_series", "_start", "_temp", "_mono", ["_lo", "_hi"])
        sql = (f"SELECT {keys}, _lo, _hi, toFloat64(sum(_n)) AS n FROM (SELECT {keys}, _lo, _hi, {n} AS _n FROM ({parsed})) "
               f"WHERE _n IS NOT NULL GROUP BY {keys}, _lo, _hi")
        return Compiled(sql, r.params)

    def concurrency(self, q: SpanQuery, groups: Sequence[tuple[Any, ...]] | None) -> Compiled:
        r = _Render()
        ts = r.expr(q.timestamp)
        base = r.base(q, args=False, groups=groups, extra=[
            ("_s", r.micros(ts)), ("_e", f"{r.micros(ts)} + toInt64(coalesce({r.expr(q.duration)}, 0) * 1000)")])
        g = [f"g{i}" for i in range(len(q.groups))]
        gsel = "".join(f"{x}, " for x in g)
        part = f"PARTITION BY {', '.join(g)} " if g else ""
        start_us = r.param(_epoch_us(q.start))
        sql = (f"WITH b AS ({base}), "
               f"ev AS (SELECT {gsel}_s AS t, toInt8(1) AS d FROM b UNION ALL SELECT {gsel}_e AS t, toInt8(-1) AS d FROM b), "
               f"run AS (SELECT {gsel}t, sum(d) OVER ({part}ORDER BY t, d ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS c "
               f"FROM ev) "
               f"SELECT intDiv(t - {start_us}, {r.param(q.granularity_s * 1_000_000)}) AS _bucket, {gsel}max(c) AS v "
               f"FROM run WHERE t >= {start_us} AND t < {r.param(_epoch_us(q.end))} GROUP BY _bucket{''.join(', ' + x for x in g)}")
        return Compiled(sql, r.params)

    def bubbleup_profile(self, b: BubbleUp) -> Compiled:
        r = _Render()
        base = _bubbleup_rows(r, b, [Facet(c) for c in b.columns])
        cols = ["_sel", "count() AS n", "min(_ts) AS t0", "max(_ts) AS t1"]
        for i, c in enumerate(b.columns):
            cols += [f"count(k{i}) AS s{i}", f"uniq(k{i}) AS d{i}"]
            if c.type in NUMERIC:
                cols += [f"min(k{i}) AS lo{i}", f"max(k{i}) AS hi{i}"]
        return Compiled(f"SELECT {', '.join(cols)} FROM ({base}) GROUP BY _sel", r.params)

    def bubbleup_counts(self, b: BubbleUp, facets: Sequence[Facet]) -> Compiled:
        r = _Render()
        base = _bubbleup_rows(r, b, facets)
        keys = [f"k{i}" for i in range(len(facets))]
        cols = ["_sel", *keys, *(f"grouping({k}) AS g{i}" for i, k in enumerate(keys)), "count() AS n"]
        sets = ", ".join(f"(_sel, {k})" for k in keys)
        return Compiled(f"SELECT {', '.join(cols)} FROM ({base}) GROUP BY GROUPING SETS ({sets}) "
                        "SETTINGS group_by_use_nulls = 1", r.params)


def _bubbleup_rows(r: _Render, b: BubbleUp, facets: Sequence[Facet]) -> str:
    """The rows compared: ``_sel`` (NULL counts as outside the selection) and each facet's key (its value or its
    histogram bucket); with ``b.baseline_slices``, every selected row and the baseline's in those slices of time."""
    keys = [("_ts", r.expr(b.rows.timestamp))]
    for i, f in enumerate(facets):
        value = r.expr(f.column)
        if f.bins:
            value = (f"greatest(least(toInt64(floor(({value} - {r.param(float(f.lo), 'Float64')}) / "
                     f"{r.param(float(f.width), 'Float64')})), {int(f.bins) - 1}), 0)")
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


def _examples(q: SpanQuery) -> str:
    if q.examples == 1:
        # argMax skips a null trace id (a Nullable argument) and answers NULL over no rows, as DuckDB's arg_max;
        # sorting tuples for one example made a weighted COUNT over 10 M spans 5-6 x the hand-written SQL for
        # the same answer (bench/query.py --sampled --store clickhouse).
        return "[argMax(_tid, coalesce(_dur, 0))] AS _examples"
    return (f"arrayMap(x -> x.2, groupArraySortedIf({int(q.examples)})((-coalesce(_dur, 0), assumeNotNull(_tid)), "
            f"_tid IS NOT NULL)) AS _examples")


def _epoch_us(naive_utc: datetime) -> int:
    return int(naive_utc.replace(tzinfo=timezone.utc).timestamp() * 1_000_000)
