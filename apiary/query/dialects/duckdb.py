"""DuckDB's spelling of the query plan: what `apiary.query.dialects.base` leaves to the engine.

Values travel as ``$n`` parameters. DuckDB's own answers are the reference
the ClickHouse dialect matches: ``quantile_cont`` percentiles, HyperLogLog
COUNT_DISTINCT, ``TRY`` arithmetic that overflows to NULL.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Sequence

from apiary.query.dialects.base import MAX_SECONDS, SpanDialect, SpanRender
from apiary.query.dialects.related import RelatedSQL
from apiary.query.plan import BOOLEAN, FLOAT, INTEGER, STRING, TIMESTAMP, Expr, SpanQuery

_SQL_TYPE = {STRING: "VARCHAR", INTEGER: "BIGINT", FLOAT: "DOUBLE", BOOLEAN: "BOOLEAN", TIMESTAMP: "TIMESTAMP"}


def ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


#: Related spans (relational fields). ``arg_min_null`` keeps a NULL value; ordering by the start alone took a
#: root. breakdown over 1 M spans from 674 to 458 ms against a (start, span id) key (``bench/query.py --relational``).
_RELATED = RelatedSQL(
    quote=ident, key=lambda c: c, flag=lambda c: f"bool_or(coalesce({c}, false))",
    pick=lambda match, value, _type, order: f"arg_min_null({value}, {order}) FILTER (WHERE coalesce({match}, false))",
    order=lambda ts: f"epoch_us({ts})")


def json_pointer(key: str) -> str:
    return "/" + key.replace("~", "~0").replace("/", "~1")


class DuckDBRender(SpanRender):
    PHYSICAL = re.compile(r"a[0-9]+")
    SQL_TYPE = _SQL_TYPE
    BINARY = {"eq": "=", "ne": "<>", "lt": "<", "le": "<=", "gt": ">", "ge": ">=", "add": "+", "sub": "-", "mul": "*",
              "mod": "%"}
    FUNCTIONS = {"starts_with": "starts_with", "ends_with": "suffix", "contains": "contains", "lower": "lower",
                 "upper": "upper", "length": "length", "coalesce": "coalesce", "concat": "concat", "least": "least",
                 "greatest": "greatest"}
    CALCULATED: dict[str, Callable[[list[str]], str]] = {
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
    NAMES = {"nullif": "nullif", "ifnull": "coalesce", "any": "any_value", "uniq": "approx_count_distinct", "ln": "ln",
             "arg_min": "arg_min"}
    RELATED = _RELATED
    SUMMARY_MERGED = True
    COUNT_BY_WINDOW = False

    def quote(self, name: str) -> str:
        return ident(name)

    def param(self, value: Any) -> str:
        self.params.append(value)
        return f"${len(self.params)}"

    def float_param(self, value: float) -> str:
        return f"CAST({self.param(float(value))} AS DOUBLE)"

    def number_param(self, value: float) -> str:
        return self.param(value)

    def limit_param(self, value: int) -> str:
        return self.param(value)

    def literal(self, value: Any, type_: str) -> str:
        return f"CAST({self.param(value)} AS {_SQL_TYPE[type_]})"

    def list_param(self, values: Sequence[str]) -> str:
        return self.param(list(values))

    def in_list(self, key: str, values: str) -> str:
        return f"{key} IN (SELECT unnest(CAST({values} AS VARCHAR[])))"

    def cast(self, sql: str, want: str) -> str:
        if want == STRING:
            return f"CAST({sql} AS VARCHAR)"
        return f"TRY_CAST({sql} AS {_SQL_TYPE[want]})"

    def to_int64(self, sql: str) -> str:
        return f"CAST({sql} AS BIGINT)"

    def to_double(self, sql: str) -> str:
        return f"CAST({sql} AS DOUBLE)"

    def parse_number(self, text: str, type_: str) -> str:
        return self.cast(text, type_)

    def weight(self, sql: str) -> str:
        return sql

    def json_text(self, doc: str, key: str) -> str:
        return f"json_extract_string({doc}, {self.param(json_pointer(key))})"

    def format_time(self, fmt: Expr, seconds: Expr) -> str:
        f, s = self.expr(fmt), self.expr(seconds)
        return (f"(CASE WHEN {s} >= 0 AND {s} < {MAX_SECONDS} THEN "
                f"strftime(make_timestamp(CAST({s} * 1000000 AS BIGINT)), {f}) END)")

    def micros(self, ts: str) -> str:
        return f"epoch_us({ts})"

    def int_div(self, a: str, b: str) -> str:
        return f"({a}) // {b}"

    def checked(self, arithmetic: str) -> str:
        # TRY: an integer result past 64 bits (or the smallest integer % -1) is NULL, as a division by zero is.
        return f"TRY({arithmetic})"

    def when(self, condition: str, value: str) -> str:
        return f"CASE WHEN {condition} THEN {value} END"

    def prior(self, value: str, window: str) -> str:
        return f"lag({value} IGNORE NULLS) OVER ({window})"

    def distinct_from(self, a: str, b: str) -> str:
        return f"{a} IS DISTINCT FROM {b}"

    def same_key(self, a: str, b: str) -> str:
        return f"{a} IS NOT DISTINCT FROM {b}"

    def agg_if(self, fn: str, args: str, condition: str) -> str:
        return f"{fn}({args}) FILTER (WHERE {condition})"

    def count_if(self, condition: str) -> str:
        return f"count(*) FILTER (WHERE {condition})"

    def quantile(self, value: str, level: float) -> str:
        return f"quantile_cont({value}, {float(level)!r})"

    def integer_sum(self, value: str) -> str:
        # DuckDB widens an integer sum to HUGEINT (past 64 bits: null)
        return f"TRY_CAST(sum({value}) AS BIGINT)"

    def examples(self, n: int) -> str:
        # arg_max with n > 1 keeps a heap per group: ~2x the cost of n = 1 at 10 M rows. With n = 1 it skips the
        # rows whose trace id is null by itself: a FILTER saying so made a weighted AVG over 10 M spans 1.4-1.7 x
        # the hand-written SQL for the same answer, against 1.2 x without (bench/query.py --sampled).
        if n == 1:
            return "list_value(arg_max(_tid, _dur))"
        return f"arg_max(_tid, coalesce(_dur, 0), {int(n)}) FILTER (WHERE _tid IS NOT NULL)"

    def keep_groups(self, sql: str, q: SpanQuery, groups: Sequence[tuple[Any, ...]]) -> str:
        cols = []
        for i, g in enumerate(q.groups):
            values = [row[i] for row in groups]
            cols.append(f"unnest(CAST({self.param(values)} AS {_SQL_TYPE[g.expr.type]}[])) AS k{i}")
        return f"SELECT b.* FROM ({sql}) b SEMI JOIN (SELECT {', '.join(cols)}) k ON " + " AND ".join(
            f"b.g{i} IS NOT DISTINCT FROM k.k{i}" for i in range(len(q.groups)))

    def explode(self, sql: str, column: str, sep: str, alias: str) -> str:
        return f"(SELECT *, unnest(string_split({column}, '{sep}')) AS {alias} FROM ({sql}))"

    def field_at(self, text: str, sep: str, index: int) -> str:
        return f"split_part({text}, '{sep}', {int(index)})"

    def distinct_list(self, value: str) -> str:
        return f"list_sort(list_distinct(list({value})))"

    def distinct_union(self, lists: str) -> str:
        return f"list_sort(list_distinct(flatten(list({lists}))))"

    def distinct_union_row(self, values: str) -> str:
        """One row's list, as `distinct_union` gives a group's: sorted (an upsert appends in arrival order)."""
        return f"list_sort(list_distinct({values}))"

    def any_flag(self, flag: str) -> str:
        return f"bool_or({flag})"

    def reused(self, name: str, sql: str) -> str:
        return f"{name} AS MATERIALIZED ({sql})"

    def inlined(self, name: str, sql: str) -> str:
        return f"{name} AS NOT MATERIALIZED ({sql})"


class DuckDBDialect(SpanDialect):
    name = "duckdb"
    render = DuckDBRender
