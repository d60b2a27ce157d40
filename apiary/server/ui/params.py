"""Query-string numbers of the UI's JSON calls."""

from __future__ import annotations

from starlette.requests import Request


def int_param(request: Request, name: str, default: int | None, lo: int, hi: int) -> int | None:
    """``name`` clamped to [lo, hi], ``default`` when absent; ValueError naming it when not an integer."""
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return default
    try:
        return min(max(int(raw), lo), hi)
    except ValueError:
        raise ValueError(f"{name} must be an integer") from None
