"""Queries inside a Logs Insights query: ``filter f in ( query )`` (CWL_QuerySyntax-Subqueries) and the right side
of ``join`` (CWL_QuerySyntax-Join).

AWS runs the inner query on its own, over the log groups its ``SOURCE '<group>'`` names, and materialises its
result before the outer query uses it; the outer query sees only the fields the inner one selects. Apiary
compiles the inner query with a child of the query's compiler into CTEs of its own (``q0_1``, ...) over a scan
of its own groups (``q0_0``, written by `insights.to_sql` once the groups are known), ending in one CTE
``q0`` of the fields asked for. The database then answers both in one statement: ``IN (SELECT ...)`` for a
subquery, a hash join for ``join`` (one row per matching pair of events, as SQL joins them).

What AWS's pages rule out is refused by name: nested subqueries (a subquery or join inside another), join types
other than inner and left; and a correlated subquery cannot be written, as the inner query knows only its own
fields.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lark import Tree

from apiary.query import insights
from apiary.query.insights_expr import Expr, QueryError, text

if TYPE_CHECKING:
    from apiary.query.insights import _Compiler

JOIN_TYPES = ("inner", "left")
#: the columns of every event before the query adds any (`insights.base_cte`)
BASE_COLUMNS = ("ts", "msg", "stream", "grp", "logid", "ingested", "ptr", "trace", "span", "sev", "_json", "_attrs")
#: where the join's CTE lists the left side's columns, until `narrow_join` knows which are used after it
LEFT_COLUMNS = "/*left columns*/"
#: commands that compare with another time window or add rows after the results: they make no sense inside
#: another query's input, and their CTEs are named for the whole query
NOT_INSIDE = ("diff", "anomaly", "addtotals")


@dataclass(frozen=True)
class Subquery:
    """One inner query: the prefix of its CTEs, and the log groups its SOURCE names (none: the query's own)."""

    prefix: str
    groups: tuple[str, ...]

    @property
    def base(self) -> str:
        """The CTE of its events (`insights.base_cte`)."""
        return f"{self.prefix}0"


def _inner(outer: _Compiler, tree: Tree, what: str) -> _Compiler:
    """The inner query ``tree`` compiled up to its output, by a child of ``outer``."""
    if outer.parent is not None:
        raise QueryError(f"nested subqueries are not supported: a {what} cannot hold another subquery or a join")
    prefix = f"q{len(outer.subqueries)}_"
    inner = type(outer)(outer.text, outer.d, outer.lookup_fields, parent=outer, prefix=prefix)
    for cmd in tree.children:
        if cmd.data in NOT_INSIDE:
            raise QueryError(f"{cmd.data} cannot be used inside a {what}: {inner.source(cmd)!r}")
        inner.command(cmd)
    source = inner.source_selection
    if source is not None and (source.prefixes or source.tags or source.accounts or not source.names):
        raise QueryError(f"inside a {what}, SOURCE names its log groups in quotes, as in (SOURCE '/aws/lambda/db' | ...)")
    outer.subqueries.append(Subquery(prefix, source.names if source is not None else ()))
    return inner


def _selected(inner: _Compiler) -> list[str] | None:
    """The fields the inner query selects (fields, display, stats, pattern), or None when it selects none."""
    if inner.display is not None:
        return list(inner.display)
    return list(inner.fields_seen) or None


def _output(outer: _Compiler, inner: _Compiler, wanted: list[tuple[str, list[str | int], bool]],
            what: str) -> list[tuple[str, str]]:
    """CTE ``q<i>`` of the inner query: one column per (name, path, as_text) of ``wanted``; returns each column's
    (name, kind). A field the inner query did not select is an error when it selects some; otherwise its events'
    fields are all there to take, as on the right side of AWS's own example (``SOURCE '/aws/lambda/f'``)."""
    selected = _selected(inner)
    exprs: list[Expr] = []
    for name, path, as_text in wanted:
        if selected is not None and name not in selected:
            raise QueryError(f"the {what} selects {', '.join(selected)}; add {name} to its fields to use it here")
        e = inner.field(name, path)
        exprs.append(text(inner.d, e) if as_text else e)
    if inner.dedup is not None:
        inner._dedup_cte(selected or [])
    cols = [f"{e.sql} AS o{i}" for i, e in enumerate(exprs)]
    params = [p for e in exprs for p in e.params]
    select = f"SELECT {', '.join(cols)}, 1 AS _hit FROM {inner.prev}"
    if inner.limit is not None:  # AWS's default limit is for results shown, not for another query's input
        order = inner.order or ([(insights.quote(inner.columns["@timestamp"]), [], "DESC")]
                                if "@timestamp" in inner.columns else [])
        if order:
            select += " ORDER BY " + ", ".join(f"{sql} {d}" for sql, _, d in order)
            params += [p for _, ps, _ in order for p in ps]
        select += " LIMIT ?"
        params.append(inner.limit)
    name = inner.prefix[:-1]
    outer.ctes += inner.ctes + [f"{name} AS ({select})"]
    outer.params += inner.params + params
    return [(f"o{i}", e.kind) for i, e in enumerate(exprs)]


def in_query(outer: _Compiler, node: Tree, negate: bool) -> Expr:
    """``field [not] in ( query )``: the inner query's values of the field of the same name (or of the one field
    it selects). Both sides compare as text unless both are numbers; an event without the field passes
    neither `in` nor `not in`, as with a list."""
    d = outer.d
    left = outer.expr(node.children[0])
    inner = _inner(outer, node.children[1], "subquery")
    selected = _selected(inner)
    name = insights._plain_field(node.children[0])
    if selected is None:
        raise QueryError(f"a subquery gives the query around it only the fields it selects: end it with "
                         f"| fields {name or 'the field to match'}")
    if name not in selected:
        if len(selected) != 1:
            raise QueryError(f"the subquery selects {', '.join(selected)}: select the one field to match"
                             + (f" ({name})" if name else ""))
        name = selected[0]
    value = inner.field(name, insights._path(name)) if name in inner.columns else None
    numbers = left.kind == "num" and value is not None and value.kind == "num"
    (col, _), = _output(outer, inner, [(name, insights._path(name), not numbers)], "subquery")
    if not numbers:
        left = text(d, left)
    member = f"({left.sql} {'NOT ' if negate else ''}IN ({d.value_set(col, inner.prefix[:-1])}))"
    return Expr(member, left.params, "bool")


def join(outer: _Compiler, node: Tree) -> None:
    """``join [type=inner|left] left=<a> right=<b> where <a>.<f>=<b>.<g> ( query )``: each event of the query so
    far with each event (or result row) of the right side whose field g equals its field f, as text; ``left``
    keeps the events that match none. Afterwards ``a.x`` is the event's field x and ``b.y`` the right side's y."""
    options: dict[str, str] = {}
    for opt in (c for c in node.children if isinstance(c, Tree) and c.data == "join_option"):
        key, op, value = (str(c) for c in opt.children)
        key = key.lower()
        if key not in ("type", "left", "right") or op != "=" or key in options:
            raise QueryError(f"join takes type=inner|left, left=<alias> and right=<alias>, once each; "
                             f"not {outer.source(opt)!r}")
        options[key] = value
    join_type = options.get("type", "inner").lower()
    if join_type not in JOIN_TYPES:
        raise QueryError(f"join type={options['type']} is not supported: AWS's join is type=inner (the default) "
                         f"or type=left")
    if "left" not in options or "right" not in options:
        raise QueryError("join names both sides: join left=<alias> right=<alias> where <alias>.<field>=<alias>.<field>")
    left_alias, right_alias = options["left"], options["right"]
    if left_alias == right_alias:
        raise QueryError(f"join's left and right aliases must differ, not both {left_alias!r}")
    if outer.join_aliases is not None:
        raise QueryError("Apiary runs one join per query")
    names = [c for c in node.children if isinstance(c, Tree) and c.data == "name"]
    op = next(str(c) for c in node.children if not isinstance(c, Tree))
    sides = {insights._path(str(n.children[0]))[0]: n for n in names}
    if op != "=" or len(names) != 2 or set(sides) != {left_alias, right_alias} \
            or any(len(insights._path(str(n.children[0]))) < 2 for n in names):
        raise QueryError(f"join matches with where {left_alias}.<field>={right_alias}.<field>, one field of each side")
    left_key_name = outer.name_of(sides[left_alias])[len(left_alias) + 1:]
    right_key_name = outer.name_of(sides[right_alias])[len(right_alias) + 1:]
    left_key = text(outer.d, outer.field(left_key_name, outer.path_of(sides[left_alias])[1:]))
    # the right side's fields named after the join (`b.duration`), looked ahead for: the inner query gives them
    wanted = [(right_key_name, outer.path_of(sides[right_alias])[1:], True)]
    for later in _names(outer.rest):
        path = insights._path(later)
        shown = insights._display_name(later)
        if len(path) > 1 and path[0] == right_alias and shown not in [f"{right_alias}.{w[0]}" for w in wanted[1:]]:
            wanted.append((shown[len(right_alias) + 1:], path[1:], False))
    inner = _inner(outer, node.children[-1], "join")
    outputs = _output(outer, inner, wanted, "join's right side")
    left_col, = outer.key_columns([left_key], "_jk")
    # the left side's columns still to come (every column it has so far), narrowed once the query is compiled
    available = list(BASE_COLUMNS if outer.raw else ()) + (["_period"] if outer.diff and outer.raw else []) + \
        list(outer.columns.values()) + list(outer.json_docs.values())
    added = [f"CASE WHEN r._hit = 1 THEN r.{col} END AS "
             f"{insights.quote(outer._new_column(f'{right_alias}.{name}', kind))}"
             for (name, _, _), (col, kind) in zip(wanted[1:], outputs[1:])]
    outer._cte(f"SELECT {', '.join([LEFT_COLUMNS] + added)} FROM {{prev}} AS p {join_type.upper()} JOIN "
               f"{inner.prefix[:-1]} AS r ON p.{left_col} = r.{outputs[0][0]}", [])
    outer.join_cte = (len(outer.ctes) - 1, list(dict.fromkeys(available)))
    outer.join_aliases = (left_alias, right_alias)


def narrow_join(outer: _Compiler, select: str) -> None:
    """The join's CTE carrying only the left side's columns that the SQL after it names (``select`` the final
    statement). ``p.*`` carried every column, the JSON document of each event among them, through the hash join:
    ClickHouse then copied them all (1.8x the hand-written join at 1 M events, bench/insights.py)."""
    if outer.join_cte is None:
        return
    at, available = outer.join_cte
    later = " ".join(outer.ctes[at + 1:]) + " " + select
    kept = [c for c in available if re.search(rf"(?<![\w$]){re.escape(c)}(?![\w])", later)]
    outer.ctes[at] = outer.ctes[at].replace(LEFT_COLUMNS, ", ".join(f"p.{insights.quote(c)}" for c in kept)
                                            or "1 AS _none")


def _names(commands: list[Any]) -> list[str]:
    """The field names (as written) in ``commands``, leaving out those inside a subquery of theirs."""
    found: list[str] = []
    stack = list(commands)
    while stack:
        node = stack.pop()
        if not isinstance(node, Tree) or node.data == "subquery":
            continue
        if node.data == "name":
            found.append(str(node.children[0]))
        stack.extend(node.children)
    return found
