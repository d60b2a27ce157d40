"""Whether a read saw every acknowledged row, told to whoever answers the request.

The DuckDB store acknowledges a write once the intake log holds it and loads
it into the database just after; every read first waits for that load. When
the database refuses loads (its disk is full), the read cannot wait: it
answers from what is loaded and notes here how many acknowledged rows it
could not see. The server turns the note into the ``X-Apiary-Unloaded-Rows``
response header, so a stale answer says so instead of passing for complete.

The note travels in a context variable holding a list: ``asyncio.to_thread``
copies the context into its thread, and the copy still points at the same
list, so a read run on a worker thread reports to the request that started it.
"""

from __future__ import annotations

import contextlib
from contextvars import ContextVar
from typing import Iterator

_unloaded: ContextVar[list[int] | None] = ContextVar("apiary_unloaded_rows", default=None)


def note_unloaded(rows: int) -> None:
    """A read answered without ``rows`` acknowledged rows (no-op outside a watched request)."""
    box = _unloaded.get()
    if box is not None:
        box.append(rows)


@contextlib.contextmanager
def watching() -> Iterator[list[int]]:
    """Collect the notes of the reads made inside the block."""
    box: list[int] = []
    token = _unloaded.set(box)
    try:
        yield box
    finally:
        _unloaded.reset(token)
