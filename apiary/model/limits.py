"""Per-span limits that keep one tenant's outsized spans from costing every tenant.

A span with 100,000 attributes used to become a 100,000-column batch; the
loader then spent minutes giving each key a place in the catalogue while
every other environment's reads waited on it. Capping at decode time, where
the cost is paid by the request that sent it (in a decode worker), keeps the
loader's work per span bounded.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Honeycomb truncates string fields at 64 KiB; Apiary does the same, at the same size.
MAX_VALUE_BYTES = 65_535
#: Attributes kept per span (span, resource, event or link attributes, counted together per row).
MAX_ATTRIBUTES = 1_000


@dataclass(frozen=True)
class SpanLimits:
    max_attributes: int = MAX_ATTRIBUTES
    max_value_bytes: int = MAX_VALUE_BYTES


DEFAULT = SpanLimits()


def truncate_utf8(value: str, max_bytes: int) -> str | None:
    """``value`` cut to at most ``max_bytes`` of UTF-8 (never mid-character), or None when it already fits."""
    if len(value) * 4 <= max_bytes:  # a code point is at most 4 bytes: no need to encode
        return None
    raw = value.encode("utf-8", "surrogatepass")
    if len(raw) <= max_bytes:
        return None
    return raw[:max_bytes].decode("utf-8", "ignore")
