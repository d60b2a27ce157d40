"""The narrow view of the server the Honeycomb receiver gets (``app.state.honeycomb``), as OTLP gets `OtlpSink`.

Events in, and the span store for its one read (``/1/columns``); keys are
checked by `apiary.keyed_routes`, so nothing else of the server is reachable.
"""

from __future__ import annotations

from typing import Any, Callable, Protocol, TypeVar

from apiary.model.limits import SpanLimits
from apiary.model.span import SpanBatch
from apiary.store.base import Store

T = TypeVar("T")


class HoneycombSink(Protocol):
    #: Largest request accepted, after decompression (``--max-body-bytes``).
    max_body_bytes: int
    #: Attributes per event and bytes per value kept (``--max-span-attributes``, ``--max-value-bytes``).
    span_limits: SpanLimits
    #: The span store, for reading a dataset's columns.
    store: Store

    async def decode(self, size: int, decoder: Callable[..., T], *args: Any) -> T:
        """Run a pure decoder on the decode workers (inline below their threshold)."""

    async def append_spans(self, env: str, batch: SpanBatch) -> None:
        """Return once every event of ``batch`` is committed."""
