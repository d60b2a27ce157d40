"""Which environment a request acts for, so that its reads wait only for that environment's rows.

A read must see every row acknowledged before it (the DuckDB store loads
acknowledged batches in the background, and a read first has them loaded).
A read of one environment needs only that environment's batches, and waiting
for every environment's let one environment's costly batches delay the
reads of all the others. The one permission check (``apiary.permissions``)
notes the environment of the key it let through; the store's reads wait for
that environment alone. A read made outside any checked request (the CLI,
retention, a UI page on loopback with no key) notes nothing and waits for
every environment, as before.

The note is a context variable: each request runs in its own task, and
``asyncio.to_thread`` carries the note into the thread that runs the read.
"""

from __future__ import annotations

from contextvars import ContextVar

_environment: ContextVar[str | None] = ContextVar("apiary_read_environment", default=None)


def act_for(environment: str) -> None:
    """The running request acts for ``environment`` (its key belongs there)."""
    _environment.set(environment)


def environment() -> str | None:
    """The environment the running request acts for, or None outside a checked request."""
    return _environment.get()
