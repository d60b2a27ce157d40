"""The typed SQL fragments a Logs Insights query compiles to, and the conversions between their kinds.

Insights is loosely typed: a field discovered in JSON may hold a number in one
line and text in the next, and ``latency > 100`` must compare numbers while
``status = "ok"`` compares text. Each fragment carries the kind the compiler
knows (``num``, ``str``, ``time``, ``bool``, ``duration``, ``json`` or ``any``
for a discovered field), and operators convert their operands through the
store's `LogDialect` only where the kinds differ, so a query over typed
columns pays no casts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from apiary.query.dialects.logs import LogDialect


class QueryError(ValueError):
    """The query does not parse or uses something Apiary lacks; the message names it and says where."""


@dataclass
class Expr:
    sql: str
    params: list[Any]
    kind: str  # num | str | time | bool | duration | json | any
    #: a literal's text as the user typed it (``200``, ``"ok"``), for comparisons as text
    literal: str | None = field(default=None, compare=False)
    #: for a 1/0 number made from a condition (``strcontains``), the condition itself: a filter on it
    #: then tests the condition instead of casting the number back (measured: half the time on DuckDB)
    truth: str | None = field(default=None, compare=False)

    @property
    def constant(self) -> Any:
        """The value of a literal (one parameter and nothing else), else None."""
        return self.params[0] if self.sql == "?" and len(self.params) == 1 else None


def num(d: LogDialect, e: Expr) -> Expr:
    if e.kind in ("num", "bool"):
        return e
    if e.kind == "time":
        return Expr(d.epoch_ms(e.sql), e.params, "num")
    return Expr(d.to_double(e.sql), e.params, "num")


def text(d: LogDialect, e: Expr) -> Expr:
    if e.kind in ("str", "any", "json"):
        return e
    if e.kind == "num" and e.literal is not None:
        return Expr("?", [e.literal], "str")
    return Expr(d.to_text(e.sql), e.params, "str")


def boolean(d: LogDialect, e: Expr) -> Expr:
    if e.kind == "bool":
        return e
    if e.truth is not None:
        return Expr(e.truth, e.params, "bool")
    return Expr(f"({d.to_boolean(e.sql)})", e.params, "bool")


def as_number(e: Expr) -> Expr:
    """A boolean as Insights shows it: 1 or 0."""
    return Expr(f"CASE WHEN {e.sql} THEN 1 ELSE 0 END", e.params, "num", truth=e.sql)
