"""Logs Insights queries: parsed with ``insights.lark``, compiled to parameterised SQL in the log store's dialect.

Each command of the pipeline becomes one CTE over the previous one, so a
``filter`` after a ``parse`` sees the parsed fields and a ``sort`` after
``stats`` sees its aggregates, exactly in the order the user wrote them.
A field the query never defined is looked up the way Insights discovers
fields: in the JSON of the message (``level`` -> ``$.level``), then in the
record's attributes (OTLP); a dotted name (``user.id``) both as a nested path
and as one key holding dots. It is extracted once, into a CTE column of its
own, the first time the query names it. Functions live in
``insights_functions.py``, the Lambda and VPC flow-log fields in
``insights_fields.py``. Values the user typed travel as parameters; field
names become quoted identifiers.

A subquery (``filter f in (...)``) and the right side of a ``join`` are
queries of their own, compiled by a child compiler into CTEs named apart
(``q0_1``, ...) over a scan of their own log groups (`insights_subquery`).

The pipeline of CTEs does not fit the span plan (``apiary/query/plan.py``),
which has one scan and one grouping; the functions whose spelling differs
between DuckDB and ClickHouse come from `LogDialect`. The SQL only ever
reads the ``logs`` table, and ``lookup_rows`` for the ``lookup`` command.
Running a query (the job registry behind ``StartQuery``/``GetQueryResults``)
is the CloudWatch receiver's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Mapping

from lark import Lark, Token, Tree
from lark.exceptions import LarkError

from apiary.input_limits import InputError, check_expression
from apiary.query import insights_anomaly, insights_fields, insights_pattern, insights_subquery
from apiary.query.dialects.logs import LogDialect, log_dialect_for
from apiary.query.insights_expr import Expr as _Expr
from apiary.query.insights_expr import QueryError, boolean, num, text
from apiary.query.insights_functions import render, scalar
from apiary.query.tag_filter import MAX_FILTERS as MAX_TAG_FILTERS
from apiary.query.tag_filter import BadTagFilter, TagFilter, all_match

# cache=True: Lark keeps the LALR tables in the temp directory; building them was ~0.22 s of every start-up
# (bench/testing_startup.py), loading them takes ~0.03 s.
_PARSER = Lark(Path(__file__).with_name("insights.lark").read_text(), parser="lalr", propagate_positions=True,
               cache=True)

#: The account id of `@log` (``account:group``); Apiary environments are not AWS accounts.
ACCOUNT = "000000000000"
DEFAULT_LIMIT = 1000
#: StartQuery's own limit on queryString (botocore's service model) is 10,000 characters; within it, a
#: query of more terms than this would nest SQL deeper than the databases' expression limits.
MAX_QUERY_LENGTH = 10_000
MAX_TERMS = 1_000
MAX_LIMIT = 10_000
BUILTINS = {"@timestamp": ("ts", "time"), "@message": ("msg", "str"), "@logStream": ("stream", "str"),
            "@log": ("logid", "str"), "@ingestionTime": ("ingested", "time"), "@ptr": ("ptr", "str"),
            # Apiary's own: the trace a line belongs to (W3C spelling), its span, its level.
            "@traceId": ("trace", "str"), "@spanId": ("span", "str"), "@severity": ("sev", "str")}
_AGGS = {"count", "count_distinct", "avg", "sum", "min", "max", "pct", "percentile", "stddev", "earliest", "latest",
         "sortsfirst", "sortslast"}
#: The fields CloudWatch Logs indexes in every Standard log group by default (CWL_QuerySyntax-FilterIndex).
#: Apiary creates no other field indexes (it has no PutIndexPolicy), so `filterIndex` on any other field
#: finds every log group unindexed for it, and AWS skips such log groups.
DEFAULT_FIELD_INDEXES = ("@logStream", "@aws.region", "@aws.account", "@source.log", "@data_source_name",
                         "@data_source_type", "@data_format", "traceId", "severityText", "attributes.session.id")
#: SOURCE's limits (CWL_QuerySyntax-Source): name prefixes and account identifiers per query.
MAX_SOURCE_PREFIXES = 5
MAX_SOURCE_ACCOUNTS = 20
LOG_GROUP_CLASSES = ("STANDARD", "INFREQUENT_ACCESS")
__all__ = ["QueryError", "Compiled", "Source", "compile_query", "to_sql", "base_cte"]


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True)
class Source:
    """The log groups a query's ``SOURCE logGroups(...) logGroupTags([...])`` selects; StartQuery then names none
    itself. A group must satisfy both selectors when both are given. ``SOURCE '/aws/lambda/db'`` names groups
    outright, as a subquery or a join's right side does."""

    names: tuple[str, ...] = ()  # none: whatever their names
    prefixes: tuple[str, ...] = ()  # none: every log group
    log_class: str = "STANDARD"
    accounts: tuple[str, ...] = ()  # none: this account
    tags: tuple[TagFilter, ...] = ()  # none: whatever their tags

    def select(self, names: list[str], tags_of: Callable[[str], Mapping[str, str]] = lambda _: {}) -> list[str]:
        """The groups among ``names`` (all of this environment's, every one a Standard group of `ACCOUNT`);
        ``tags_of`` gives a group's tags."""
        if self.log_class != "STANDARD" or (self.accounts and ACCOUNT not in self.accounts):
            return []
        return [n for n in names if (not self.names or n in self.names)
                and (not self.prefixes or any(n.startswith(p) for p in self.prefixes))
                and (not self.tags or all_match(self.tags, tags_of(n)))]


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
    source: Source | None = None
    #: `diff`: the period compared with (previous, previousday, previousweek or previousmonth); the base then
    #: holds both windows (`compared_window`)
    diff: str | None = None
    #: the lookup tables the query joins, in order: `to_sql` reads each as CTE ``lk<i>`` of the environment's rows
    lookups: tuple[str, ...] = ()
    #: the subqueries and join right sides, in order: `to_sql` scans each one's log groups as CTE ``q<i>_0``
    subqueries: tuple[insights_subquery.Subquery, ...] = ()


#: The columns of a lookup table by its name, or None when the environment has no such table.
LookupFields = Callable[[str], "tuple[str, ...] | None"]


class _Compiler:
    def __init__(self, text: str, dialect: LogDialect, lookup_fields: LookupFields | None = None,
                 parent: "_Compiler | None" = None, prefix: str = "c") -> None:
        self.text = text
        self.d = dialect
        self.lookup_fields = lookup_fields
        #: a subquery's compiler has the query around it as parent, and shares its lookups and subqueries (their
        #: CTE names are numbered across the whole query); its own CTEs are named with ``prefix``
        self.parent = parent
        self.prefix = prefix
        self.lookups: list[str] = parent.lookups if parent else []
        self.subqueries: list[insights_subquery.Subquery] = parent.subqueries if parent else []
        #: after `join`: the (left, right) aliases that name each side's fields, as in ``api.status``
        self.join_aliases: tuple[str, str] | None = None
        #: the commands after the one being compiled (a join looks ahead for the right side's fields used there)
        self.rest: list[Tree] = []
        #: the join's CTE (its index) and the left side's columns it may carry (`insights_subquery.narrow_join`)
        self.join_cte: tuple[int, list[str]] | None = None
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
        self.matched_cte = f"{prefix}0"
        self.deduped = False
        self.dedup: tuple[list[_Expr], list[tuple[str, list[Any], str]]] | None = None
        #: name -> column of the JSON text behind an `unnest`ed item (the item's own column shows its value)
        self.json_docs: dict[str, str] = {}
        self.source_selection: Source | None = None
        #: `addtotals col=true`: the fields summed in a summary row after the results
        self.column_totals: list[str] = []
        self.diff: str | None = None
        #: `anomaly` follows the `pattern`: it also gathers the values of each pattern's tokens
        self.anomaly = False
        #: columns a `filter ispresent(...)` has left with no null: `dedup` by them needs no group per null event
        self.present: set[str] = set()
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
        self.ctes.append(f"{self.prefix}{self._n} AS ({body.replace('{prev}', f'{self.prefix}{self._n - 1}')})")
        # a column written again (`fields x as f` over an earlier f) may hold nulls once more
        self.present = {c for c in self.present if f" AS {c}" not in body}
        self.params += params

    @property
    def prev(self) -> str:
        return f"{self.prefix}{self._n}"

    def _new_column(self, name: str, kind: str) -> str:
        physical = f"f{len(self.columns)}_{re.sub(r'[^A-Za-z0-9_]', '_', name)[:40]}"
        self.columns[name] = physical
        self.kinds[name] = kind
        return physical

    # -- expressions ------------------------------------------------------------------------

    def name_of(self, node: Tree) -> str:
        """The name as Insights shows it: backticks dropped (`` `user.id` `` is the field ``user.id``)."""
        return _display_name(str(node.children[0]))

    def path_of(self, node: Tree) -> list[str | int]:
        return _path(str(node.children[0]))

    def field(self, name: str, path: list[str | int] | None = None) -> _Expr:
        """A field by name: one the query defined, a discovered one (@-fields), or a key of the event's JSON."""
        if name in self.columns:
            return _Expr(quote(self.columns[name]), [], self.kinds.get(name, "any"))
        path = path if path is not None else _path(name)
        if self.join_aliases is not None and len(path) > 1 and path[0] == self.join_aliases[0]:
            # `api.status` after `join left=api`: the field status of the left side, the query's own events
            return self.field(name[len(self.join_aliases[0]) + 1:], path[1:])
        inside = self._json_head(path)
        if inside is not None:  # `j.a.b` where j = jsonParse(...)
            return _Expr(self.d.json_text(inside[0], "?"), [_json_path(inside[1])], "any")
        if not self.raw:
            raise QueryError(f"field {name!r} is not defined after stats; the fields there are: "
                             + ", ".join(n for n in self.columns))
        found = insights_fields.discovered(name, self.d)
        if found is not None and not insights_fields.is_flow_field(name):
            return self._extract(name, found)
        # Insights flattens nested JSON into dotted names, and OTel attributes keep dots inside their keys
        # (`user.id`): a dotted name is looked up both ways, in the message's JSON and in the attributes.
        d = self.d
        nested = _json_path(path)
        literal = _json_path([name]) if len(path) > 1 else None
        lookups = [(d.json_line(isinstance(path[0], int)), nested), ("_attrs", literal or nested)]
        if literal is not None:
            lookups += [(d.json_line(False), literal), ("_attrs", nested)]
        parts = [_Expr(found.sql, found.params, "any")] if found is not None else []
        parts += [_Expr(d.json_text(doc, "?"), [p], "any") for doc, p in lookups]
        lookup = _Expr(*render(lambda *sqls: d.first_present(list(sqls)), *parts), "any")
        return self._extract(name, lookup)

    def _json_document(self, name: str) -> str | None:
        """The column holding ``name`` as JSON text: a `jsonParse` result or an `unnest`ed item."""
        if name in self.json_docs:
            return quote(self.json_docs[name])
        if self.kinds.get(name) == "json":
            return quote(self.columns[name])
        return None

    def _json_head(self, path: list[str | int]) -> tuple[str, list[str | int]] | None:
        """(JSON column, the steps into it) when ``path`` starts with a JSON value the query made."""
        for cut in range(len(path) - 1, 0, -1):
            doc = self._json_document(_joined_name(path[:cut]))
            if doc is not None:
                return doc, path[cut:]
        return None

    def _extract(self, name: str, e: _Expr) -> _Expr:
        """``e`` computed once per event, in a column of its own that later commands read by name.

        A discovered field is a JSON lookup in two documents; a query naming it twice, or a function
        that writes its argument several times (``isIpv4InSubnet``), would parse the JSON each time.
        """
        col = self._new_column(name, e.kind)
        self._cte(f"SELECT *, {e.sql} AS {quote(col)} FROM {{prev}}", e.params)
        return _Expr(quote(col), [], e.kind)

    def expr(self, node: Tree | Token) -> _Expr:
        if isinstance(node, Token):
            raise QueryError(f"unexpected {str(node)!r}")
        kind = node.data
        ch = node.children
        d = self.d
        if kind in ("or_", "and_"):
            parts = [self.expr(c) for c in ch]
            if len(parts) == 1:
                return parts[0]
            op = " OR " if kind == "or_" else " AND "
            bools = [boolean(d, p) for p in parts]
            return _Expr("(" + op.join(b.sql for b in bools) + ")", sum((b.params for b in bools), []), "bool")
        if kind == "not_":
            e = boolean(d, self.expr(ch[0]))
            return _Expr(f"(NOT coalesce({e.sql}, false))", e.params, "bool")
        if kind == "arith":
            if len(ch) == 1:
                return self.expr(ch[0])
            out = num(d, self.expr(ch[0]))
            for op, operand in zip(ch[1::2], ch[2::2]):
                e = num(d, self.expr(operand))
                if str(op) == "%":
                    out = _Expr(*render(d.modulo, out, e), "num")
                elif str(op) == "/":
                    out = _Expr(f"({out.sql} / nullif({e.sql}, 0))", out.params + e.params, "num")
                else:
                    out = _Expr(f"({out.sql} {str(op)} {e.sql})", out.params + e.params, "num")
            return out
        if kind == "pow":
            base, exponent = num(d, self.expr(ch[0])), num(d, self.expr(ch[1]))
            return _Expr(*render(d.power, base, exponent), "num")
        if kind == "neg":
            e = num(d, self.expr(ch[0]))
            return _Expr(f"(-{e.sql})", e.params, "num")
        if kind == "number":
            return _Expr("?", [float(str(ch[0]))], "num", literal=str(ch[0]))
        if kind == "string":
            return _Expr("?", [_unquote(str(ch[0]))], "str")
        if kind == "duration":
            return _Expr("?", [str(ch[0])], "duration")
        if kind == "field":
            return self.field(self.name_of(ch[0]), self.path_of(ch[0]))
        if kind == "compare":
            return self.compare(self.expr(ch[0]), str(ch[1]), self.expr(ch[2]))
        if kind in ("like", "not_like"):
            e = text(d, self.expr(ch[0]))
            pat = ch[-1]
            if pat.type == "REGEX":
                body, flags = pat[1:pat.rindex("/")], pat[pat.rindex("/") + 1:]
                flags = "".join(f for f in flags if f in "ims")
                _check_regex(body, str(pat))
                sql = d.regex_match(e.sql, "?")
                params = e.params + [f"(?{flags}){body}" if flags else body]
            else:
                sql = d.contains(e.sql, "?")
                params = e.params + [_unquote(str(pat))]
            if kind == "not_like":
                sql = f"NOT coalesce({sql}, false)"
            return _Expr(sql, params, "bool")
        if kind in ("in_query", "not_in_query"):
            return insights_subquery.in_query(self, node, negate=kind == "not_in_query")
        if kind in ("in_", "not_in"):
            left = self.expr(ch[0])
            values = [self.expr(c) for c in ch[1:]]
            if all(v.kind == "num" for v in values):
                left = num(d, left)
            else:  # a list of text, or of text and numbers: compared as the text the user typed
                left, values = text(d, left), [text(d, v) for v in values]
            sql = f"{left.sql} {'NOT ' if kind == 'not_in' else ''}IN ({', '.join('?' for _ in values)})"
            return _Expr(sql, left.params + [v.params[0] for v in values], "bool")
        if kind == "call":
            fn = str(ch[0]).lower()
            if fn in _AGGS:
                raise QueryError(f"{fn}() is a stats function: use it in stats, as in stats {fn}(...)")
            args = [self.expr(c) for c in ch[1:]]
            ts = self.field("@timestamp") if "@timestamp" in self.columns else None
            return scalar(fn, args, d, ts, self.source(node))
        raise QueryError(f"unsupported expression {self.source(node)!r}")

    def compare(self, left: _Expr, op: str, right: _Expr) -> _Expr:
        d = self.d
        sql_op = "<>" if op == "!=" else op
        if "num" in (left.kind, right.kind) or "bool" in (left.kind, right.kind):
            left, right = num(d, left), num(d, right)
        elif "time" in (left.kind, right.kind):
            if left.kind != "time":
                left = _Expr(d.to_timestamp(left.sql), left.params, "time")
            if right.kind != "time":
                right = _Expr(d.to_timestamp(right.sql), right.params, "time")
        else:
            left, right = text(d, left), text(d, right)
        return _Expr(f"({left.sql} {sql_op} {right.sql})", left.params + right.params, "bool")

    # -- commands ---------------------------------------------------------------------------

    def command(self, node: Tree) -> None:
        handler = getattr(self, f"cmd_{node.data}", None)
        if self.deduped and node.data != "limit":
            raise QueryError(f"only limit may follow dedup, not {self.source(node)!r}")
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
            if name in self.columns and e.sql == quote(self.columns[name]):  # a discovered field, now extracted
                names.append(name)
                continue
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
        e = boolean(self.d, self.expr(node.children[0]))
        # WHERE drops rows whose condition is NULL, as Insights drops events lacking the field
        self._cte(f"SELECT * FROM {{prev}} WHERE {e.sql}", e.params)
        self.present |= {quote(self.columns[n]) for n in _present_fields(node.children[0]) if n in self.columns}

    def cmd_filter_index(self, node: Tree) -> None:
        """``filterIndex``: AWS scans only the log groups indexed on the field, and skips the rest. Apiary's only
        indexes are AWS's defaults, so on those it is `filter`; on any other field every group is skipped."""
        cond = _bare(node.children[0])
        equality = isinstance(cond, Tree) and ((cond.data == "compare" and str(cond.children[1]) == "=")
                                               or cond.data == "in_")
        name = _plain_field(cond.children[0]) if equality else None
        if name is None:
            raise QueryError(f"filterIndex takes an indexed field compared with = or in [...], such as "
                             f"filterIndex requestId = \"abc\", not {self.source(cond)!r}")
        if name in DEFAULT_FIELD_INDEXES:
            self.cmd_filter(node)
        else:
            self._cte("SELECT * FROM {prev} WHERE 1 = 0", [])

    def cmd_source(self, node: Tree) -> None:
        if self._n or self.source_selection is not None:  # pragma: no cover - the grammar puts it first, once
            raise QueryError("SOURCE must come first in the query")
        kinds = [sel.data for sel in node.children]
        if len(set(kinds)) < len(kinds):
            raise QueryError("SOURCE takes log group names, logGroups(...) and logGroupTags([...]) once each")
        source = Source()
        for sel in node.children:
            if sel.data == "source_groups":
                source = self._source_groups(sel, source)
            elif sel.data == "source_names":
                source = replace(source, names=tuple(_unquote(str(t)) for t in sel.children))
            else:
                source = replace(source, tags=self._source_tags(sel))
        self.source_selection = source

    def _source_tags(self, node: Tree) -> tuple[TagFilter, ...]:
        """``logGroupTags([{key: "k", values: ["v", ...]}, ...])``: AWS's TagFilter, written inside the query."""
        if not 1 <= len(node.children) <= MAX_TAG_FILTERS:
            raise QueryError(f"SOURCE logGroupTags takes 1 to {MAX_TAG_FILTERS} tag filters, such as "
                             "logGroupTags([{key: \"team\", values: [\"web\"]}])")
        filters = []
        for f in node.children:
            fields: dict[str, tuple[str, ...]] = {}
            for field in f.children:
                name = _unquote(str(field.children[0])) if field.children[0].type == "STRING" else str(field.children[0])
                if name in fields or name not in ("key", "values"):
                    raise QueryError(f"a tag filter of SOURCE logGroupTags holds key and values, once each, "
                                     f"as in {{key: \"team\", values: [\"web\"]}}; not {name!r} here")
                fields[name] = tuple(_unquote(str(t)) for t in field.children[1:])
            if len(fields.get("key", ())) != 1:
                raise QueryError("each tag filter of SOURCE logGroupTags names one key: {key: \"team\"}")
            try:
                filters.append(TagFilter(fields["key"][0], fields.get("values", ())))
            except BadTagFilter as exc:
                raise QueryError(f"SOURCE logGroupTags: {exc}") from None
        return tuple(filters)

    def _source_groups(self, node: Tree, source: Source) -> Source:
        values: dict[str, tuple[str, ...]] = {}
        for arg in node.children:
            key = str(arg.children[0])
            if key in values:
                raise QueryError(f"SOURCE names {key} twice")
            values[key] = tuple(_unquote(str(t)) for t in arg.children[1:])
        unknown = set(values) - {"namePrefix", "class", "logGroupClass", "accountIdentifiers", "accountIdentifier"}
        if unknown:
            raise QueryError(f"SOURCE logGroups() takes namePrefix, class and accountIdentifiers, not {sorted(unknown)[0]}")
        prefixes = values.get("namePrefix", ())
        accounts = values.get("accountIdentifiers", values.get("accountIdentifier", ()))
        classes = values.get("class", values.get("logGroupClass", ("STANDARD",)))
        if len(prefixes) > MAX_SOURCE_PREFIXES:
            raise QueryError(f"SOURCE takes at most {MAX_SOURCE_PREFIXES} name prefixes")
        if len(accounts) > MAX_SOURCE_ACCOUNTS:
            raise QueryError(f"SOURCE takes at most {MAX_SOURCE_ACCOUNTS} account identifiers")
        if len(classes) != 1 or classes[0].upper() not in LOG_GROUP_CLASSES:
            raise QueryError(f"SOURCE class is one of {', '.join(LOG_GROUP_CLASSES)}")
        return replace(source, prefixes=prefixes, log_class=classes[0].upper(), accounts=accounts)

    def cmd_pattern(self, node: Tree) -> None:
        """``pattern``: one row per pattern of the events so far (`insights_pattern`); later commands see its
        columns, as they see those of ``stats``."""
        d = self.d
        line = text(d, self.expr(node.children[0]))
        otel = quote(self.columns["@severity"]) if "@severity" in self.columns else None
        if self.diff is not None and not self.raw:
            raise QueryError("pattern | diff compares events: put stats after it, not before")
        self.matched_cte = self.prev
        shape = insights_pattern.masked(d, line)
        extra = (f", {otel} AS sev" if otel else "") + (", _period" if self.diff else "")
        tokens = insights_anomaly.token_values(d, line) if self.anomaly else None
        if tokens is not None:
            extra += f", {tokens.sql} AS t"
        self._cte(f"SELECT {shape.sql} AS p{extra} FROM {{prev}}", shape.params + (tokens.params if tokens else []))
        if tokens is not None:  # counts per shape with its first token anomaly (tv), for `anomaly`
            for body, params in insights_anomaly.token_ctes(d, otel is not None):
                self._cte(body, params)
            kept = ["n0", "n1"] + (["sv"] if otel else []) + ["tv"]
        else:  # counts per shape: in the query's window (n0) and, for diff, in the one compared with (n1)
            counts = ["sum(CASE WHEN _period = 0 THEN 1 ELSE 0 END) AS n0",
                      "sum(CASE WHEN _period = 1 THEN 1 ELSE 0 END) AS n1"] if self.diff else ["count(*) AS n0"]
            kept = [c.split(" AS ")[1] for c in counts] + (["sv"] if otel else [])
            self._cte(f"SELECT p, {', '.join(counts + (['max(sev) AS sv'] if otel else []))} FROM {{prev}} GROUP BY p",
                      [])
        self._merge_shapes(kept)
        label, label_params = insights_pattern.severity(d, "g", "max(sv)" if otel else None)
        ratio = d.fixed_text("sum(n0) / nullif(sum(sum(n0)) OVER (), 0)", 2)
        more = (", sum(n1) AS s4, sum(n0) - sum(n1) AS s5" if self.diff else "") + (", min(tv) AS s6" if tokens else "")
        self._cte(f"SELECT g AS g0, {ratio} AS s1, sum(n0) AS s2, {label} AS s3{more} FROM {{prev}} GROUP BY g",
                  label_params)
        # @ratio is written with two decimals, as AWS shows it (0.50); as text, a comparison converts it
        names, cols, kinds = list(insights_pattern.COLUMNS), ["g0", "s1", "s2", "s3"], ["str", "any", "num", "str"]
        if self.diff:
            names += list(insights_pattern.DIFF_COLUMNS)
            cols += ["s4", "s5"]
            kinds += ["num", "num"]
        self.columns = dict(zip(names, cols))
        self.kinds = dict(zip(names, kinds))
        self.json_docs = {}
        self.present = set()
        self.raw = False
        self.is_stats = True
        self.display = names
        self.order = [(quote("s2"), [], "DESC"), (quote("g0"), [], "ASC")]

    def _merge_shapes(self, kept: list[str]) -> None:
        """Each shape of the CTE before (columns p and ``kept``) with ``g``, the pattern it joins: shapes that are
        one word apart (`insights_pattern.WORD`) share the pattern with that word as ``<*>``. A shape takes the
        variant most other shapes share (then the first in text order), and keeps its own text when none does.

        Each step reads only the one before: ClickHouse inlines a CTE wherever it is named, so a CTE named twice
        scanned the events twice (2.2x the hand-written query, bench/insights.py).
        """
        d = self.d
        cols = ", ".join(kept)
        variants = d.token_variants("p", insights_pattern.WORD, insights_pattern.MIN_TOKENS)
        self._cte(f"SELECT p, {cols}, {variants} AS k FROM {{prev}}", [])  # (shape, variant) rows, and (shape, '')
        self._cte(f"SELECT p, {cols}, k, count(*) OVER (PARTITION BY k) AS c FROM {{prev}}", [])
        rank = d.to_text("1000000000 - c")
        firsts = ", ".join(f"max({c}) AS {c}" for c in kept)
        self._cte(f"SELECT p, {firsts}, coalesce(substring(min(CASE WHEN k <> '' AND c > 1 THEN "
                  f"concat(lpad({rank}, 10, '0'), k) END), 11), '') AS k FROM {{prev}} GROUP BY p", [])
        self._cte(f"SELECT p, {cols}, CASE WHEN k <> '' AND count(*) OVER (PARTITION BY k) > 1 THEN k ELSE p END "
                  f"AS g FROM {{prev}}", [])

    def cmd_diff(self, node: Tree) -> None:
        """Done by the `pattern` just before it (`compile` checks the order), which counts both periods."""

    def cmd_anomaly(self, node: Tree) -> None:
        """``pattern ... | anomaly`` (CWL_QuerySyntax-Anomaly): every pattern row kept, with the fields of
        `insights_anomaly.anomaly`; the `pattern` before it counted each pattern and its tokens in the baseline too
        (`compile` sets that up), its first token anomaly in column ``s6``."""
        c = self.columns
        sqls, params = insights_anomaly.anomaly(self.d, quote(c["@sampleCount"]), quote(c["@previousSampleCount"]),
                                                quote(c["@severityLabel"]), quote("s6"))
        names = list(insights_anomaly.ANOMALY_COLUMNS)
        cols = [f"a{i}" for i in range(len(names))]
        self._cte(f"SELECT *, {', '.join(f'{sql} AS {col}' for sql, col in zip(sqls, cols))} FROM {{prev}}", params)
        for name, col, kind in zip(names, cols, ("str", "str", "str", "num")):
            self.columns[name], self.kinds[name] = col, kind
        self.display = list(insights_pattern.COLUMNS) + names

    def cmd_lookup(self, node: Tree) -> None:
        """``lookup table lookup-field [as log-field], ... [OUTPUT field, ...]`` (CWL_QuerySyntax-Lookup): each event
        gains the output fields of the table's first record whose lookup fields equal the event's fields (exact,
        case-sensitive text); an event without a match keeps going, without them. An output field that the event
        already has is overwritten. Without OUTPUT, every column of the table that is not a lookup field is added."""
        table = str(node.children[0])
        keys = [c for c in node.children[1:] if isinstance(c, Tree) and c.data == "lookup_key"]
        outputs = [self.name_of(c) for c in node.children[1:] if isinstance(c, Tree) and c.data == "name"]
        columns = self.lookup_fields(table) if self.lookup_fields is not None else None
        if columns is None:
            raise QueryError(f"lookup table {table!r} does not exist: create it with CreateLookupTable")
        if not self.raw:
            raise QueryError("lookup enriches log events: put it before stats or pattern, not after")
        pairs = [(self.name_of(k.children[0]), k.children[-1]) for k in keys]
        table_keys = [t for t, _ in pairs]
        for name in table_keys + outputs:
            if name not in columns:
                raise QueryError(f"lookup table {table!r} has no field {name!r}; its fields are: {', '.join(columns)}")
        outputs = outputs or [c for c in columns if c not in table_keys]
        n = len(self.lookups)
        self.lookups.append(table)
        d = self.d
        # the event's side of each key as text, in a column (a JOIN condition compares columns): a field is one
        # already; anything else is computed into one
        left = [text(d, self.field(self.name_of(log_field), self.path_of(log_field))) for _, log_field in pairs]
        key_cols = self.key_columns(left, f"_lk{n}q")
        # the table's side: one row per key, the first record in file order
        first_row = d.arg_at("arg_min", "row", "row_no")
        selects = [f"{d.json_text('row', '?')} AS _lk{n}k{i}" for i in range(len(table_keys))]
        selects += [f"{d.json_text(first_row, '?')} AS _lk{n}v{j}" for j in range(len(outputs))]
        params: list[Any] = [_json_path([k]) for k in table_keys] + [_json_path([o]) for o in outputs]
        matched = (f"SELECT {', '.join(selects)}, 1 AS _lk{n}hit FROM lk{n} "
                   f"GROUP BY {', '.join(f'_lk{n}k{i}' for i in range(len(table_keys)))}")
        on = " AND ".join(f"p.{c} = m._lk{n}k{i}" for i, c in enumerate(key_cols))
        added = []
        for j, name in enumerate(outputs):
            added.append(f"CASE WHEN m._lk{n}hit = 1 THEN m._lk{n}v{j} END AS {quote(self._new_column(name, 'any'))}")
        self._cte(f"SELECT p.*, {', '.join(added)} FROM {{prev}} AS p LEFT JOIN ({matched}) AS m ON {on}", params)
        if self.display is None:
            shown = self.fields_seen or ["@timestamp", "@message"]
            self.fields_seen = shown + [o for o in outputs if o not in shown]
        else:
            self.display += [o for o in outputs if o not in self.display]

    def key_columns(self, keys: list[_Expr], tag: str) -> list[str]:
        """A column for each of ``keys``, as a JOIN condition compares columns: a field is one already; anything
        else is computed into one (named ``tag`` and its number)."""
        cols: list[str] = []
        computed: list[tuple[_Expr, str]] = []
        for i, e in enumerate(keys):
            if not e.params and re.fullmatch(r'"(?:[^"]|"")+"', e.sql):
                cols.append(e.sql)
            else:
                cols.append(f"{tag}{i}")
                computed.append((e, cols[-1]))
        if computed:
            self._cte(f"SELECT *, {', '.join(f'{e.sql} AS {c}' for e, c in computed)} FROM {{prev}}",
                      [p for e, _ in computed for p in e.params])
        return cols

    def cmd_join(self, node: Tree) -> None:
        """``join [type=inner|left] left=a right=b where a.f=b.g (query)`` (CWL_QuerySyntax-Join): `insights_subquery`."""
        insights_subquery.join(self, node)

    def cmd_unnest(self, node: Tree) -> None:
        """``unnest list into item``: one event per item of a JSON list (from `jsonParse`); a value that is no
        list is a list of one, as AWS documents. ``item`` shows the item's value; ``item.key`` looks into it."""
        src, into = node.children
        name = self.name_of(into)
        doc = self._json_source(src)
        if doc is None:  # no JSON value: the one item is the value itself
            e = self.expr(src)
            self._cte(f"SELECT *, {e.sql} AS {quote(self._new_column(name, e.kind))} FROM {{prev}}", e.params)
            self.json_docs.pop(name, None)
            return
        item = f"j{len(self.columns)}_{re.sub(r'[^A-Za-z0-9_]', '_', name)[:40]}"
        items, params = render(self.d.json_items, doc)
        self._cte(f"SELECT *, {items} AS {quote(item)} FROM {{prev}}", params)
        value = _Expr(*render(lambda *s: self.d.first_present(list(s)),
                              _Expr(self.d.json_text(quote(item), "?"), ["$"], "any"), _Expr(quote(item), [], "any")),
                      "any")
        self._cte(f"SELECT *, {value.sql} AS {quote(self._new_column(name, 'any'))} FROM {{prev}}", value.params)
        self.json_docs[name] = item

    def _json_source(self, node: Tree) -> _Expr | None:
        """The JSON text that ``node`` (a name) refers to, when it is a JSON value the query made, else None."""
        node = _bare(node)
        if not (isinstance(node, Tree) and node.data == "field"):
            return None
        name, path = self.name_of(node.children[0]), self.path_of(node.children[0])
        whole = self._json_document(name)
        if whole is not None:
            return _Expr(whole, [], "json")
        inside = self._json_head(path)
        if inside is None:
            return None
        return _Expr(*render(self.d.json_raw, _Expr(inside[0], [], "json"), _Expr("?", [_json_path(inside[1])], "str")),
                     "json")

    def cmd_addtotals(self, node: Tree) -> None:
        """``addtotals [fieldname=Name] [row=bool] [col=bool] [field, ...]`` (CWL_QuerySyntax-Addtotals): a column
        summing the fields in each row, and with ``col=true`` a summary row summing each field."""
        options = {"fieldname": "Total", "row": "true", "col": "false"}
        names: list[str] = []
        for child in node.children:
            if child.data == "totals_option":
                key, op, value = (str(c) for c in child.children)
                if key.lower() not in options or op != "=":
                    raise QueryError(f"addtotals takes fieldname=Name, row=true|false and col=true|false, "
                                     f"not {self.source(child)!r}")
                options[key.lower()] = value
            else:
                names.append(self.name_of(child))
        for flag in ("row", "col"):
            if options[flag].lower() not in ("true", "false"):
                raise QueryError(f"addtotals {flag}= takes true or false")
        if not names:  # every numeric field shown so far; @-fields are never numbers to add
            shown = self.display if self.display is not None else self.fields_seen
            names = [n for n in shown if n not in BUILTINS and self.kinds.get(n) in ("num", "any")]
        values = [num(self.d, self.field(n)) for n in names]
        if options["row"].lower() == "true":
            total = options["fieldname"]
            if values:
                present = " AND ".join(f"{v.sql} IS NULL" for v in values)
                added = " + ".join(f"coalesce({v.sql}, 0)" for v in values)
                e = _Expr(f"CASE WHEN {present} THEN NULL ELSE {added} END",
                          [p for v in values for p in v.params] * 2, "num")
            else:
                e = _Expr(self.d.to_double("NULL"), [], "num")
            self._cte(f"SELECT *, {e.sql} AS {quote(self._new_column(total, 'num'))} FROM {{prev}}", e.params)
            if self.display is not None:
                self.display = [n for n in self.display if n != total] + [total]
            else:
                self.fields_seen = [n for n in self.fields_seen if n != total] + [total]
            names.append(total)
        if options["col"].lower() == "true":
            self.column_totals = names

    def _totals_row(self, shown: list[str], order: list[tuple[str, list[Any], str]]) -> str:
        """The results, then one row of column totals (`addtotals col=true`) over the rows returned. Summed
        columns are shown as number text in both parts, so the two halves of the UNION have one type."""
        d = self.d
        summed = [n for n in shown if n in self.column_totals]
        rows, sums = [], []
        for name in shown:
            col = quote(name)
            if name in summed:
                rows.append(f"{d.number_text(d.to_double(col))} AS {col}")
                sums.append(d.number_text(f"sum({d.to_double(col)})") + f" AS {col}")
            else:
                rows.append(col)
                sums.append(f"NULL AS {col}")
        keys = ", ".join(f"_o{i} {direction}" for i, (_, _, direction) in enumerate(order)) or "1"
        sql = (f"SELECT {', '.join(quote(n) for n in shown)} FROM (SELECT {', '.join(rows)}, 0 AS _totals, "
               f"row_number() OVER (ORDER BY {keys}) AS _n FROM _results UNION ALL SELECT {', '.join(sums)}, "
               f"1 AS _totals, 0 AS _n FROM _results) ORDER BY _totals, _n")
        return sql

    def cmd_parse_glob(self, node: Tree) -> None:
        src = text(self.d, self.expr(node.children[0]))
        glob = _unquote(str(node.children[1]))
        names = [self.name_of(n) for n in node.children[2:]]
        pieces = glob.split("*")
        if len(pieces) - 1 != len(names):
            raise QueryError(f"parse pattern {glob!r} has {len(pieces) - 1} wildcards but {len(names)} names after as")
        regex = "".join(re.escape(p) + ("(.*?)" if i < len(pieces) - 2 else "(.*)" if i == len(pieces) - 2 else "")
                        for i, p in enumerate(pieces))
        self._parse(src, regex, [(n, i + 1) for i, n in enumerate(names)])

    def cmd_parse_regex(self, node: Tree) -> None:
        src = text(self.d, self.expr(node.children[0]))
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
        self.json_docs = {}
        self.raw = False
        self.is_stats = True
        self.display = list(new_columns)
        self.order = []

    def _aggregate(self, fn: str, args: list[_Expr], star: bool, node: Tree) -> tuple[str, list[Any], str]:
        d = self.d
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
            e = num(d, args[0])
            return d.percentile(e.sql, args[1].params[0] / 100), e.params, "num"
        if len(args) != 1:
            raise QueryError(f"{fn}() takes one field in {self.source(node)!r}")
        if fn in ("earliest", "latest"):
            if "@timestamp" not in self.columns:
                raise QueryError(f"{fn}() needs @timestamp, which is not available after stats")
            ts = quote(self.columns["@timestamp"])
            f = "arg_min" if fn == "earliest" else "arg_max"
            return d.arg_at(f, args[0].sql, ts), args[0].params, args[0].kind
        if fn in ("sortsfirst", "sortslast"):
            e = args[0]
            plain = "min" if fn == "sortsfirst" else "max"
            if e.kind != "any":
                return f"{plain}({e.sql})", e.params, e.kind
            # a discovered field sorts as `sort` does: numbers by value, before text
            n = num(d, e)
            by_number = d.arg_at("arg_min" if fn == "sortsfirst" else "arg_max", e.sql, n.sql)
            return f"coalesce({by_number}, {plain}({e.sql}))", e.params + n.params + e.params, "any"
        if fn in ("min", "max") and args[0].kind == "time":
            return f"{fn}({args[0].sql})", args[0].params, "time"
        e = num(d, args[0])
        if fn == "stddev":
            return d.stddev(e.sql), e.params, "num"
        return f"{fn}({e.sql})", e.params, "num"

    def _order_terms(self, e: _Expr, direction: str) -> list[tuple[str, list[Any], str]]:
        terms = []
        if e.kind == "any":  # a discovered field: numbers sort as numbers (latency 110 after 90), then text
            n = num(self.d, e)
            terms.append((n.sql, n.params, f"{direction} NULLS LAST"))
        terms.append((e.sql, e.params, f"{direction} NULLS LAST"))
        return terms

    def cmd_sort(self, node: Tree) -> None:
        self.order = []
        for o in node.children:
            e = self.expr(o.children[0])
            direction = str(o.children[1]).upper() if len(o.children) > 1 else "ASC"
            self.order += self._order_terms(e, direction)

    def cmd_dedup(self, node: Tree) -> None:
        """One event per distinct combination of the fields, the first in the current sort order.

        As in Insights, an event with a null in any of the fields is always kept, and only
        ``limit`` may follow.
        """
        keys = [self.field(self.name_of(n), self.path_of(n)) for n in node.children]
        if any(k.params for k in keys):  # pragma: no cover - fields are columns by now (`_extract`)
            raise QueryError("dedup takes field names")
        order = self.order or ([(quote(self.columns["@timestamp"]), [], "DESC")] if "@timestamp" in self.columns
                               else [(k.sql, k.params, "ASC") for k in keys])
        self.dedup = (keys, order)
        self.deduped = True

    def _dedup_cte(self, shown: list[str]) -> None:
        """The dedup of `cmd_dedup`, written last (only limit may follow it) over just the columns still needed:
        carrying every column of the event through it took most of its time (bench/insights.py, dedup)."""
        assert self.dedup is not None
        keys, order = self.dedup
        ts = quote(self.columns["@timestamp"]) if "@timestamp" in self.columns else None
        needed: list[str] = []
        for sql in [quote(self.columns[n]) for n in shown if n in self.columns] + [k.sql for k in keys] + \
                [sql for sql, _, _ in self.order] + [sql for sql, _, _ in order] + ([ts] if ts else []):
            for ident in re.findall(r'"(?:[^"]|"")+"', sql):
                if ident not in needed:
                    needed.append(ident)
        by = (ts, order[0][2].startswith("DESC")) if ts and len(order) == 1 and order[0][0] == ts else None
        nulls = " OR ".join(f"{k.sql} IS NULL" for k in keys)
        order_sql = ", ".join(f"{sql} {direction}" for sql, _, direction in order)
        order_params = [p for _, ps, _ in order for p in ps]
        if "@ptr" in self.columns and self.raw:
            # one pass: an event with a null key is a group of its own, told apart by its @ptr -- unless a
            # filter already dropped such events (a key fewer to hash: bench/insights.py dedup)
            unique = [] if all(k.sql in self.present for k in keys) else \
                [f"CASE WHEN {nulls} THEN {quote(self.columns['@ptr'])} END"]
            first = self.d.first_per_key("{prev}", needed, [k.sql for k in keys] + unique, order_sql, by)
            self._cte(first, order_params)
            return
        present = " AND ".join(f"{k.sql} IS NOT NULL" for k in keys)
        first = self.d.first_per_key(f"(SELECT * FROM {{prev}} WHERE {present})", needed, [k.sql for k in keys],
                                     order_sql, by)
        # UNION ALL keeps both halves' rows; the final ORDER BY (the sort, or @timestamp) orders them again.
        self._cte(f"SELECT {', '.join(needed)} FROM {{prev}} WHERE {nulls} UNION ALL {first}", order_params)

    def cmd_limit(self, node: Tree) -> None:
        n = int(str(node.children[0]))
        if not 1 <= n <= MAX_LIMIT:
            raise QueryError(f"limit must be between 1 and {MAX_LIMIT}")
        self.limit = n

    # -- the whole query --------------------------------------------------------------------

    def compile(self, tree: Tree, default_limit: int | None) -> Compiled:
        kinds = [c.data for c in tree.children]
        if "anomaly" in kinds:
            at = kinds.index("anomaly")
            if at == 0 or kinds[at - 1] != "pattern" or kinds.count("anomaly") > 1 or "diff" in kinds:
                raise QueryError("anomaly has to follow pattern, as in pattern @message | anomaly (and not go with diff)")
            self.diff = "previous"  # the pattern before it counts the baseline window too
            self.anomaly = True  # and the values of its tokens
        if "diff" in kinds:
            at = kinds.index("diff")
            if at == 0 or kinds[at - 1] != "pattern" or kinds.count("diff") > 1:
                raise QueryError("diff has to follow pattern, as in pattern @message | diff")
            period = tree.children[at].children
            self.diff = "previous" + (str(period[0]).lower()[len("previous"):] if period else "")
        for at, cmd in enumerate(tree.children):
            self.rest = tree.children[at + 1:]
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
            self.matched_cte = self.prev  # before dedup: AWS counts the events matched before it drops any
        if self.dedup is not None:
            self._dedup_cte(shown)
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
        if self.column_totals:  # the order keys are kept as columns, to number the rows before the totals
            order = [(quote(self.columns[shown[int(sql) - 1]]) if sql.isdigit() else sql, p, d) for sql, p, d in order]
            cols += [f"{sql} AS _o{i}" for i, (sql, _, _) in enumerate(order)]
            params += [p for _, ps, _ in order for p in ps]
        select = f"SELECT {', '.join(cols)} FROM {self.prev}"
        if order:
            select += " ORDER BY " + ", ".join(f"{sql} {d}" for sql, _, d in order)
            for _, p, _ in order:
                params += p
        limit = self.limit or default_limit or (MAX_LIMIT if self.is_stats else DEFAULT_LIMIT)
        select += " LIMIT ?"
        params.append(limit)
        if self.column_totals:
            self.ctes.append(f"_results AS ({select})")
            self.params += params
            select, params = self._totals_row(shown, order), []
        insights_subquery.narrow_join(self, select)
        return Compiled(self.text, self.ctes, self.params, select, params, self.matched_cte, shown, limit, self.is_stats,
                        self.d.name, self.source_selection, self.diff, tuple(self.lookups), tuple(self.subqueries))


def _bare(node: Any) -> Any:
    """``node`` without the one-child wrappers the grammar's precedence levels leave around it."""
    while isinstance(node, Tree) and node.data in ("or_", "and_", "arith") and len(node.children) == 1:
        node = node.children[0]
    return node


def _present_fields(node: Any) -> list[str]:
    """The fields a filter condition requires present: the ``ispresent(field)`` among its top-level ``and`` terms
    (under ``or`` or ``not`` an event may pass lacking them)."""
    node = _bare(node)
    if isinstance(node, Tree) and node.data == "and_":
        return [name for term in node.children for name in _present_fields(term)]
    if isinstance(node, Tree) and node.data == "call" and str(node.children[0]).lower() == "ispresent" \
            and len(node.children) == 2:
        name = _plain_field(node.children[1])
        return [name] if name is not None else []
    return []


def _plain_field(node: Any) -> str | None:
    """The field name when an expression is just one field reference."""
    node = _bare(node)
    if isinstance(node, Tree) and node.data == "field":
        return _display_name(str(node.children[0].children[0]))
    return None


_PART = re.compile(r"`([^`]+)`|\[(\d+)\]|([^.`\[\]]+)")


def _display_name(token: str) -> str:
    """A name as results show it: `` `user.id` `` -> ``user.id``, `` map.`a.b` `` -> ``map.a.b``."""
    return token.replace("`", "")


def _path(token: str) -> list[str | int]:
    """The steps of a field name into JSON: ``items.0.id`` -> ['items', 0, 'id']; a whole backticked name
    (`` `user.id` ``) is split on its dots too, as Insights flattens nested keys into such names."""
    if re.fullmatch(r"`[^`]+`", token):
        token = token[1:-1]
    steps: list[str | int] = []
    for m in _PART.finditer(token):
        quoted, index, plain = m.groups()
        if quoted is not None:
            steps.append(quoted)
        elif index is not None or (plain is not None and plain.isdigit()):
            steps.append(int(index if index is not None else plain))
        else:
            steps.append(plain)
    return steps


def _joined_name(steps: list[str | int]) -> str:
    return ".".join(str(s) for s in steps)


def _json_path(steps: list[str | int]) -> str:
    out = "$"
    for s in steps:
        if isinstance(s, int):
            out += f"[{s}]"
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", s):
            out += "." + s
        else:
            out += '."' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return out


def _unquote(s: str) -> str:
    return re.sub(r"\\(.)", r"\1", s[1:-1])


def _check_regex(body: str, raw: str) -> None:
    try:
        re.compile(re.sub(r"\(\?<([A-Za-z_][A-Za-z0-9_]*)>", r"(?P<\1>", body))
    except re.error as exc:
        raise QueryError(f"invalid regular expression {raw}: {exc}") from None


def compile_query(text: str, default_limit: int | None = None, dialect: str = "duckdb",
                  lookup_fields: LookupFields | None = None) -> Compiled:
    """``text`` compiled for the store whose dialect is ``dialect``; `QueryError` says what is wrong.
    ``lookup_fields`` names the columns of the environment's lookup tables (the ``lookup`` command)."""
    if not re.sub(r"#[^\n]*", "", text).strip():
        raise QueryError("the query is empty: write at least one command, such as fields @timestamp, @message")
    try:
        check_expression(text, "query")
        tree = _PARSER.parse(text)
    except InputError as exc:
        raise QueryError(str(exc)) from None
    except LarkError as exc:
        plain = re.sub(r"#[^\n]*", "", text)
        if re.match(r"\s*source\b[^|]*\bdatasource\s*\(", plain, re.I):
            raise QueryError("SOURCE dataSource(...) is not supported by Apiary: it keeps no data sources (the name and "
                             "type AWS records for logs that its services or pipelines deliver), so it cannot tell "
                             "which log groups received data from one; select them with logGroups(...) or "
                             "logGroupTags([...])") from None
        if re.match(r"\s*source\b", plain, re.I):
            raise QueryError("SOURCE selects log groups as SOURCE logGroups(namePrefix: [\"prefix\"], class: \"STANDARD\") "
                             "and/or logGroupTags([{key: \"team\", values: [\"web\"]}]) at the start of the query") from None
        col = getattr(exc, "column", None)
        tok = getattr(exc, "token", None)
        where = f" at character {col}" if col is not None else ""
        got = f": unexpected {str(tok)!r}" if tok is not None else ""
        raise QueryError(f"unexpected symbol{where}{got} in query {text!r}") from None
    terms = sum(1 for _ in tree.iter_subtrees())
    if terms > MAX_TERMS:
        raise QueryError(f"the query is too complex: {terms} terms, at most {MAX_TERMS} are accepted")
    return _Compiler(text, log_dialect_for(dialect), lookup_fields).compile(tree, default_limit)


def fields_of_lookup_tables(logs: Any, env: str) -> LookupFields:
    """`LookupFields` for ``env`` from a log store (its `lookup_table`)."""
    def fields(name: str) -> tuple[str, ...] | None:
        table = logs.lookup_table(env, name)
        return table.fields if table is not None else None
    return fields


def base_cte(d: LogDialect, env: str, groups: list[str], start_s: int, end_s: int,
             compared: tuple[int, int] | None = None, name: str = "c0") -> tuple[str, list[Any]]:
    """``c0`` (or ``name``): the events of ``groups`` in the window, under the names the compiler uses (``ts``, ``msg``, ...).

    With ``compared`` (`diff`'s other window), the events of both windows, each with its ``_period`` (0 for the
    query's, 1 for the other): an event in both windows is counted in each, as two queries would count it.
    """
    groups = list(groups) or [""]  # no group: no events (a log group's name is never empty)
    windows = [(start_s, end_s)] + ([compared] if compared else [])
    scans, params = [], []
    for period, (lo, hi) in enumerate(windows):
        scans.append(f"SELECT \"timestamp\" AS ts, message AS msg, log_stream AS stream, log_group AS grp, "
                     f"concat('{ACCOUNT}:', log_group) AS logid, ingestion_time AS ingested, {d.to_text('seq')} AS ptr, "
                     f"trace_id AS trace, span_id AS span, severity_text AS sev, "
                     f"{d.json_document('message')} AS _json, "
                     f"attributes AS _attrs{f', {period} AS _period' if compared else ''} FROM logs WHERE _env = ? "
                     f"AND log_group IN ({', '.join('?' for _ in groups)}) "
                     f"AND \"timestamp\" >= {d.from_epoch_us('?')} AND \"timestamp\" <= {d.from_epoch_us('?')}")
        # One parameter per group, not a list parameter: the databases push `IN (?, ?)` into the scan (DuckDB's
        # zone maps, ClickHouse's primary key); `list_contains(?, log_group)` read every row of every group.
        params += [env, *groups, lo * 1_000_000, hi * 1_000_000 + 999_999]
    return f"{name} AS ({' UNION ALL '.join(scans)})", params


def named_groups(c: Compiled) -> list[str]:
    """The log groups the query names in quotes (``SOURCE '/aws/lambda/db'``), its own and its subqueries': the
    server checks each is one of the caller's environment, as it checks the groups StartQuery names."""
    names = list(c.source.names) if c.source is not None else []
    return names + [n for sub in c.subqueries for n in sub.groups if n not in names]


def compared_window(diff: str, start_s: int, end_s: int) -> tuple[int, int]:
    """The window `diff` compares with (CWL_QuerySyntax-Diff): as long as the query's, just before it, or the same
    times a day, a week or a calendar month earlier; never before 1970."""
    if diff == "previousmonth":
        lo, hi = (_month_earlier(t) for t in (start_s, end_s))
    else:
        shift = {"previous": end_s - start_s + 1, "previousday": 86_400, "previousweek": 604_800}[diff]
        lo, hi = start_s - shift, end_s - shift
    return max(lo, 0), max(hi, 0)


def _month_earlier(t: int) -> int:
    when = datetime.fromtimestamp(t, timezone.utc)
    year, month = (when.year, when.month - 1) if when.month > 1 else (when.year - 1, 12)
    for day in range(when.day, 27, -1):  # the 31st of a 30-day month is its last day
        try:
            return int(when.replace(year=year, month=month, day=day).timestamp())
        except ValueError:
            continue
    return int(when.replace(year=year, month=month, day=min(when.day, 28)).timestamp())


def to_sql(c: Compiled, env: str, groups: list[str], start_s: int, end_s: int) -> tuple[str, list[Any], str, list[Any]]:
    """(results SQL, params, counts SQL, params) for one run, bound for the dialect ``c`` was compiled for."""
    d = log_dialect_for(c.dialect)
    compared = compared_window(c.diff, start_s, end_s) if c.diff else None
    base, base_params = base_cte(d, env, groups, start_s, end_s, compared)
    # each subquery scans the groups its SOURCE names (of the same environment), else the query's own
    scans = ["c0"]
    for sub in c.subqueries:
        sub_base, sub_params = base_cte(d, env, list(sub.groups) or groups, start_s, end_s, name=sub.base)
        base, base_params = f"{base}, {sub_base}", base_params + sub_params
        scans.append(sub.base)
    # the records of each lookup table the query joins, by the environment's table name
    lookups = [f"lk{i} AS (SELECT row_no, row FROM lookup_rows WHERE _env = ? AND lookup_table = ?)"
               for i in range(len(c.lookups))]
    base_params = base_params + [p for name in c.lookups for p in (env, name)]
    with_ = "WITH " + ", ".join([base] + lookups + c.ctes) + " "
    results = with_ + c.select
    scanned = " + ".join(f"(SELECT count(*) FROM {s})" for s in scans)
    size = " + ".join(f"(SELECT coalesce(sum({d.text_length('msg')}), 0) FROM {s})" for s in scans)
    counts = with_ + f"SELECT {scanned} AS scanned, (SELECT count(*) FROM {c.matched_cte}) AS matched, {size} AS size"
    return (*d.bind(results, base_params + c.params + c.select_params), *d.bind(counts, base_params + c.params))
