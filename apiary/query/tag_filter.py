"""Log groups chosen by their tags: the ``TagFilter`` of CloudWatch Logs, as Insights' ``SOURCE logGroupTags([...])``
writes it (``{key: "team", values: ["web", "api*", "!legacy"]}``).

AWS's ``TagFilter`` shape (botocore's ``logs`` model, also taken by ListLogGroups' ``logGroupTags``) says what a
filter selects: a group carrying the key with any of the values; with no values, any group carrying the key,
whatever its value; ``*`` at the start or end of a value is a wildcard and ``!`` before it negates; exact and
negated values compare case-sensitively, wildcards case-insensitively. Several filters must all hold (AND). A
filter takes at most 5 values and a selection at most 5 filters, as ListLogGroups allows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

MAX_FILTERS = 5
MAX_VALUES = 5
MAX_KEY = 128
MAX_VALUE = 259  # 256 characters of a tag value, with "!" and two "*"


class BadTagFilter(ValueError):
    """A filter AWS would not take; the message says which part."""


def _value_matches(pattern: str, value: str) -> bool:
    negated = pattern.startswith("!")
    body = pattern[1:] if negated else pattern
    if body.startswith("*") or body.endswith("*"):
        core, low = body.strip("*").lower(), value.lower()
        if body.startswith("*") and body.endswith("*") and len(body) > 1:
            hit = core in low
        elif body.startswith("*"):
            hit = low.endswith(core)
        else:
            hit = low.startswith(core)
    else:
        hit = body == value
    return hit != negated


@dataclass(frozen=True)
class TagFilter:
    key: str
    values: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not 1 <= len(self.key) <= MAX_KEY:
            raise BadTagFilter(f"a tag filter's key is 1 to {MAX_KEY} characters, not {self.key!r}")
        if len(self.values) > MAX_VALUES:
            raise BadTagFilter(f"a tag filter takes at most {MAX_VALUES} values, not {len(self.values)} (key {self.key!r})")
        for v in self.values:
            body = v[1:] if v.startswith("!") else v
            if len(v) > MAX_VALUE or "*" in body.strip("*") or "!" in body:
                raise BadTagFilter(f"tag value {v!r} of key {self.key!r}: at most {MAX_VALUE} characters, '!' only "
                                   "first and '*' only at the start or end")

    def matches(self, tags: Mapping[str, str]) -> bool:
        if self.key not in tags:
            return False
        return not self.values or any(_value_matches(p, tags[self.key]) for p in self.values)


def all_match(filters: tuple[TagFilter, ...], tags: Mapping[str, str]) -> bool:
    return all(f.matches(tags) for f in filters)
