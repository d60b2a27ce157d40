"""ClickHouse's spelling of the query plan, answering as the DuckDB dialect does.

Every value travels as a typed server-side parameter (``{p1:String}``, bound
by ``ClickHouseStore.query``). Where the engines differ, this side bends to
DuckDB's answers:

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
* GROUPING SETS and outer joins run with ``group_by_use_nulls`` /
  ``join_use_nulls``, so a missing value reads NULL rather than a default.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any, Callable, Sequence

from apiary.query.dialects.base import MAX_SECONDS, SpanDialect, SpanRender
from apiary.query.dialects.related import RelatedSQL
from apiary.query.plan import BOOLEAN, FLOAT, INTEGER, STRING, TIMESTAMP, Call, Expr, Literal, SpanQuery

TS = "DateTime64(6, 'UTC')"
_SQL_TYPE = {STRING: "String", INTEGER: "Int64", FLOAT: "Float64", BOOLEAN: "Bool", TIMESTAMP: TS}
#: strftime directive -> formatDateTime's (the others are spelled alike).
_TIME_DIRECTIVES = {"M": "i", "A": "W"}


def ident(name: str) -> str:
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


#: Related spans (relational fields), answering as the DuckDB dialect's: Nullable columns, so that a row without
#: linked spans reads NULL through the LEFT JOIN; a value at the minimum is taken inside a tuple, so NULL is kept.
_RELATED = RelatedSQL(
    quote=ident, key=lambda c: f"assumeNotNull({c})",
    flag=lambda c: f"CAST(max(ifNull(toUInt8({c}), 0)) AS Nullable(Bool))",
    pick=lambda match, value, typ, order: (f"tupleElement(argMinIf(tuple(CAST({value} AS Nullable({_SQL_TYPE[typ]}))), "
                                           f"{order}, ifNull({match}, false)), 1)"),
    order=lambda ts: f"toUnixTimestamp64Micro({ts})")


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


class ClickHouseRender(SpanRender):
    PHYSICAL = re.compile(r"a_[0-9a-f]{12}")
    SQL_TYPE = _SQL_TYPE
    BINARY = {"eq": "=", "ne": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">=", "add": "+", "sub": "-", "mul": "*",
              "mod": "%"}
    FUNCTIONS = {"starts_with": "startsWith", "ends_with": "endsWith", "lower": "lowerUTF8", "upper": "upperUTF8",
                 "length": "lengthUTF8", "coalesce": "coalesce"}
    #: As the DuckDB dialect's answer.
    CALCULATED: dict[str, Callable[[list[str]], str]] = {
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
    NAMES = {"nullif": "nullIf", "ifnull": "ifNull", "any": "any", "uniq": "uniq", "ln": "log", "arg_min": "argMin"}
    GROUPING_SETS_SETTINGS = " SETTINGS group_by_use_nulls = 1"
    JOIN_SETTINGS = " SETTINGS join_use_nulls = 1"
    RELATED = _RELATED
    SUMMARY_MERGED = False
    COUNT = "count()"

    def quote(self, name: str) -> str:
        return ident(name)

    def param(self, value: Any, sql_type: str | None = None) -> str:
        if isinstance(value, datetime) and value.tzinfo is not None:
            value = value.astimezone(timezone.utc).replace(tzinfo=None)
        self.params.append(value)
        return f"{{p{len(self.params)}:{sql_type or param_type(value)}}}"

    def float_param(self, value: float) -> str:
        return self.param(float(value), "Float64")

    def number_param(self, value: float) -> str:
        return self.param(float(value), "Float64")

    def limit_param(self, value: int) -> str:
        return self.param(int(value), "UInt64")

    def literal(self, value: Any, type_: str) -> str:
        return self.param(value, _SQL_TYPE[type_])

    def list_param(self, values: Sequence[str]) -> str:
        return self.param(list(values), "Array(String)")

    def in_list(self, key: str, values: str) -> str:
        return f"has({values}, {key})"

    def cast(self, sql: str, want: str) -> str:
        if want == STRING:
            return f"CAST({sql} AS Nullable(String))"
        return f"accurateCastOrNull({sql}, '{_SQL_TYPE[want]}')"

    def to_int64(self, sql: str) -> str:
        return f"toInt64({sql})"

    def to_double(self, sql: str) -> str:
        return f"toFloat64({sql})"

    def parse_number(self, text: str, type_: str) -> str:
        return f"to{_SQL_TYPE[type_]}OrNull({text})"

    def weight(self, sql: str) -> str:
        return f"toFloat64({sql})"

    def json_text(self, doc: str, key: str) -> str:
        k, d = self.param(key, "String"), f"ifNull({doc}, '{{}}')"
        return (f"if(JSONHas({d}, {k}), if(JSONType({d}, {k}) = 'String', "
                f"JSONExtractString({d}, {k}), JSONExtractRaw({d}, {k})), NULL)")

    def format_time(self, fmt: Expr, seconds: Expr) -> str:
        """strftime directives, spelled as formatDateTime spells them."""
        assert isinstance(fmt, Literal) and isinstance(fmt.value, str)
        spelled = self.param(re.sub(r"%(.)", lambda m: "%" + _TIME_DIRECTIVES.get(m[1], m[1]), fmt.value), "String")
        t = self.expr(seconds)
        return (f"if({t} >= 0 AND {t} < {MAX_SECONDS}, "
                f"formatDateTime(toDateTime64(assumeNotNull({t}), 6, 'UTC'), {spelled}, 'UTC'), NULL)")

    def function(self, fn: str, args: list[str]) -> str:
        if fn == "contains":
            return f"(position({args[0]}, {args[1]}) > 0)"
        if fn == "concat":
            return "concat(" + ", ".join(f"ifNull(CAST({a} AS Nullable(String)), '')" for a in args) + ")"
        if fn in ("least", "greatest"):
            # DuckDB's skip NULLs: the extreme of the non-null arguments, NULL only when all are.
            return f"arrayReduce('{'min' if fn == 'least' else 'max'}', [{', '.join(args)}])"
        return super().function(fn, args)

    def micros(self, ts: str) -> str:
        return f"toUnixTimestamp64Micro({ts})"

    def int_div(self, a: str, b: str) -> str:
        return f"intDiv({a}, {b})"

    def checked(self, arithmetic: str) -> str:
        return f"({arithmetic})"

    def when(self, condition: str, value: str) -> str:
        return f"if({condition}, {value}, NULL)"

    def prior(self, value: str, window: str) -> str:
        return f"anyLast({value}) OVER ({window} ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)"

    def distinct_from(self, a: str, b: str) -> str:
        return f"NOT ({a} <=> {b})"

    def same_key(self, a: str, b: str) -> str:
        return f"isNotDistinctFrom({a}, {b})"

    def agg_if(self, fn: str, args: str, condition: str) -> str:
        return f"{fn}If({args}, {condition})"

    def sum_where(self, value: str, condition: str) -> str:
        return f"sumIf({value}, {condition})"

    def count_if(self, condition: str) -> str:
        return f"countIf({condition})"

    def quantile(self, value: str, level: float) -> str:
        return f"quantileExactInclusive({float(level)!r})({value})"

    def integer_sum(self, value: str) -> str:
        return f"sum({value})"

    def examples(self, n: int) -> str:
        if n == 1:
            # argMax skips a null trace id (a Nullable argument) and answers NULL over no rows, as DuckDB's arg_max;
            # sorting tuples for one example made a weighted COUNT over 10 M spans 5-6 x the hand-written SQL for
            # the same answer (bench/query.py --sampled --store clickhouse).
            return "[argMax(_tid, coalesce(_dur, 0))]"
        return f"arrayMap(x -> x.2, groupArraySortedIf({int(n)})((-coalesce(_dur, 0), assumeNotNull(_tid)), _tid IS NOT NULL))"

    def keep_groups(self, sql: str, q: SpanQuery, groups: Sequence[tuple[Any, ...]]) -> str:
        # Null-safe membership: has() compares NULL equal to NULL, as DuckDB's IS NOT DISTINCT FROM does.
        types = ", ".join(f"Nullable({_SQL_TYPE[g.expr.type]})" for g in q.groups)
        keys = self.param([tuple(row) for row in groups], f"Array(Tuple({types}))")
        return f"SELECT * FROM ({sql}) WHERE has({keys}, tuple({', '.join(f'g{i}' for i in range(len(q.groups)))}))"

    def explode(self, sql: str, column: str, sep: str, alias: str) -> str:
        return f"(SELECT *, arrayJoin(splitByChar('{sep}', ifNull({column}, ''))) AS {alias} FROM ({sql})) WHERE {alias} != ''"

    def field_at(self, text: str, sep: str, index: int) -> str:
        return f"splitByChar('{sep}', {text})[{int(index)}]"

    def distinct_list(self, value: str) -> str:
        return f"arraySort(groupUniqArray({value}))"

    def distinct_union(self, lists: str) -> str:
        return f"arraySort(groupUniqArrayArray({lists}))"

    def any_flag(self, flag: str) -> str:
        return f"max({flag})"

    def group(self, e: Expr) -> str:
        """A breakdown's values in the type the plan gives it: a function's own result type (``lengthUTF8``'s UInt64,
        ``arrayReduce``'s) would not match the typed group keys a series query is filtered by."""
        sql = self.expr(e)
        if isinstance(e, Call) and e.type in _SQL_TYPE:
            return self.nullable(sql, e.type)
        return sql

    def nullable(self, sql: str, type_: str) -> str:
        return f"CAST({sql} AS Nullable({_SQL_TYPE[type_]}))"

    def not_null(self, sql: str) -> str:
        return f"assumeNotNull({sql})"

    def flag(self, condition: str) -> str:
        return f"coalesce(toUInt8({condition}), 0)"

    def as_flag(self, condition: str) -> str:
        return f"toUInt8({condition})"

    def is_set(self, flag: str) -> str:
        return f"{flag} = 1"

    def tiny(self, n: int) -> str:
        return f"toInt8({int(n)})"

    def row_number(self, order: str) -> str:
        # ClickHouse inlines a CTE at each use, so the row numbers must come out the same both times: ordered by
        # (trace, span id), rows of one span id repeated in a trace share their numbers whichever order they get.
        return f"toInt64(row_number() OVER (ORDER BY {order})) - 1"


class ClickHouseDialect(SpanDialect):
    name = "clickhouse"
    render = ClickHouseRender
