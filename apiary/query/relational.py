"""Honeycomb's relational fields in a query's WHERE: ``root.``, ``any.`` and ``none.`` before a column name.

(``root.<column>`` as a breakdown is a join to each trace's root span, rendered by the span dialects' ``roots``.)

They are predicates on the trace a span belongs to, not on the span: ``root.http.route = /api`` keeps the
spans of traces whose root span has that route; ``any.error = true`` those of traces where some span
failed; ``none.`` those where no span matches. Each becomes a named span condition of a trace search
(``apiary.query.trace_search``) and the query keeps the spans of the traces that search matches, so the
cross-span work is the trace search's SQL, rendered inside the query by the same dialect.
``parent.`` (a span's own parent) is not built and is refused by name.
"""

from __future__ import annotations

from typing import Any, Sequence

from apiary.query.plan import BOOLEAN, STRING, Call, Expr, Literal
from apiary.query.spec import SpecError, TimeWindow
from apiary.query.trace_search import Has, Logic, Match, TraceSearchPlan

#: Prefix -> what it asks of the trace.
RELATIONS = ("root.", "any.", "none.", "parent.")


def relation_of(name: str, known: Any) -> tuple[str, str] | None:
    """(relation, column) for a relational field name; None for a column of the dataset (a column may be called
    ``root.x`` itself) or a name without a relation prefix."""
    if name in known:
        return None
    for prefix in RELATIONS:
        if name.startswith(prefix) and len(name) > len(prefix):
            return prefix[:-1], name[len(prefix):]
    return None


def related_traces(planner: Any, env: str, window: TimeWindow, start: Any, end: Any,
                   relational: Sequence[tuple[int, str, str, Any]]) -> TraceSearchPlan:
    """The trace search whose matching traces a query keeps: ``relational`` holds (filter index, relation, column,
    filter) for each relational filter; all must hold (a trace-level AND)."""
    conditions: list[Expr] = []
    terms: list[Match] = []
    for n, (i, relation, column, f) in enumerate(relational):
        where = f"filters[{i}]"
        if relation == "parent":
            raise SpecError(f"{where}: parent.{column}: the parent. relational field is not supported; "
                            "root., any. and none. are")
        span = planner.filter(column, f.op, f.value, where)
        if relation == "root":
            parent = planner.operand("trace.parent_id", None, where)
            is_root = Call("eq", (Call("coalesce", (parent, Literal("", STRING)), STRING), Literal("", STRING)), BOOLEAN)
            span = Call("and", (is_root, span), BOOLEAN)
        conditions.append(span)
        terms.append(Logic("not", (Has(n),)) if relation == "none" else Has(n))
    match: Match = terms[0] if len(terms) == 1 else Logic("and", tuple(terms))
    return TraceSearchPlan(env, start, end, None, tuple(conditions), tuple(f"r{n}" for n in range(len(conditions))),
                           match, None, None, "newest", 1)
