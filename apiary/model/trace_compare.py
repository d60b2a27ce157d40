"""Two traces side by side: spans aligned by their path of (service, span name) from the root.

Span ids differ between two runs of the same request, but the path a span sits
on (``frontend: GET /`` > ``backend: /api/home`` > ``backend: db-query``) does
not, so spans are matched by that path. Several spans on one path (a loop, a
retry) are counted and their durations added up, so a path with one more call
in one trace shows as a count and latency difference, not as a mismatch.
"""

from __future__ import annotations

from typing import Any, Sequence


def span_paths(spans: Sequence[dict[str, Any]]) -> list[tuple[tuple[tuple[str, str], ...], dict[str, Any]]]:
    """(path, span) for every span (not events or links); an orphan's path starts at itself."""
    rows = [s for s in spans if s.get("meta.annotation_type") is None]
    by_id = {s["trace.span_id"]: s for s in rows if s.get("trace.span_id")}
    memo: dict[str, tuple[tuple[str, str], ...]] = {}

    def path_of(span: dict[str, Any]) -> tuple[tuple[str, str], ...]:
        chain = []
        cur: dict[str, Any] | None = span
        seen: set[str] = set()
        prefix: tuple[tuple[str, str], ...] = ()
        while cur is not None:
            sid = cur.get("trace.span_id") or ""
            if sid in memo:
                prefix = memo[sid]
                break
            if sid in seen:
                break
            seen.add(sid)
            chain.append(cur)
            parent = by_id.get(cur.get("trace.parent_id") or "")
            cur = parent if parent is not cur else None
        for s in reversed(chain):
            prefix = prefix + ((str(s.get("service.name") or ""), str(s.get("name") or "")),)
            if s.get("trace.span_id"):
                memo[s["trace.span_id"]] = prefix
        return prefix

    return [(path_of(s), s) for s in rows]


def _summary(spans: Sequence[dict[str, Any]]) -> dict[tuple[tuple[str, str], ...], dict[str, Any]]:
    out: dict[tuple[tuple[str, str], ...], dict[str, Any]] = {}
    for path, s in span_paths(spans):
        entry = out.setdefault(path, {"count": 0, "duration_ms": 0.0, "errors": 0, "span_ids": []})
        entry["count"] += 1
        entry["duration_ms"] += float(s.get("duration_ms") or 0.0)
        entry["errors"] += 1 if s.get("error") else 0
        if len(entry["span_ids"]) < 10:
            entry["span_ids"].append(s.get("trace.span_id"))
    return out


def compare_traces(a: Sequence[dict[str, Any]], b: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per path in either trace, parents before children: ``in`` is "both", "a" or "b";
    ``diff_ms`` is b's total duration on that path minus a's (None when the path is in one trace only)."""
    left, right = _summary(a), _summary(b)
    rows = []
    for path in sorted(set(left) | set(right)):
        la, rb = left.get(path), right.get(path)
        rows.append({
            "path": [{"service": svc, "name": name} for svc, name in path],
            "depth": len(path) - 1,
            "service": path[-1][0], "name": path[-1][1],
            "in": "both" if la and rb else "a" if la else "b",
            "a": la, "b": rb,
            "diff_ms": (rb["duration_ms"] - la["duration_ms"]) if la and rb else None,
        })
    return rows
