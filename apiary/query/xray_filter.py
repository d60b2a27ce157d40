"""An X-Ray filter expression as a small typed tree, in X-Ray's own terms.

The receiver parses the text (``apiary/receivers/xray/filter.lark``) into these classes;
``apiary/query/xray.py`` turns them into the query plan. They live here, on the query side,
because the query side must not import a receiver.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union


@dataclass(frozen=True)
class Compare:
    key: str  # a keyword (responsetime, http.status, rootcause.fault.service.name ...), or annotation.<name>
    op: str  # = != < <= > >= contains beginswith endswith
    value: str | float | bool


@dataclass(frozen=True)
class Flag:
    key: str  # fault, error, throttle, ok, partial, or a boolean annotation


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


Node = Union[Compare, Flag, Service, Edge, And, Or, Not]
