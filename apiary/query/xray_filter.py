"""An X-Ray filter expression as a small typed tree, in X-Ray's own terms.

The receiver parses the text (``apiary/receivers/xray/filter.lark``) into these classes;
``apiary/query/xray.py`` turns them into the query plan. They live here, on the query side,
because the query side must not import a receiver.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Union


@dataclass(frozen=True)
class Compare:
    key: str  # a keyword (responsetime, http.status, rootcause.fault.service.name ...), or annotation.<name>
    op: str  # = != < <= > >= contains beginswith endswith
    value: str | float | bool


@dataclass(frozen=True)
class Flag:
    """A keyword on its own: a boolean keyword is true, any other keyword is set (an annotation that is a boolean
    is its value)."""

    key: str


@dataclass(frozen=True)
class Service:
    """``service("name")`` / ``id(name: "n", type: "t")``, optionally with a ``{ ... }`` over that service's spans."""

    name: str | None
    type: str | None = None
    inner: "Node | None" = None


@dataclass(frozen=True)
class Edge:
    """``edge("a", "b")``; either end may be an ``id(name:, type:)`` (a `Service` without ``inner``)."""

    source: "str | Service"
    target: "str | Service"
    inner: "Node | None" = None


@dataclass(frozen=True)
class RootCause:
    """``rootcause.<kind>.<level> { inner }``: some root cause of the trace's faults, errors or response time
    (``kind``) satisfies ``inner``, judged on its ``level``: the service, the entity (segment or subsegment) or
    the exception."""

    kind: str  # fault | error | responsetime
    level: str  # service | entity | exception
    inner: "Node"


@dataclass(frozen=True)
class RootCauseJson:
    """``rootcause.json = #[{"Services": [...]}, ...]``: root causes described as GetTraceSummaries lists them
    (``Services``, each with ``Name`` / ``Names`` / ``Type`` / ``Inferred`` and an ``EntityPath`` of entities with
    ``Name`` / ``Remote``), each of which the trace must have; ``negate`` for ``!=``. The receiver checks the fields."""

    causes: tuple[dict[str, Any], ...]
    negate: bool = False

    def __hash__(self) -> int:
        return hash((repr(self.causes), self.negate))


@dataclass(frozen=True)
class GroupRef:
    """``group.name = "x"`` / ``group.arn = "arn:..."``: the group's own filter expression. The receiver replaces it
    with that expression's tree (or `Everything` for a group without one) before the query side sees it."""

    field: str  # name | arn
    value: str


@dataclass(frozen=True)
class Everything:
    """Every trace: what a group without a filter expression selects."""


@dataclass(frozen=True)
class And:
    left: "Node"
    right: "Node"


@dataclass(frozen=True)
class Or:
    left: "Node"
    right: "Node"


@dataclass(frozen=True)
class Not:
    operand: "Node"


Node = Union[Compare, Flag, Service, Edge, RootCause, RootCauseJson, GroupRef, Everything, And, Or, Not]
