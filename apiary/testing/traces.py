"""A trace as a test sees it: spans from every source (OTel, X-Ray, the browser) as one tree of labels.

A span's label is ``service: name``, with ``[x-ray segment]`` / ``[x-ray subsegment]`` after the ones
that came from the X-Ray SDK, so a shape or a snapshot names what a developer sees in the trace view and
never an id or a time. A shape is a dict of labels whose values are the shapes of their children:

    {"backend-flask: GET /api/activities/home": {"backend-flask: home-activities-mock-data": {}}}

It holds when each label is some span of the trace and each nested label a direct child of it; other
spans may be there too. A label without ``service: `` matches on the span name alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping

Shape = Mapping[str, "Shape | None"]
XRAY_MARK = " [x-ray "


def label(span: Mapping[str, Any]) -> str:
    text = f"{span.get('service.name') or 'unknown_service'}: {span.get('name')}"
    kind = span.get("xray.type")
    return f"{text} [x-ray {kind}]" if kind else text


@dataclass(frozen=True)
class Label:
    """A label as written in a shape: ``service``, ``name`` and the X-Ray kind it asks for (if any)."""

    text: str
    service: str | None
    name: str
    xray: str | None

    @classmethod
    def parse(cls, text: str) -> "Label":
        body, xray = text, None
        if text.endswith("]") and XRAY_MARK in text:
            body, _, rest = text.rpartition(XRAY_MARK)
            xray = rest[:-1]
        service, sep, name = body.partition(": ")
        return cls(text, service if sep else None, name if sep else body, xray)

    def matches(self, span: Mapping[str, Any]) -> bool:
        if self.xray is not None and span.get("xray.type") != self.xray:
            return False
        if self.service is not None and span.get("service.name") == self.service and span.get("name") == self.name:
            return True
        whole = self.text if self.xray is None else self.text.rpartition(XRAY_MARK)[0]
        return span.get("name") == whole

    def filters(self) -> list[dict[str, Any]]:
        """The label as Honeycomb filters, to look for it outside the trace."""
        out = [{"column": "name", "op": "=", "value": self.name}]
        if self.service is not None:
            out.append({"column": "service.name", "op": "=", "value": self.service})
        if self.xray is not None:
            out.append({"column": "xray.type", "op": "=", "value": self.xray})
        return out


@dataclass
class Trace:
    """The spans of one trace (span events and links stay inside their span, as the trace API gives them)."""

    trace_id: str
    spans: list[dict[str, Any]]
    logs: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.by_id = {s["trace.span_id"]: s for s in self.spans if s.get("trace.span_id")}

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.spans)

    def __len__(self) -> int:
        return len(self.spans)

    def find(self, text: str) -> list[dict[str, Any]]:
        wanted = Label.parse(text)
        return [s for s in self.spans if wanted.matches(s)]

    def span(self, text: str) -> dict[str, Any]:
        """The one span with this label (or name); an AssertionError naming what is there otherwise."""
        found = self.find(text)
        if len(found) != 1:
            raise AssertionError(f"{len(found)} spans {text!r} in trace {self.trace_id}, expected 1; the trace:\n"
                                 f"{self.render(indent='  ')}")
        return found[0]

    def parent(self, span: Mapping[str, Any]) -> dict[str, Any] | None:
        return self.by_id.get(span.get("trace.parent_id") or "")

    def children(self, span: Mapping[str, Any]) -> list[dict[str, Any]]:
        return [s for s in self.spans if s.get("trace.parent_id") == span.get("trace.span_id")]

    def roots(self) -> list[dict[str, Any]]:
        return [s for s in self.spans if self.parent(s) is None]

    # -- rendering ----------------------------------------------------------------------------------

    def _lines(self, span: Mapping[str, Any], depth: int, seen: set[int]) -> list[str]:
        if id(span) in seen:  # a span that names itself (or a cycle) as its parent
            return []
        seen.add(id(span))
        head = label(span)
        if depth == 0 and span.get("trace.parent_id"):
            head += "  (its parent span is not in the trace)"
        kids = sorted((self._lines(c, depth + 1, seen) for c in self.children(span)), key=lambda ls: ls)
        return ["  " * depth + head] + [line for lines in kids for line in lines]

    def render(self, indent: str = "") -> str:
        """The tree of labels, siblings sorted, ids and timings left out: what a snapshot stores."""
        seen: set[int] = set()
        blocks = sorted((self._lines(r, 0, seen) for r in self.roots()), key=lambda ls: ls)
        return "\n".join(indent + line for lines in blocks for line in lines)

    # -- shape --------------------------------------------------------------------------------------

    def _holds(self, wanted: Label, children: Shape | None, span: Mapping[str, Any]) -> bool:
        if not wanted.matches(span):
            return False
        kids = self.children(span)
        return all(any(self._holds(Label.parse(k), sub, c) for c in kids) for k, sub in (children or {}).items())

    def shape_problems(self, shape: Shape) -> list[str]:
        """Why ``shape`` does not hold, one line per top-level label that fails (none when it holds)."""
        problems = []
        for text, children in shape.items():
            wanted = Label.parse(text)
            if not any(self._holds(wanted, children, s) for s in self.spans):
                problems.append(self._why(wanted, children))
        return problems

    def _why(self, wanted: Label, children: Shape | None, under: Label | None = None) -> str:
        found = [s for s in self.spans if wanted.matches(s)]
        if not found:
            return f"no span {wanted.text!r} in the trace" + (f" (expected under {under.text!r})" if under else "")
        for text, sub in (children or {}).items():
            child = Label.parse(text)
            if any(any(self._holds(child, sub, c) for c in self.children(s)) for s in found):
                continue
            beneath = [c for s in found for c in self.children(s) if child.matches(c)]
            if beneath:  # it is there, but its own children are not
                return self._why(child, sub, wanted)
            elsewhere = [c for c in self.spans if child.matches(c)]
            if not elsewhere:
                return f"no span {child.text!r} in the trace (expected under {wanted.text!r})"
            return f"{child.text!r} is not under {wanted.text!r}: " + "; ".join(
                sorted({self._parent_of(c) for c in elsewhere}))
        return f"{wanted.text!r} does not have the expected children"  # unreachable when called from shape_problems

    def _parent_of(self, span: Mapping[str, Any]) -> str:
        parent = self.parent(span)
        if parent is not None:
            return f"its parent is {label(parent)!r}"
        if span.get("trace.parent_id"):
            return f"its parent span {span['trace.parent_id']} is not in the trace"
        return "it is the root of the trace"
