"""Logs Insights queries: parsed with ``insights.lark``, compiled to parameterised SQL in the log store's dialect.

Each command of the pipeline becomes one CTE over the previous one, so a
``filter`` after a ``parse`` sees the parsed fields and a ``sort`` after
``stats`` sees its aggregates, exactly in the order the user wrote them.
A field the query never defined is looked up the way Insights discovers
fields: in the JSON of the message (``level`` -> ``$.level``), then in the
record's attributes (OTLP). Values the user typed travel as parameters;
field names become quoted identifiers.

The pipeline of CTEs does not fit the span plan (``apiary/query/plan.py``),
which has one scan and one grouping; the functions whose spelling differs
between DuckDB and ClickHouse come from `LogDialect`. The SQL only ever
reads the ``logs`` table. Running a query (the job registry behind
``StartQuery``/``GetQueryResults``) is the CloudWatch receiver's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lark import Lark, Token, Tree
from lark.exceptions import LarkError

from apiary.input_limits import InputError, check_expression
from apiary.query.dialects.logs import LogDialect, log_dialect_for

# cache=True: Lark keeps the LALR tables in the temp directory; building them was ~0.22 s of every start-up
# (bench/testing_startup.py), loading them takes ~0.03 s.
_PARSER = Lark(Path(__file__).with_name("insights.lark").read_text(), parser="lalr", propagate_positions=True,
               cache=True)

DEFAULT_LIMIT = 1000
MAX_LIMIT = 10_000
BUILTINS = {"@timestamp": ("ts", "time"), "@message": ("msg", "str"), "@logStream": ("stream", "str"),
            "@log": ("grp", "str"), "@ingestionTime": ("ingested", "time"), "@ptr": ("ptr", "str"),
            # Apiary's own: the trace a line belongs to (W3C spelling), its span, its level.
            "@traceId": ("trace", "str"), "@spanId": ("span", "str"), "@severity": ("sev", "str")}
_AGGS = {"count", "count_distinct", "avg", "sum", "min", "max", "pct", "percentile", "stddev", "earliest", "latest"}
_UNITS_US = {"ms": 1_000, "s": 1_000_000, "m": 60_000_000, "h": 3_600_000_000, "d": 86_400_000_000,
             "w": 604_800_000_000}
_UNITS_MONTHS = {"mo": 1, "q": 3, "y": 12}


class QueryError(ValueError):
    """The query does not parse or refers to something this subset lacks; the message says where."""


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@dataclass
class Compiled:
    text: str
    ctes: list[str]
    params: list[Any]
    select: str
    select_params: list[Any]
    matched_cte: str
    columns: list[str]
    limit: int
    is_stats: bool
    dialect: str


@dataclass
class _Expr:
    sql: str
    params: list[Any]
    kind: str  # num | str | time | bool | any


class _Compiler:
    def __init__(self, text: str, dialect: LogDialect) -> None:
        self.text = text
        self.d = dialect
        self.ctes: list[str] = []
        self.params: list[Any] = []
        self.columns: dict[str, str] = {k: v[0] for k, v in BUILTINS.items()}  # user name -> physical column
        self.kinds: dict[str, str] = {k: v[1] for k, v in BUILTINS.items()}
        self.raw = True  # the JSON of each message is still at hand (no stats yet)
        self.display: list[str] | None = None
        self.fields_seen: list[str] = []
        self.order: list[tuple[str, list[Any], str]] = []
        self.limit: int | None = None
        self.is_stats = False
        self.matched_cte = "c0"
        self._n = 0

    # -- helpers ----------------------------------------------------------------------------

    def source(self, node: Tree | Token) -> str:
        meta = getattr(node, "meta", None)
        if meta is not None and not getattr(meta, "empty", True):
            return self.text[meta.start_pos:meta.end_pos]
        if isinstance(node, Token):
            return str(node)
        return ""

    def _cte(self, body: str, params: list[Any]) -> None:
        self._n += 1
        self.ctes.append(f"c{self._n} AS ({body.replace('{prev}', f'c{self._n - 1}')})")
        self.params += params

    @property
    def prev(self) -> str:
        return f"c{self._n}"

    def _new_column(self, name: str, kind: str) -> str:
        physical = f"f{len(self.columns)}_{re.sub(r'[^A-Za-z0-9_]', '_', name)[:40]}"
        self.columns[name] = physical
        self.kinds[name] = kind
        return physical

    # -- expressions ------------------------------------------------------------------------

    def name_of(self, node: Tree) -> str:
        tok = node.children[0]
        s = str(tok)
        return s[1:-1] if s.startswith("`") else s

    def field(self, name: str) -> _Expr:
        if name in self.columns:
            return _Expr(quote(self.columns[name]), [], self.kinds.get(name, "any"))
        if not self.raw:
            raise QueryError(f"field {name!r} is not defined after stats; the fields there are: "
                             + ", ".join(n for n in self.columns))
        path = "$." + ".".join(f'"{p}"' if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", p) else p
                                for p in name.split("."))
        d = self.d
        return _Expr(f"coalesce({d.json_text('_json', '?')}, {d.json_text('_attrs', '?')})", [path, path], "any")

    def expr(self, node: Tree | Token) -> _Expr:
        if isinstance(node, Token):
            raise QueryError(f"unexpected {str(node)!r}")
        kind = node.data
        ch = node.children
        if kind in ("or_", "and_"):
            parts = [self.expr(c) for c in ch]
            if len(parts) == 1:
                return parts[0]
            op = " OR " if kind == "or_" else " AND "
            return _Expr("(" + op.join(self.boolean(p).sql for p in parts) + ")", sum((p.params for p in parts), []), "bool")
        if kind == "not_":
            e = self.boolean(self.expr(ch[0]))
            return _Expr(f"(NOT coalesce({e.sql}, false))", e.params, "bool")
        if kind == "arith":
            if len(ch) == 1:
                return self.expr(ch[0])
            out = self.num(self.expr(ch[0]))
            sql, params = out.sql, list(out.params)
            for op, operand in zip(ch[1::2], ch[2::2]):
                e = self.num(self.expr(operand))
                sql = f"({sql} {str(op)} {e.sql})"
                params += e.params
            return _Expr(sql, params, "num")
        if kind == "neg":
            e = self.num(self.expr(ch[0]))
            return _Expr(f"(-{e.sql})", e.params, "num")
        if kind == "number":
            return _Expr("?", [float(str(ch[0]))], "num")
        if kind == "string":
            return _Expr("?", [_unquote(str(ch[0]))], "str")
        if kind == "duration":
            return _Expr("?", [str(ch[0])], "duration")
        if kind == "field":
            return self.field(self.name_of(ch[0]))
        if kind == "compare":
            return self.compare(self.expr(ch[0]), str(ch[1]), self.expr(ch[2]))
        if kind in ("like", "not_like"):
            e = self.text_of(self.expr(ch[0]))
            pat = str(ch[1])
            if pat.startswith("/"):
                body, flags = pat[1:pat.rindex("/")], pat[pat.rindex("/") + 1:]
                flags = "".join(f for f in flags if f in "ims")
                sql = self.d.regex_match(e.sql, "?")
                params = e.params + [f"(?{flags}){body}" if flags else body]
            else:
                sql = self.d.contains(e.sql, "?")
                params = e.params + [_unquote(pat)]
            if kind == "not_like":
                sql = f"NOT coalesce({sql}, false)"
            return _Expr(sql, params, "bool")
        if kind in ("in_", "not_in"):
            left = self.expr(ch[0])
            values = [self.expr(c) for c in ch[1:]]
            numeric = all(v.kind == "num" for v in values)
            left = self.num(left) if numeric else self.text_of(left)
            sql = f"{left.sql} {'NOT ' if kind == 'not_in' else ''}IN ({', '.join('?' for _ in values)})"
            return _Expr(sql, left.params + [v.params[0] for v in values], "bool")
        if kind == "call":
            return self.call(str(ch[0]).lower(), [c for c in ch[1:]], node)
        raise QueryError(f"unsupported expression {self.source(node)!r}")

    def num(self, e: _Expr) -> _Expr:
        if e.kind in ("num", "bool"):
            return e
        if e.kind == "time":
            return _Expr(self.d.epoch_ms(e.sql), e.params, "num")
        return _Expr(self.d.to_double(e.sql), e.params, "num")

    def text_of(self, e: _Expr) -> _Expr:
        if e.kind in ("str", "any"):
            return e
        return _Expr(self.d.to_text(e.sql), e.params, "str")

    def boolean(self, e: _Expr) -> _Expr:
        if e.kind == "bool":
            return e
        return _Expr(f"({self.d.to_boolean(e.sql)})", e.params, "bool")

    def compare(self, left: _Expr, op: str, right: _Expr) -> _Expr:
        sql_op = "<>" if op == "!=" else op
        if "num" in (left.kind, right.kind):
            left, right = self.num(left), self.num(right)
        elif "time" in (left.kind, right.kind):
            if left.kind != "time":
                left = _Expr(self.d.to_timestamp(left.sql), left.params, "time")
            if right.kind != "time":
                right = _Expr(self.d.to_timestamp(right.sql), right.params, "time")
        else:
            left, right = self.text_of(left), self.text_of(right)
        return _Expr(f"({left.sql} {sql_op} {right.sql})", left.params + right.params, "bool")

    def call(self, fn: str, args: list[Any], node: Tree) -> _Expr:
        if fn == "bin":
            if len(args) != 1:
                raise QueryError("bin() takes one period, e.g. bin(5m)")
            period = self.expr(args[0])
            if period.kind != "duration":
                raise QueryError("bin() takes a period such as 30s, 5m, 1h or 1d")
            m = re.fullmatch(r"(\d+)(ms|mo|[smhdwqy])", str(period.params[0]))
            assert m is not None
            n, unit = int(m.group(1)), m.group(2)
            ts = quote(self.columns["@timestamp"]) if "@timestamp" in self.columns else None
            if ts is None:
                raise QueryError("bin() needs @timestamp, which is not available here")
            if unit in _UNITS_MONTHS:
                return _Expr(self.d.bin_months(ts, "?"), [n * _UNITS_MONTHS[unit]], "time")
            return _Expr(self.d.bin_us(ts, "?"), [n * _UNITS_US[unit]], "time")
        exprs = [self.expr(a) for a in args]
        if fn == "ispresent":
            return _Expr(f"({exprs[0].sql} IS NOT NULL)", exprs[0].params, "bool")
        if fn == "isempty":
            e = self.text_of(exprs[0])
            return _Expr(f"(coalesce({e.sql}, '') = '')", e.params, "bool")
        if fn == "isblank":
            e = self.text_of(exprs[0])
            return _Expr(f"(trim(coalesce({e.sql}, '')) = '')", e.params, "bool")
        if fn in ("strlen", "tolower", "toupper", "trim"):
            e = self.text_of(exprs[0])
            if fn == "strlen":
                return _Expr(self.d.text_length(e.sql), e.params, "num")
            sql = {"tolower": "lower", "toupper": "upper", "trim": "trim"}[fn]
            return _Expr(f"{sql}({e.sql})", e.params, "str")
        if fn in ("abs", "floor", "ceil", "round", "sqrt", "log"):
            e = self.num(exprs[0])
            return _Expr(self.d.ln(e.sql) if fn == "log" else f"{fn}({e.sql})", e.params, "num")
        if fn == "concat":
            parts = [self.text_of(e) for e in exprs]
            return _Expr("concat(" + ", ".join(p.sql for p in parts) + ")", sum((p.params for p in parts), []), "str")
        if fn in ("coalesce", "greatest", "least"):
            return _Expr(f"{fn}(" + ", ".join(e.sql for e in exprs) + ")", sum((e.params for e in exprs), []), exprs[0].kind)
        raise QueryError(f"unknown function {fn}() in {self.source(node)!r}")

    # -- commands ---------------------------------------------------------------------------

    def command(self, node: Tree) -> None:
        handler = getattr(self, f"cmd_{node.data}", None)
        if handler is None:
            raise QueryError(f"unsupported command in {self.source(node)!r}")
        handler(node)

    def _define(self, items: list[Tree]) -> list[str]:
        """Columns for ``fields``/``display`` items; a name defined before is replaced in place."""
        names: list[str] = []
        replaces: list[tuple[str, list[Any]]] = []
        selects: list[tuple[str, list[Any]]] = []
        for item in items:
            expr_node = item.children[0]
            alias = self.name_of(item.children[1]) if len(item.children) > 1 else None
            plain = _plain_field(expr_node)
            if alias is None and plain is not None and plain in self.columns:
                names.append(plain)
                continue
            e = self.expr(expr_node)
            name = alias or plain or self.source(expr_node)
            if name in self.columns and name not in BUILTINS:
                replaces.append((f"{e.sql} AS {quote(self.columns[name])}", e.params))
                self.kinds[name] = e.kind
            else:
                selects.append((f"{e.sql} AS {quote(self._new_column(name, e.kind))}", e.params))
            names.append(name)
        if replaces or selects:
            head = f"* REPLACE ({', '.join(r for r, _ in replaces)})" if replaces else "*"
            cols = ", ".join([head] + [sel for sel, _ in selects])
            self._cte(f"SELECT {cols} FROM {{prev}}", sum((p for _, p in replaces + selects), []))
        return names

    def cmd_fields(self, node: Tree) -> None:
        names = self._define(node.children)
        self.fields_seen += [n for n in names if n not in self.fields_seen]

    def cmd_display(self, node: Tree) -> None:
        self.display = self._define(node.children)

    def cmd_filter(self, node: Tree) -> None:
        e = self.boolean(self.expr(node.children[0]))
        self._cte(f"SELECT * FROM {{prev}} WHERE coalesce({e.sql}, false)", e.params)

    def cmd_parse_glob(self, node: Tree) -> None:
        src = self.text_of(self.expr(node.children[0]))
        glob = _unquote(str(node.children[1]))
        names = [self.name_of(n) for n in node.children[2:]]
        pieces = glob.split("*")
        if len(pieces) - 1 != len(names):
            raise QueryError(f"parse pattern {glob!r} has {len(pieces) - 1} wildcards but {len(names)} names after as")
        regex = "".join(re.escape(p) + ("(.*?)" if i < len(pieces) - 2 else "(.*)" if i == len(pieces) - 2 else "")
                        for i, p in enumerate(pieces))
        self._parse(src, regex, [(n, i + 1) for i, n in enumerate(names)])

    def cmd_parse_regex(self, node: Tree) -> None:
        src = self.text_of(self.expr(node.children[0]))
        raw = str(node.children[1])
        body = raw[1:raw.rindex("/")]
        body = re.sub(r"\(\?<([A-Za-z_][A-Za-z0-9_]*)>", r"(?P<\1>", body)
        try:
            groups = re.compile(body).groupindex
        except re.error as exc:
            raise QueryError(f"invalid regular expression {raw}: {exc}") from None
        if not groups:
            raise QueryError(f"parse {raw} names no fields: use named groups such as (?<user>\\S+)")
        self._parse(src, body, sorted(groups.items(), key=lambda kv: kv[1]))

    def _parse(self, src: _Expr, regex: str, groups: list[tuple[str, int]]) -> None:
        selects, params = [], []
        for name, idx in groups:
            col = self._new_column(name, "any")
            selects.append(f"{self.d.regex_extract(src.sql, '?', idx)} AS {quote(col)}")
            params += src.params + [regex]
        self._cte(f"SELECT *, {', '.join(selects)} FROM {{prev}}", params)

    def cmd_stats(self, node: Tree) -> None:
        aggs = [c for c in node.children if c.data == "agg"]
        groups = [c for c in node.children if c.data == "item"]
        self.matched_cte = self.prev
        selects: list[str] = []
        params: list[Any] = []
        new_columns: dict[str, str] = {}
        new_kinds: dict[str, str] = {}
        for g in groups:
            e = self.expr(g.children[0])
            name = self.name_of(g.children[1]) if len(g.children) > 1 else (_plain_field(g.children[0]) or self.source(g.children[0]))
            col = f"g{len(new_columns)}"
            new_columns[name], new_kinds[name] = col, e.kind
            selects.append(f"{e.sql} AS {quote(col)}")
            params += e.params
        for a in aggs:
            fn = str(a.children[0]).lower()
            rest = list(a.children[1:])
            alias = None
            if rest and isinstance(rest[-1], Tree) and rest[-1].data == "name":
                alias = self.name_of(rest.pop())
            star = bool(rest) and isinstance(rest[0], Token) and rest[0].type == "STAR"
            args = [] if star else [self.expr(r) for r in rest]
            sql, p, kind = self._aggregate(fn, args, star, a)
            name = alias or self.source(a).split(" as ")[0].split(" AS ")[0].strip()
            col = f"s{len(new_columns)}"
            new_columns[name], new_kinds[name] = col, kind
            selects.append(f"{sql} AS {quote(col)}")
            params += p
        group_by = f" GROUP BY {', '.join(str(i + 1) for i in range(len(groups)))}" if groups else ""
        self._cte(f"SELECT {', '.join(selects)} FROM {{prev}}{group_by}", params)
        self.columns, self.kinds = new_columns, new_kinds
        self.raw = False
        self.is_stats = True
        self.display = list(new_columns)
        self.order = []

    def _aggregate(self, fn: str, args: list[_Expr], star: bool, node: Tree) -> tuple[str, list[Any], str]:
        if fn not in _AGGS:
            raise QueryError(f"unknown aggregate {fn}() in {self.source(node)!r}; supported: {', '.join(sorted(_AGGS))}")
        if fn == "count":
            if star or not args:
                return "count(*)", [], "num"
            return f"count({args[0].sql})", args[0].params, "num"
        if fn == "count_distinct":
            return f"count(DISTINCT {args[0].sql})", args[0].params, "num"
        if not args:
            raise QueryError(f"{fn}() needs a field")
        if fn in ("pct", "percentile"):
            if len(args) != 2 or args[1].kind != "num" or args[1].sql != "?" or not 0 <= args[1].params[0] <= 100:
                raise QueryError(f"{fn}() takes a field and a percentile from 0 to 100, e.g. pct(latency, 95)")
            e = self.num(args[0])
            return self.d.percentile(e.sql, args[1].params[0] / 100), e.params, "num"
        if fn in ("earliest", "latest"):
            ts = quote(self.columns["@timestamp"])
            f = "arg_min" if fn == "earliest" else "arg_max"
            return self.d.arg_at(f, args[0].sql, ts), args[0].params, args[0].kind
        if fn in ("min", "max") and args[0].kind == "time":
            return f"{fn}({args[0].sql})", args[0].params, "time"
        e = self.num(args[0])
        if fn == "stddev":
            return self.d.stddev(e.sql), e.params, "num"
        return f"{fn}({e.sql})", e.params, "num"

    def cmd_sort(self, node: Tree) -> None:
        self.order = []
        for o in node.children:
            e = self.expr(o.children[0])
            direction = str(o.children[1]).upper() if len(o.children) > 1 else "ASC"
            if e.kind == "any":  # a discovered field: numbers sort as numbers (latency 110 after 90), then text
                num = self.num(e)
                self.order.append((num.sql, num.params, f"{direction} NULLS LAST"))
            self.order.append((e.sql, e.params, f"{direction} NULLS LAST"))

    def cmd_limit(self, node: Tree) -> None:
        n = int(str(node.children[0]))
        if not 1 <= n <= MAX_LIMIT:
            raise QueryError(f"limit must be between 1 and {MAX_LIMIT}")
        self.limit = n

    # -- the whole query --------------------------------------------------------------------

    def compile(self, tree: Tree, default_limit: int | None) -> Compiled:
        for cmd in tree.children:
            self.command(cmd)
        if self.display is not None:
            shown = self.display
        elif self.fields_seen:
            shown = self.fields_seen
        else:
            shown = ["@timestamp", "@message"]
        if not self.is_stats and "@ptr" not in shown:
            shown = shown + ["@ptr"]
        for name in shown:
            if name not in self.columns:
                self.field(name)  # raises the helpful error when it cannot exist
        if not self.is_stats:
            self.matched_cte = self.prev
        cols = []
        params: list[Any] = []
        for name in shown:
            if name in self.columns:
                cols.append(f"{quote(self.columns[name])} AS {quote(name)}")
            else:
                e = self.field(name)
                cols.append(f"{e.sql} AS {quote(name)}")
                params += e.params
        order = self.order or ([] if self.is_stats else [(quote(self.columns["@timestamp"]), [], "DESC")])
        if self.is_stats and not self.order:
            order = [(f"{i + 1}", [], "ASC") for i in range(len(shown))]
        select = f"SELECT {', '.join(cols)} FROM {self.prev}"
        if order:
            select += " ORDER BY " + ", ".join(f"{sql} {d}" for sql, _, d in order)
            for _, p, _ in order:
                params += p
        limit = self.limit or default_limit or (MAX_LIMIT if self.is_stats else DEFAULT_LIMIT)
        select += " LIMIT ?"
        params.append(limit)
        return Compiled(self.text, self.ctes, self.params, select, params, self.matched_cte, shown, limit, self.is_stats,
                        self.d.name)


def _plain_field(node: Any) -> str | None:
    """The field name when an expression is just one field reference."""
    while isinstance(node, Tree) and node.data in ("or_", "and_", "arith") and len(node.children) == 1:
        node = node.children[0]
    if isinstance(node, Tree) and node.data == "field":
        tok = str(node.children[0].children[0])
        return tok[1:-1] if tok.startswith("`") else tok
    return None


def _unquote(s: str) -> str:
    return re.sub(r"\\(.)", r"\1", s[1:-1])


def compile_query(text: str, default_limit: int | None = None, dialect: str = "duckdb") -> Compiled:
    """``text`` compiled for the store whose dialect is ``dialect``; `QueryError` says what is wrong."""
    try:
        check_expression(text, "query")
        tree = _PARSER.parse(text)
    except InputError as exc:
        raise QueryError(str(exc)) from None
    except LarkError as exc:
        col = getattr(exc, "column", None)
        tok = getattr(exc, "token", None)
        where = f" at character {col}" if col is not None else ""
        got = f": unexpected {str(tok)!r}" if tok is not None else ""
        raise QueryError(f"unexpected symbol{where}{got} in query {text!r}") from None
    return _Compiler(text, log_dialect_for(dialect)).compile(tree, default_limit)


def base_cte(d: LogDialect, env: str, groups: list[str], start_s: int, end_s: int) -> tuple[str, list[Any]]:
    """``c0``: the events of ``groups`` in the window, under the names the compiler uses (``ts``, ``msg``, ...)."""
    sql = (f"c0 AS (SELECT \"timestamp\" AS ts, message AS msg, log_stream AS stream, log_group AS grp, "
           f"ingestion_time AS ingested, {d.to_text('seq')} AS ptr, trace_id AS trace, span_id AS span, "
           f"severity_text AS sev, "
           f"CASE WHEN {d.starts_with_brace('message')} AND {d.json_valid('message')} THEN message END AS _json, "
           f"attributes AS _attrs FROM logs WHERE _env = ? AND {d.in_array('?', 'log_group')} "
           f"AND \"timestamp\" >= {d.from_epoch_us('?')} AND \"timestamp\" <= {d.from_epoch_us('?')})")
    return sql, [env, list(groups), start_s * 1_000_000, end_s * 1_000_000 + 999_999]


def to_sql(c: Compiled, env: str, groups: list[str], start_s: int, end_s: int) -> tuple[str, list[Any], str, list[Any]]:
    """(results SQL, params, counts SQL, params) for one run, bound for the dialect ``c`` was compiled for."""
    d = log_dialect_for(c.dialect)
    base, base_params = base_cte(d, env, groups, start_s, end_s)
    with_ = "WITH " + ", ".join([base] + c.ctes) + " "
    results = with_ + c.select
    counts = (with_ + f"SELECT (SELECT count(*) FROM c0) AS scanned, (SELECT count(*) FROM {c.matched_cte}) AS matched, "
              f"(SELECT coalesce(sum({d.text_length('msg')}), 0) FROM c0) AS size")
    return (*d.bind(results, base_params + c.params + c.select_params), *d.bind(counts, base_params + c.params))
