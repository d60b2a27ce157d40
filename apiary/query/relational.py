"""Honeycomb's relational fields: ``root.``, ``parent.``, ``child.``, ``any.``, ``any2.``, ``any3.`` and ``none.``
before a column name, in a query's WHERE and GROUP BY.

Each prefix names one span related to the span a query looks at (Honeycomb's "Relational Fields"):

* ``root.`` -- the root span of its trace (no parent);
* ``parent.`` -- its direct parent; ``child.`` -- one of its direct children;
* ``any.``, ``any2.``, ``any3.`` -- some span of its trace: the filters of one of these prefixes are judged on one
  span, each prefix on a span of its own (so ``any.`` and ``any2.`` ask for two spans, which may be the same);
* ``none.`` -- no span of its trace satisfies the ``none.`` filters.

With ``filter_combination: AND`` (Honeycomb's only combination for relational fields) the filters of one prefix are
ANDed on its one span, as Honeycomb documents. Honeycomb offers no OR; Apiary reads OR as "any one filter holds",
each filter judged on its own (``none.a OR none.b``: the trace lacks ``a`` or lacks ``b``).

As a breakdown, ``root.x`` / ``parent.x`` read ``x`` on that span; ``any.x`` reads it on the earliest span (by start
time) that satisfies the query's ``any.`` filters -- any span when there are none -- and so does
``child.x`` among the span's children. A span without such a related span falls in the empty group. ``none.``
names no span, so it is no breakdown (as in Honeycomb).

Related spans are looked for in the query's time range, in every dataset of the environment. Each prefix becomes
`Related` values of the plan (``apiary.query.plan.RelatedSpans``), which every dialect renders as a join.
"""

from __future__ import annotations

from typing import Any, Sequence

from apiary.query.plan import BOOLEAN, STRING, Call, Expr, Literal, Pick, Related, RelatedSpans
from apiary.query.spec import SpecError

#: Each prefix -> how its span is linked to the row's span.
LINKS = {"root": "trace", "parent": "parent", "child": "children", "any": "trace", "any2": "trace",
         "any3": "trace", "none": "trace"}
#: The prefixes a breakdown may use.
BREAKDOWN_PREFIXES = ("root", "parent", "child", "any", "any2", "any3")


def relation_of(name: str, known: Any) -> tuple[str, str] | None:
    """(prefix, column) for a relational field name; None for a column of the dataset (a column may be called
    ``root.x`` itself) or a name without a relational prefix."""
    if name in known:
        return None
    prefix, dot, column = name.partition(".")
    if dot and column and prefix in LINKS:
        return prefix, column
    return None


class RelationalFields:
    """The relational filters and breakdowns of one query, and the related spans they read.

    ``planner`` resolves a column and a filter of one span (``apiary.query.planner._Planner``)."""

    def __init__(self, planner: Any, combination: str) -> None:
        self.planner = planner
        self.combination = combination
        self._flags: dict[str, list[Expr]] = {link: [] for link in set(LINKS.values())}
        self._picks: dict[str, list[Pick]] = {link: [] for link in set(LINKS.values())}
        #: The span conditions of each prefix's filters, in order.
        self._filters: dict[str, list[Expr]] = {}

    # -- WHERE ----------------------------------------------------------------------------------

    def where(self, filters: Sequence[tuple[str | None, Expr]]) -> Expr | None:
        """The query's WHERE: ``filters`` holds (prefix or None for the span's own, span condition) per filter."""
        terms: list[Expr] = []
        if self.combination == "AND":
            by_prefix: dict[str | None, list[Expr]] = {}
            for prefix, cond in filters:
                by_prefix.setdefault(prefix, []).append(cond)
            for prefix, conds in by_prefix.items():
                if prefix is None:
                    terms += conds
                else:
                    self._filters[prefix] = conds
                    terms.append(self._verdict(prefix, _all(conds)))
        else:
            for prefix, cond in filters:
                if prefix is None:
                    terms.append(cond)
                else:
                    self._filters.setdefault(prefix, []).append(cond)
                    terms.append(self._verdict(prefix, cond))
        if not terms:
            return None
        if len(terms) == 1:
            return terms[0]
        return Call("and" if self.combination == "AND" else "or", tuple(terms), BOOLEAN)

    def _verdict(self, prefix: str, cond: Expr) -> Expr:
        """Whether the span named by ``prefix`` satisfies ``cond`` (for ``none.``: no span of the trace does)."""
        if prefix == "root":
            cond = Call("and", (self._is_root(), cond), BOOLEAN)
        held = self._flag(LINKS[prefix], cond)
        return Call("not", (held,), BOOLEAN) if prefix == "none" else held

    def _flag(self, link: str, cond: Expr) -> Expr:
        flags = self._flags[link]
        flags.append(cond)
        return Call("coalesce", (Related(link, "flag", len(flags) - 1, BOOLEAN), Literal(False, BOOLEAN)), BOOLEAN)

    def _is_root(self) -> Expr:
        parent = self.planner.operand("trace.parent_id", STRING, "root.")
        return Call("eq", (Call("coalesce", (parent, Literal("", STRING)), STRING), Literal("", STRING)), BOOLEAN)

    # -- GROUP BY -------------------------------------------------------------------------------

    def breakdown(self, prefix: str, column: str, where: str) -> Expr:
        """``column`` read on the span ``prefix`` names (call after `where`: ``any.`` and ``child.`` breakdowns read
        the span their filters chose)."""
        if prefix not in BREAKDOWN_PREFIXES:
            raise SpecError(f"{where}: {prefix}.{column}: {prefix}. names no span (no span of the trace matches), so it "
                            "cannot be a breakdown; root., parent., child., any., any2. and any3. can")
        value = self.planner.operand(column, None, where)
        if prefix == "root":
            match = self._is_root()
        elif prefix == "parent":
            match = Literal(True, BOOLEAN)
        else:
            conds = self._filters.get(prefix, [])
            match = _all(conds) if self.combination == "AND" else _any(conds)
        picks = self._picks[LINKS[prefix]]
        picks.append(Pick(match, value))
        return Related(LINKS[prefix], "pick", len(picks) - 1, value.type)

    def related(self) -> tuple[RelatedSpans, ...]:
        """The related spans the query reads, one entry per link it uses."""
        return tuple(RelatedSpans(link, tuple(self._flags[link]), tuple(self._picks[link]))
                     for link in sorted(self._flags) if self._flags[link] or self._picks[link])


def check_not_calculated(name: str, known: Any, where: str) -> None:
    """Honeycomb reads relational fields in WHERE and GROUP BY only: a calculation over one is refused by name."""
    relation = relation_of(name, known)
    if relation is not None:
        raise SpecError(f"{where}: {name!r}: relational fields ({relation[0]}.) are read in filters and breakdowns "
                        "only, as in Honeycomb; not in calculations")


def _all(conds: Sequence[Expr]) -> Expr:
    if not conds:
        return Literal(True, BOOLEAN)
    return conds[0] if len(conds) == 1 else Call("and", tuple(conds), BOOLEAN)


def _any(conds: Sequence[Expr]) -> Expr:
    if not conds:
        return Literal(True, BOOLEAN)
    return conds[0] if len(conds) == 1 else Call("or", tuple(conds), BOOLEAN)

