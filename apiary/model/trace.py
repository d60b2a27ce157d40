"""A trace as rows -> spans with their events and links nested, for APIs and the terminal."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pyarrow as pa


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    return value


def rows_to_spans(table: pa.Table) -> list[dict[str, Any]]:
    """Each span a dict of its non-null fields, with ``events`` and ``links`` lists, oldest first."""
    spans: list[dict[str, Any]] = []
    by_id: dict[str, dict[str, Any]] = {}
    annotations: list[dict[str, Any]] = []
    for row in table.to_pylist():
        fields = {k: _jsonable(v) for k, v in row.items() if v is not None}
        if fields.get("meta.annotation_type") in ("span_event", "link"):
            annotations.append(fields)
            continue
        fields["events"] = []
        fields["links"] = []
        spans.append(fields)
        if "trace.span_id" in fields:
            by_id[fields["trace.span_id"]] = fields
    for ann in annotations:
        parent = by_id.get(ann.get("trace.parent_id", ""))
        kind = "events" if ann["meta.annotation_type"] == "span_event" else "links"
        if parent is not None:
            parent[kind].append(ann)
        else:  # its span has not arrived (yet): keep it visible rather than drop it
            ann.setdefault("events", [])
            ann.setdefault("links", [])
            spans.append(ann)
    spans.sort(key=lambda s: s.get("timestamp", ""))
    return spans


def span_tree(spans: list[dict[str, Any]]) -> list[tuple[int, dict[str, Any]]]:
    """(depth, span) in depth-first order, children by start time; orphans start their own subtree."""
    children: dict[str | None, list[dict[str, Any]]] = {}
    ids = {s.get("trace.span_id") for s in spans}
    for s in spans:
        parent = s.get("trace.parent_id")
        children.setdefault(parent if parent in ids else None, []).append(s)
    out: list[tuple[int, dict[str, Any]]] = []

    def walk(parent: str | None, depth: int) -> None:
        for s in sorted(children.get(parent, []), key=lambda x: x.get("timestamp", "")):
            out.append((depth, s))
            sid = s.get("trace.span_id")
            if sid is not None and sid != parent:
                walk(sid, depth + 1)

    walk(None, 0)
    return out
