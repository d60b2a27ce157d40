"""The "N of M" every paged MCP answer carries, and how to get the rest."""

from __future__ import annotations

from typing import Any


def window(returned: int, total: int, offset: int, what: str) -> dict[str, Any]:
    """The "N of M" every paged answer carries, and how to get the rest."""
    doc: dict[str, Any] = {"returned": returned, "total": total}
    if offset + returned < total:
        doc["next_offset"] = offset + returned
        doc["more"] = f"{returned} of {total} {what} shown; call again with offset={offset + returned} for more"
    return doc
