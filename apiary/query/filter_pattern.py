"""The part of a CloudWatch filter pattern that SQL can check, rendered for a store's dialect.

The receiver parses a pattern (its grammar and exact, line-by-line semantics
stay in ``apiary/receivers/cloudwatch/filter_pattern.py``) and hands the log
store a `MessageFilter`: literals every matching line must (or must not)
contain, regular expressions, and whether it must look like a JSON object.
For term patterns that is the whole answer; for JSON and space-delimited
patterns it narrows the rows the receiver then decides one by one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from apiary.query.dialects.logs import LogDialect


@dataclass(frozen=True)
class MessageFilter:
    required: tuple[str, ...] = ()
    #: at least one of these must occur (empty: no such condition)
    any_of: tuple[str, ...] = ()
    excluded: tuple[str, ...] = ()
    regexes: tuple[str, ...] = ()
    json_object: bool = False

    @property
    def empty(self) -> bool:
        return not (self.required or self.any_of or self.excluded or self.regexes or self.json_object)


def render(f: MessageFilter, d: LogDialect, column: str = "message") -> tuple[str, list[Any]]:
    """(condition, params); the condition is empty when the filter lets every line through."""
    conds: list[str] = []
    params: list[Any] = []
    for t in f.required:
        conds.append(d.contains(column, "?"))
        params.append(t)
    if f.any_of:
        conds.append("(" + " OR ".join(d.contains(column, "?") for _ in f.any_of) + ")")
        params += list(f.any_of)
    for t in f.excluded:
        conds.append(f"NOT {d.contains(column, '?')}")
        params.append(t)
    for r in f.regexes:
        conds.append(d.regex_match(column, "?"))
        params.append(r)
    if f.json_object:
        conds.append(d.starts_with_brace(column))
    return " AND ".join(conds), params
