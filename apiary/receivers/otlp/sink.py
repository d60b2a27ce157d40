"""The narrow view of the server an OTLP transport gets: check a key, decode off the loop, append.

The gRPC receiver is handed one of these rather than the server's context,
so it cannot reach anything else (the DESIGN's "narrow sink"). One
``append_*`` per signal.
"""

from __future__ import annotations

from typing import Any, Callable, ContextManager, Protocol, TypeVar

from apiary.model.limits import SpanLimits
from apiary.model.log import LogBatch
from apiary.model.span import SpanBatch
from apiary.receivers.body_budget import BodyAllowance

T = TypeVar("T")


class OtlpSink(Protocol):
    #: Largest request accepted, after decompression (``APIARY_MAX_BODY_BYTES``).
    max_body_bytes: int
    #: Attributes per span and bytes per value the trace decoder keeps (``APIARY_MAX_SPAN_ATTRIBUTES`` ...).
    span_limits: SpanLimits
    #: The longest a message may take to arrive once the server reads it (``APIARY_BODY_TIMEOUT``).
    body_timeout_s: float

    def admit(self, env: str) -> ContextManager[BodyAllowance]:
        """``env``'s allowance for one message until the block ends: raises EnvironmentOverShare (retry later) at
        once when ``env`` is held off (its share of the loader used), before a byte is read; the message's bytes,
        once received, are taken from it (BodyOverBudget or EnvironmentOverShare when they do not fit in the
        server-wide bound on bodies in memory or in ``env``'s share of it)."""

    def environment(self, key: str | None) -> str | None:
        """The environment an ingest key writes to, or None for a missing or unknown key."""

    async def decode(self, size: int, decoder: Callable[..., T], *args: Any) -> T:
        """Run a pure decoder on the decode workers (inline below their threshold); raises StoreOverloaded past the in-flight bound."""

    async def append_spans(self, env: str, batch: SpanBatch) -> None:
        """Return once every span of ``batch`` is committed."""

    async def append_logs(self, env: str, batch: LogBatch) -> None:
        """Return once every record of ``batch`` is committed."""

    async def append_metrics(self, env: str, batch: SpanBatch) -> None:
        """Return once every data point row of ``batch`` (metric points are rows of the span store) is committed."""
