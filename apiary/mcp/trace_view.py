"""A trace cut to what an agent's context can hold: a summary first, then spans by page or by subtree.

A trace handed over whole floods a model's context and buries what matters: 20,000 spans are 9.9 MB of
JSON from ``GET /api/traces/{id}``, where the summary is 3.3 KB and a page of 50 spans 8 KB
(``bench/agent_reads.py``). The summary says how big the trace is, where its time and errors are and
which spans head its subtrees; `TraceView.page` then returns spans in tree order (depth first, children by
start), a page at a time, from the root or from under any span, to a chosen depth; `path_view` shows the
critical path the same compact way.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timezone
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from apiary.mcp.paging import window

#: The columns a compact span shows; the rest are its attributes, read only for the spans shown with them.
CORE = ("trace.span_id", "trace.parent_id", "name", "service.name", "duration_ms", "error", "status_message",
        "meta.annotation_type")
_NOT_ATTRIBUTES = set(CORE) | {"trace.trace_id", "timestamp", "status_code", "span.kind"}
MAX_ATTRIBUTES = 50
MAX_VALUE_CHARS = 300


class TraceView:
    """One trace (``Store.trace``'s rows) as a tree, with offsets from its start.

    Only the few columns a compact span shows become Python objects; attributes are read from the table
    for the spans of one page only. Built from ``rows_to_spans`` (every column of every span as dicts, as
    the JSON API does), a tool call on a 20,000-span trace took 2.0-3.3 s, 0.9-1.5x the whole trace
    fetched from the JSON API; from these columns, 0.24-0.49 s, 0.19-0.29x in two runs (``bench/agent_reads.py``).
    """

    def __init__(self, trace_id: str, table: pa.Table) -> None:
        self.trace_id = trace_id
        self.table = table
        present = [c for c in CORE if c in table.column_names]
        core = table.select(present).append_column("_row", pa.array(range(table.num_rows), pa.int64()))
        if "timestamp" in table.column_names:
            starts = pc.cast(pc.cast(table.column("timestamp"), pa.timestamp("us")), pa.int64())
        else:
            starts = pa.nulls(table.num_rows, pa.int64())
        rows = core.append_column("_start_us", starts).to_pylist()
        self.spans = [r for r in rows if r.get("meta.annotation_type") is None]
        self.events: dict[str | None, list[str]] = {}
        for r in rows:
            if r.get("meta.annotation_type") == "span_event":
                self.events.setdefault(r.get("trace.parent_id"), []).append(r.get("name") or "")
        self.by_id = {s["trace.span_id"]: s for s in self.spans if s.get("trace.span_id")}
        self.start_us = {id(s): s["_start_us"] or 0 for s in self.spans}
        self.t0 = min(self.start_us.values(), default=0)
        ends = [self.start_us[id(s)] + int((s.get("duration_ms") or 0.0) * 1000) for s in self.spans]
        self.duration_ms = (max(ends, default=self.t0) - self.t0) / 1000.0
        self.children: dict[str | None, list[dict[str, Any]]] = {}
        for s in self.spans:
            parent = s.get("trace.parent_id")
            self.children.setdefault(parent if parent in self.by_id and parent != s.get("trace.span_id") else None,
                                     []).append(s)
        for kids in self.children.values():
            kids.sort(key=lambda s: (self.start_us[id(s)], s.get("trace.span_id") or ""))
        self.depth: dict[int, int] = {}
        self.order = self._walk(self.children.get(None, []), 0)

    def _walk(self, tops: list[dict[str, Any]], depth0: int, max_depth: int | None = None) -> list[dict[str, Any]]:
        """Depth-first, without recursion (a trace may be thousands of spans deep)."""
        out: list[dict[str, Any]] = []
        stack = [(s, depth0) for s in reversed(tops)]
        seen: set[int] = set()
        while stack:
            span, depth = stack.pop()
            if id(span) in seen:  # a cycle of parent ids: show each span once
                continue
            seen.add(id(span))
            self.depth.setdefault(id(span), depth)
            out.append(span)
            if max_depth is not None and depth - depth0 >= max_depth:
                continue
            stack.extend((c, depth + 1) for c in reversed(self.children.get(span.get("trace.span_id"), [])))
        return out

    def descendants(self, span: dict[str, Any]) -> int:
        return len(self._walk([span], 0)) - 1

    def compact(self, span: dict[str, Any], attributes: bool = False) -> dict[str, Any]:
        sid = span.get("trace.span_id")
        out: dict[str, Any] = {"span_id": sid, "parent_id": span.get("trace.parent_id"), "name": span.get("name"),
                               "service": span.get("service.name"),
                               "start_ms": round((self.start_us[id(span)] - self.t0) / 1000.0, 3),
                               "duration_ms": span.get("duration_ms"), "depth": self.depth.get(id(span), 0),
                               "children": len(self.children.get(sid, []))}
        if span.get("error"):
            out["error"] = True
        if span.get("status_message"):
            out["status_message"] = span["status_message"]
        if self.events.get(sid):
            out["events"] = self.events[sid][:10]
        if attributes:
            attrs = self.attributes(span)
            keys = sorted(attrs)
            out["attributes"] = {k: _clip(attrs[k]) for k in keys[:MAX_ATTRIBUTES]}
            if len(keys) > MAX_ATTRIBUTES:
                out["attributes_omitted"] = len(keys) - MAX_ATTRIBUTES
        return out

    def attributes(self, span: dict[str, Any]) -> dict[str, Any]:
        row = self.table.slice(span["_row"], 1).to_pylist()[0]
        return {k: _jsonable(v) for k, v in row.items()
                if v is not None and k not in _NOT_ATTRIBUTES and not k.startswith("meta.")}

    def summary(self, log_lines: int | None, error_occurrences: int | None) -> dict[str, Any]:
        roots = self.children.get(None, [])
        real_root = next((s for s in roots if not s.get("trace.parent_id")), None)
        errors = [s for s in self.order if s.get("error")]
        slowest = sorted(self.order, key=lambda s: -(s.get("duration_ms") or 0.0))[:5]
        services = Counter(s.get("service.name") or "unknown_service" for s in self.spans)
        top = roots if len(roots) > 1 or real_root is None else self.children.get(real_root.get("trace.span_id"), [])
        doc: dict[str, Any] = {
            "trace_id": self.trace_id, "spans": len(self.spans), "duration_ms": round(self.duration_ms, 3),
            "start": _iso_us(self.t0), "services": dict(services.most_common()),
            "root": self.compact(real_root) if real_root else None,
            "root_missing": real_root is None,
            "max_depth": max(self.depth.values(), default=0),
            "error_spans": len(errors), "first_errors": [self.compact(s) for s in errors[:5]],
            "slowest_spans": [self.compact(s) for s in slowest],
            "top_level": [{**self.compact(s), "descendants": self.descendants(s)} for s in top[:10]],
            "top_level_total": len(top),
        }
        if log_lines is not None:
            doc["log_lines"] = log_lines
        if error_occurrences is not None:
            doc["error_occurrences"] = error_occurrences
        return doc

    def page(self, under: str | None, max_depth: int | None, offset: int, limit: int,
             attributes: bool) -> dict[str, Any]:
        """Spans in tree order: all of them, or ``under`` and its descendants; ``max_depth`` levels below the top."""
        if under is None:
            tops = self.children.get(None, [])
        else:
            if under not in self.by_id:
                raise KeyError(under)
            tops = [self.by_id[under]]
        depth0 = 0 if under is None else self.depth.get(id(self.by_id[under]), 0)
        spans = self._walk(tops, depth0, max_depth)
        shown = spans[offset:offset + limit]
        doc: dict[str, Any] = {"trace_id": self.trace_id, "spans": [self.compact(s, attributes) for s in shown]}
        doc.update(window(len(shown), len(spans), offset, "spans"))
        return doc

    def path_view(self, path: dict[str, list[Any]], offset: int, limit: int) -> dict[str, Any]:
        """The critical path's segments (time order) and the spans that hold the most of it."""
        held: Counter[str] = Counter()
        segments = []
        for sid, lo, hi in zip(path["span_ids"], path["start_us"], path["end_us"]):
            held[sid] += hi - lo
            span = self.by_id.get(sid, {})
            segments.append({"span_id": sid, "name": span.get("name"), "service": span.get("service.name"),
                             "start_ms": round((lo - self.t0) / 1000.0, 3), "duration_ms": round((hi - lo) / 1000.0, 3)})
        total = self.duration_ms or 1.0
        by_span = [{"span_id": sid, "name": self.by_id.get(sid, {}).get("name"),
                    "service": self.by_id.get(sid, {}).get("service.name"), "on_path_ms": round(us / 1000.0, 3),
                    "share": round(us / 1000.0 / total, 4)} for sid, us in held.most_common(limit)]
        doc: dict[str, Any] = {"trace_id": self.trace_id, "duration_ms": round(self.duration_ms, 3),
                               "by_span": by_span, "by_span_total": len(held), "segments": segments[offset:offset + limit]}
        doc.update(window(len(doc["segments"]), len(segments), offset, "segments"))
        return doc


def _jsonable(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _clip(value: Any) -> Any:
    if isinstance(value, str) and len(value) > MAX_VALUE_CHARS:
        return value[:MAX_VALUE_CHARS] + f"... ({len(value)} chars)"
    return value


def _iso_us(us: int) -> str:
    return datetime.fromtimestamp(us / 1e6, timezone.utc).isoformat().replace("+00:00", "Z")
