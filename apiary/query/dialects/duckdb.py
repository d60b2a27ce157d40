"""The query plan rendered as DuckDB SQL.

Every value travels as a ``$n`` parameter; identifiers come only from the
store's catalogue and are checked against the physical layout before they
are quoted. The only numbers written into SQL text are the plan's own
constants (percentile fractions, bucket counts), never a user's value.
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

_SQL_TYPE = {STRING: "VARCHAR", INTEGER: "BIGINT", FLOAT: "DOUBLE", BOOLEAN: "BOOLEAN", TIMESTAMP: "TIMESTAMP"}
_PHYSICAL = re.compile(r"a[0-9]+")
_INTERNAL = {"_dataset", "_attrs"}
_BINARY = {"eq": "=", "ne": "<>", "lt": "<", "le": "<=", "gt": ">", "ge": ">=", "add": "+", "sub": "-", "mul": "*",
           "mod": "%"}
_FUNCTIONS = {"starts_with": "starts_with", "ends_with": "suffix", "contains": "contains", "lower": "lower",
              "upper": "upper", "length": "length", "coalesce": "coalesce", "concat": "concat", "least": "least",
              "greatest": "greatest"}
#: Functions of calculated fields (``apiary.query.calculated``), from their rendered arguments.
_CALCULATED: dict[str, Callable[[list[str]], str]] = {
    "abs": lambda a: f"TRY(abs({a[0]}))",
    "ceil": lambda a: f"ceil({a[0]})",
    "floor": lambda a: f"floor({a[0]})",
    "pow": lambda a: f"TRY(pow({a[0]}, {a[1]}))",
    "log10": lambda a: f"log10(CASE WHEN {a[0]} > 0 THEN {a[0]} END)",
    "null_if_empty": lambda a: f"nullif({a[0]}, '')",
    "byte_length": lambda a: f"octet_length(encode({a[0]}))",
    # SUBSTRING counts from 0; a start before the first character starts there.
    "substring": lambda a: (f"substring({a[0]}, least(greatest({a[1]}, 0), 2147483647) + 1"
                            + (f", least(greatest({a[2]}, 0), 2147483647))" if len(a) > 2 else ")")),
    "regex_match": lambda a: f"regexp_matches({a[0]}, {a[1]})",
    "regex_value": lambda a: f"regexp_extract({a[0]}, {a[1]})",
    "regex_group": lambda a: f"regexp_extract({a[0]}, {a[1]}, 1)",
    "regex_count": lambda a: f"len(regexp_extract_all({a[0]}, {a[1]}))",
    "parse_time": lambda a: f"(epoch_us(TRY_CAST({a[0]} AS TIMESTAMPTZ)) / 1000000.0)",
}
#: Seconds since the epoch FORMAT_TIME formats: up to 2262-04-11, the last time the stores hold.
_MAX_SECONDS = 9_223_372_036
_CASTS = {"to_integer": INTEGER, "to_float": FLOAT, "to_string": STRING, "to_boolean": BOOLEAN}


def ident(name: str) -> str:
    if not (name in CORE_NAMES or name in _INTERNAL or _PHYSICAL.fullmatch(name)):
        raise ValueError(f"{name!r} is not a column of the spans table")
    return '"' + name.replace('"', '""') + '"'


def json_pointer(key: str) -> str:
    return "/" + key.replace("~", "~0").replace("/", "~1")


class _Render:
    def __init__(self) -> None:
        self.params: list[Any] = []

    def param(self, value: Any) -> str:
        self.params.append(value)
        return f"${len(self.params)}"

    def float_param(self, value: float) -> str:
        return f"CAST({self.param(float(value))} AS DOUBLE)"

    def series_columns(self, c: SeriesColumns) -> tuple[str, str, str, str]:
        """SQL of a metric row's series id, start time, temporality and monotonicity."""
        return self.expr(c.series), self.expr(c.start_us), self.expr(c.temporality), self.expr(c.monotonic)

    def increment(self, value: str, ts: str, q: SpanQuery, series: str, start: str, temporality: str, monotonic: str,
                  partition: Sequence[str] = ()) -> str:
        """What a metric point adds to its series: a delta point its value; a cumulative one the growth since the
        series' previous point, or its whole value after a reset (a new start time, or a value that fell) and
        when its series started inside the window. Gauges and up-down counters add nothing (NULL)."""
        window = f"OVER (PARTITION BY {', '.join([series, *partition])} ORDER BY {ts})"
        prev = f"lag({value} IGNORE NULLS) {window}"
        prev_start = f"lag(CASE WHEN ({value}) IS NOT NULL THEN {start} END IGNORE NULLS) {window}"
        # Histogram buckets are stored only when not empty: one first seen after an earlier point of its series
        # (same start) was empty until then, so all of it is new.
        earlier = f" OR min({ts}) OVER (PARTITION BY {series}, {start}) < {ts}" if partition else ""
        return (f"CASE WHEN ({value}) IS NULL OR NOT coalesce({monotonic}, false) THEN NULL "
                f"WHEN {temporality} = {self.param('delta')} THEN {value} "
                f"WHEN {temporality} <> {self.param('cumulative')} THEN NULL "
                f"WHEN {prev} IS NULL THEN CASE WHEN {start} >= {self.param(_epoch_us(q.start))}{earlier} THEN {value} END "
                f"WHEN {start} IS DISTINCT FROM {prev_start} OR ({value}) < {prev} THEN {value} "
                f"ELSE ({value}) - {prev} END")

    # -- expressions ----------------------------------------------------------------------------

    def source(self, s: Source, want: str) -> str:
        if s.json_key is not None:
            raw, raw_type = f"json_extract_string({ident(s.physical)}, {self.param(json_pointer(s.json_key))})", STRING
        else:
            raw, raw_type = ident(s.physical), s.type
        if raw_type == want:
            return raw
        if want == STRING:
            return f"CAST({raw} AS VARCHAR)"
        return f"TRY_CAST({raw} AS {_SQL_TYPE[want]})"

    def expr(self, e: Expr) -> str:
        if isinstance(e, Column):
            parts = [self.source(s, e.type) for s in e.sources]
            return parts[0] if len(parts) == 1 else f"coalesce({', '.join(parts)})"
        if isinstance(e, Literal):
            if e.value is None:
                return "NULL"
            return f"CAST({self.param(e.value)} AS {_SQL_TYPE[e.type]})"
        if isinstance(e, InList):
            values = ", ".join(self.expr(v) for v in e.values)
            return f"({self.expr(e.expr)} {'NOT IN' if e.negate else 'IN'} ({values}))"
        return self.call(e)

    def call(self, e: Call) -> str:
        fn, args = e.fn, [self.expr(a) for a in e.args]
        if fn == "mod":
            # TRY: an integer result past 64 bits (or the smallest integer % -1) is NULL, as a division by zero is.
            return f"TRY({args[0]} % nullif({args[1]}, 0))"
        if fn in ("add", "sub", "mul") and e.type == INTEGER:
            return "TRY(" + f" {_BINARY[fn]} ".join(args) + ")"
        if fn in _BINARY:
            return "(" + f" {_BINARY[fn]} ".join(args) + ")"
        if fn == "div":
            return f"({args[0]} / nullif({args[1]}, 0))"
        if fn in _CALCULATED:
            return _CALCULATED[fn](args)
        if fn == "format_time":
            fmt, seconds = args
            return (f"(CASE WHEN {seconds} >= 0 AND {seconds} < {_MAX_SECONDS} THEN "
                    f"strftime(make_timestamp(CAST({seconds} * 1000000 AS BIGINT)), {fmt}) END)")
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
            return f"TRY_CAST(trunc({args[0]}) AS BIGINT)"
        if fn in _CASTS:
            want = _SQL_TYPE[_CASTS[fn]]
            return f"CAST({args[0]} AS VARCHAR)" if want == "VARCHAR" else f"TRY_CAST({args[0]} AS {want})"
        if fn == "epoch_seconds":
            return f"(epoch_us({args[0]}) / 1000000.0)"
        if fn in _FUNCTIONS:
            return f"{_FUNCTIONS[fn]}({', '.join(args)})"
        raise ValueError(f"DuckDB dialect has no function {fn!r}")

    # -- the filtered rows ----------------------------------------------------------------------

    def base(self, q: SpanQuery, *, args: bool = True, groups: Sequence[tuple[Any, ...]] | None = None,
             extra: Sequence[tuple[str, str]] = (), conditions: Sequence[Expr] = ()) -> str:
        """The filtered rows, with ``_bucket``, ``g*``, ``v*`` (aggregate arguments), ``_tid``, ``_dur``."""
        ts = self.expr(q.timestamp)
        start_us = _epoch_us(q.start)
        cols = [f"(epoch_us({ts}) - {self.param(start_us)}) // {self.param(q.granularity_s * 1_000_000)} AS _bucket"]
        cols += [f"{'_root.r' + str(i) if g.relation else self.expr(g.expr)} AS g{i}" for i, g in enumerate(q.groups)]
        if args:
            for j, a in enumerate(q.aggregates):
                if a.arg is None:
                    continue
                value = self.expr(a.arg)
                if a.counter is not None:
                    value = self.increment(value, ts, q, *self.series_columns(a.counter))
                elif a.kind.startswith("rate_"):
                    part = ", ".join(self.expr(g.expr) for g in q.groups)
                    window = f"OVER ({'PARTITION BY ' + part + ' ' if part else ''}ORDER BY {ts})"
                    # Between consecutive rows that have a value: rows without one do not break the sequence.
                    when = f"CASE WHEN ({value}) IS NOT NULL THEN epoch_us({ts}) END"
                    value = (f"(({value}) - lag({value} IGNORE NULLS) {window}) / "
                             f"nullif((({when}) - lag({when} IGNORE NULLS) {window}) / 1000000.0, 0)")
                cols.append(f"{value} AS v{j}")
        cols += [f"{self.expr(q.trace_id)} AS _tid", f"{self.expr(q.duration)} AS _dur"]
        if q.sample_rate is not None:
            cols.append(f"coalesce({self.expr(q.sample_rate)}, 1.0) AS _w")
        cols += [f"{sql} AS {name}" for name, sql in extra]
        where = [f"_env = {self.param(q.env)}", f"{ts} >= {self.param(q.start)}", f"{ts} < {self.param(q.end)}"]
        if q.datasets is not None:
            where.append(f"_dataset IN ({', '.join(self.param(d) for d in q.datasets)})")
        if q.where is not None:
            where.append(self.expr(q.where))
        where += [self.expr(c) for c in conditions]
        if q.related_traces is not None:  # relational fields: the trace search's own SQL picks the traces
            from apiary.query.dialects.duckdb_traces import matching_trace_ids

            where.append(f"{self.expr(q.trace_id)} IN ({matching_trace_ids(self, q.related_traces)})")
        sql = f"SELECT {', '.join(cols)} FROM spans{self.roots(q)} WHERE {' AND '.join(where)}"
        if groups is not None and q.groups:
            sql = f"SELECT b.* FROM ({sql}) b SEMI JOIN ({self.group_list(q, groups)}) k ON " + " AND ".join(
                f"b.g{i} IS NOT DISTINCT FROM k.k{i}" for i in range(len(q.groups)))
        return sql

    def roots(self, q: SpanQuery) -> str:
        """For ``root.<column>`` breakdowns: each trace's root span (no parent) in the window, joined by trace id."""
        picked = [f"any_value({self.expr(g.expr)}) AS r{i}" for i, g in enumerate(q.groups) if g.relation == "root"]
        if not picked:
            return ""
        ts, tid = self.expr(q.timestamp), self.expr(q.trace_id)
        where = [f"_env = {self.param(q.env)}", f"{ts} >= {self.param(q.start)}", f"{ts} < {self.param(q.end)}",
                 "coalesce(\"trace.parent_id\", '') = ''", '"meta.annotation_type" IS NULL', f"{tid} IS NOT NULL"]
        return (f" LEFT JOIN (SELECT {tid} AS _rt, {', '.join(picked)} FROM spans WHERE {' AND '.join(where)} "
                f"GROUP BY {tid}) AS _root ON spans.{ident('trace.trace_id')} = _root._rt")

    def group_list(self, q: SpanQuery, groups: Sequence[tuple[Any, ...]]) -> str:
        cols = []
        for i, g in enumerate(q.groups):
            values = [row[i] for row in groups]
            cols.append(f"unnest(CAST({self.param(values)} AS {_SQL_TYPE[g.expr.type]}[])) AS k{i}")
        return f"SELECT {', '.join(cols)}"

    def weighted_ranks(self, q: SpanQuery, make_base: Callable[[], str], keys: Sequence[str]) -> str:
        """What the aggregates read (after FROM): ``make_base()``'s rows and, for each weighted percentile, its value
        per group (``keys``) as ``_q{j}``. A percentile ranks the distinct values of its group by their summed sample
        rates (the running sum, ``_c``, against the total, ``_t``). Ranking distinct values rather than rows took
        a weighted P99 over 1 M sampled spans from 2.6 s to 1.3 s (``bench/query.py --sampled``, a loaded machine)."""
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
            at = (lambda rank: f"min(_v) FILTER (WHERE _c > {rank}(greatest(_t - 1, 0) * {level!r}))")
            value = f"({at('floor')} + ({at('ceil')} - {at('floor')}) * ({h} - floor({h}))) AS _q{j}"
            pick = f"SELECT {''.join(f'{k} AS _p{j}_{k}, ' for k in keys)}{value} FROM ({ranked})"
            if keys:
                on = " AND ".join(f"_b.{k} IS NOT DISTINCT FROM _p{j}._p{j}_{k}" for k in keys)
                source += f" LEFT JOIN ({pick} GROUP BY {', '.join(keys)}) AS _p{j} ON {on}"
            else:  # one row, even over no rows
                source += f" CROSS JOIN ({pick}) AS _p{j}"
        return source

    def weighted(self, j: int, a: Aggregate) -> str | None:
        """Honeycomb's weighting by sample rate (``_w``): each row stands for ``_w`` events. A percentile is the one
        of the rows repeated ``_w`` times, interpolated between the two closest ranks as ``quantile_cont`` does."""
        v = f"v{j}"
        if a.kind == "count":
            return "TRY_CAST(round(coalesce(sum(_w), 0)) AS BIGINT)"
        if a.kind == "sum":
            return f"TRY_CAST(round(sum({v} * _w)) AS BIGINT)" if a.type == INTEGER else f"sum({v} * _w)"
        if a.kind == "avg":
            return f"(sum({v} * _w) / nullif(sum(CASE WHEN {v} IS NOT NULL THEN _w END), 0))"
        if a.kind == "quantile":  # worked out per group by ``weighted_ranks``
            return f"any_value(_q{j})"
        return None

    def aggregate(self, j: int, a: Aggregate, weighted: bool = False) -> str:
        v = f"v{j}"
        if weighted and (sql := self.weighted(j, a)) is not None:
            return sql
        if a.kind == "count":
            return "count(*)"
        if a.kind == "count_distinct":
            return f"approx_count_distinct({v})"
        if a.kind == "sum" and a.type == INTEGER:  # DuckDB widens an integer sum to HUGEINT (past 64 bits: null)
            return f"TRY_CAST(sum({v}) AS BIGINT)"
        if a.kind in ("sum", "avg", "min", "max"):
            return f"{a.kind}({v})"
        if a.kind == "quantile":
            return f"quantile_cont({v}, {float(a.q)!r})"  # a constant of the plan, never user input
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


class DuckDBDialect:
    name = "duckdb"

    def summary(self, q: SpanQuery) -> Compiled:
        r = _Render()
        groups = [f"g{i}" for i in range(len(q.groups))]
        source = r.weighted_ranks(q, lambda: r.base(q), groups)
        cols = groups + r.aggregates(q) + ["count(*) AS _rows", f"{_examples(q)} AS _examples"]
        sql = f"SELECT {', '.join(cols)} FROM {source}"
        if groups:
            sql += f" GROUP BY {', '.join(groups)}"
        having = [f"c{h.aggregate} {_BINARY[h.op]} {r.param(h.value)}" for h in q.having]
        if having:
            sql += " HAVING " + " AND ".join(having)
        order = [f"{'g' if o.target == 'group' else 'c'}{o.index} {'DESC' if o.descending else 'ASC'} NULLS LAST"
                 for o in q.order]
        if not any(o.target == "aggregate" for o in q.order):
            order.append("_rows DESC")
        order += [f"g{i} ASC NULLS LAST" for i in range(len(q.groups))
                  if not any(o.target == "group" and o.index == i for o in q.order)]
        sql += f" ORDER BY {', '.join(order)} LIMIT {r.param(q.limit)}"
        return Compiled(sql, r.params)

    def series(self, q: SpanQuery, groups: Sequence[tuple[Any, ...]] | None) -> Compiled:
        r = _Render()
        keys = ["_bucket"] + [f"g{i}" for i in range(len(q.groups))]
        source = r.weighted_ranks(q, lambda: r.base(q, groups=groups), keys)
        aggs = r.aggregates(q, lambda: r.float_param(q.granularity_s))
        sql = f"SELECT {', '.join(keys + aggs)}, count(*) AS _rows FROM {source} GROUP BY {', '.join(keys)}"
        return Compiled(sql, r.params)

    def totals_and_series(self, q: SpanQuery) -> Compiled:
        assert not q.groups and not q.having and not weighted_percentiles(q)
        r = _Render()
        base = r.base(q)

        def per_s() -> str:  # a RATE's seconds: the window's on the totals row, the bucket's on the others
            window = r.float_param((q.end - q.start).total_seconds())
            return f"(CASE WHEN GROUPING(_bucket) = 1 THEN {window} ELSE {r.float_param(q.granularity_s)} END)"

        cols = ["_bucket", "GROUPING(_bucket) AS _total"] + r.aggregates(q, per_s) + [
            "count(*) AS _rows", f"{_examples(q)} AS _examples"]
        return Compiled(f"SELECT {', '.join(cols)} FROM ({base}) GROUP BY GROUPING SETS ((_bucket), ())", r.params)

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
        v = f"v{aggregate}" if log_floor is None else f"ln(greatest(v{aggregate}, {r.param(float(log_floor))}))"
        cell = (f"least(CAST(floor(({v} - {r.param(float(lo))}) / {r.param(float(width))}) AS BIGINT), "
                f"{int(q.heatmap_buckets) - 1}) AS _cell")
        n = "TRY_CAST(round(sum(_w)) AS BIGINT)" if q.sample_rate is not None else "count(*)"
        sql = (f"SELECT {', '.join(keys)}, {cell}, {n} AS n, any_value(_tid) AS _example FROM ({base}) "
               f"WHERE v{aggregate} IS NOT NULL GROUP BY ALL")
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
        exploded = f"SELECT *, unnest(string_split(_b, ';')) AS _e FROM ({base})"
        parsed = (f"SELECT {keys}, _ts, _series, _start, _temp, _mono, TRY_CAST(split_part(_e, ',', 1) AS DOUBLE) AS _lo, "
                  f"TRY_CAST(split_part(_e, ',', 2) AS DOUBLE) AS _hi, TRY_CAST(split_part(_e, ',', 3) AS BIGINT) AS _c "
                  f"FROM ({exploded})")
        n = r.increment("_c", "_ts", q, "_series", "_start", "_temp", "_mono", ["_lo", "_hi"])
        sql = (f"SELECT {keys}, _lo, _hi, CAST(sum(_n) AS DOUBLE) AS n FROM (SELECT {keys}, _lo, _hi, {n} AS _n FROM ({parsed})) "
               f"WHERE _n IS NOT NULL GROUP BY {keys}, _lo, _hi")
        return Compiled(sql, r.params)

    def concurrency(self, q: SpanQuery, groups: Sequence[tuple[Any, ...]] | None) -> Compiled:
        r = _Render()
        ts = r.expr(q.timestamp)
        base = r.base(q, args=False, groups=groups, extra=[
            ("_s", f"epoch_us({ts})"), ("_e", f"epoch_us({ts}) + CAST(coalesce({r.expr(q.duration)}, 0) * 1000 AS BIGINT)")])
        g = [f"g{i}" for i in range(len(q.groups))]
        gsel = "".join(f"{x}, " for x in g)
        part = f"PARTITION BY {', '.join(g)} " if g else ""
        start_us = _epoch_us(q.start)
        sql = (f"WITH b AS ({base}), "
               f"ev AS (SELECT {gsel}_s AS t, 1 AS d FROM b UNION ALL SELECT {gsel}_e AS t, -1 AS d FROM b), "
               f"run AS (SELECT {gsel}t, sum(d) OVER ({part}ORDER BY t, d ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS c "
               f"FROM ev) "
               f"SELECT (t - {r.param(start_us)}) // {r.param(q.granularity_s * 1_000_000)} AS _bucket, {gsel}max(c) AS v "
               f"FROM run WHERE t >= {r.param(start_us)} AND t < {r.param(_epoch_us(q.end))} GROUP BY ALL")
        return Compiled(sql, r.params)

    def bubbleup_profile(self, b: BubbleUp) -> Compiled:
        r = _Render()
        base = _bubbleup_rows(r, b, [Facet(c) for c in b.columns])
        cols = ["_sel", "count(*) AS n", "min(_ts) AS t0", "max(_ts) AS t1"]
        for i, c in enumerate(b.columns):
            cols += [f"count(k{i}) AS s{i}", f"approx_count_distinct(k{i}) AS d{i}"]
            if c.type in NUMERIC:
                cols += [f"min(k{i}) AS lo{i}", f"max(k{i}) AS hi{i}"]
        return Compiled(f"SELECT {', '.join(cols)} FROM ({base}) GROUP BY _sel", r.params)

    def bubbleup_counts(self, b: BubbleUp, facets: Sequence[Facet]) -> Compiled:
        r = _Render()
        base = _bubbleup_rows(r, b, facets)
        keys = [f"k{i}" for i in range(len(facets))]
        cols = ["_sel", *keys, *(f"GROUPING({k}) AS g{i}" for i, k in enumerate(keys)), "count(*) AS n"]
        sets = ", ".join(f"(_sel, {k})" for k in keys)
        return Compiled(f"SELECT {', '.join(cols)} FROM ({base}) GROUP BY GROUPING SETS ({sets})", r.params)


def _bubbleup_rows(r: _Render, b: BubbleUp, facets: Sequence[Facet]) -> str:
    """The rows compared: ``_sel`` (NULL counts as outside the selection) and each facet's key (its value or its
    histogram bucket); with ``b.baseline_slices``, every selected row and the baseline's in those slices of time."""
    keys = [("_ts", r.expr(b.rows.timestamp))]
    for i, f in enumerate(facets):
        value = r.expr(f.column)
        if f.bins:
            value = (f"greatest(least(CAST(floor(({value} - {r.param(float(f.lo))}) / {r.param(float(f.width))}) AS BIGINT), "
                     f"{int(f.bins) - 1}), 0)")
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
    # arg_max with n > 1 keeps a heap per group: ~2x the cost of n = 1 at 10 M rows. With n = 1 it skips the
    # rows whose trace id is null by itself: a FILTER saying so made a weighted AVG over 10 M spans 1.4-1.7 x
    # the hand-written SQL for the same answer, against 1.2 x without (bench/query.py --sampled).
    if q.examples == 1:
        return "list_value(arg_max(_tid, _dur))"
    return f"arg_max(_tid, coalesce(_dur, 0), {int(q.examples)}) FILTER (WHERE _tid IS NOT NULL)"


def _epoch_us(naive_utc: datetime) -> int:
    return int(naive_utc.replace(tzinfo=timezone.utc).timestamp() * 1_000_000)
