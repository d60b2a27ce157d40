"""Trace and span id conversions between the wire formats.

W3C (OTLP, Honeycomb) writes a trace id as 32 lower-case hex digits; X-Ray as
``1-<8 hex epoch seconds>-<24 hex random>``. The two carry the same 128 bits,
so a request traced by both systems lands in one trace.
"""

from __future__ import annotations

import re

_W3C_TRACE = re.compile(r"^[0-9a-f]{32}$")
_XRAY_TRACE = re.compile(r"^1-([0-9a-fA-F]{8})-([0-9a-fA-F]{24})$")
_SPAN = re.compile(r"^[0-9a-f]{16}$")


def is_w3c_trace_id(value: str) -> bool:
    return bool(_W3C_TRACE.match(value)) and value != "0" * 32


def is_span_id(value: str) -> bool:
    return bool(_SPAN.match(value)) and value != "0" * 16


def xray_to_w3c(trace_id: str) -> str:
    """``1-5759e988-bd862e3fe1be46a994272793`` -> ``5759e988bd862e3fe1be46a994272793``."""
    m = _XRAY_TRACE.match(trace_id)
    if not m:
        raise ValueError(f"not an X-Ray trace id: {trace_id!r}")
    return (m.group(1) + m.group(2)).lower()


def w3c_to_xray(trace_id: str) -> str:
    """``5759e988bd862e3fe1be46a994272793`` -> ``1-5759e988-bd862e3fe1be46a994272793``."""
    if not is_w3c_trace_id(trace_id):
        raise ValueError(f"not a W3C trace id: {trace_id!r}")
    return f"1-{trace_id[:8]}-{trace_id[8:]}"


def normalise_trace_id(value: str) -> str:
    """Accept either spelling (any case) and answer the W3C one; raise ValueError otherwise."""
    v = value.strip()
    if _XRAY_TRACE.match(v):
        return xray_to_w3c(v)
    v = v.lower()
    if is_w3c_trace_id(v):
        return v
    raise ValueError(f"not a trace id: {value!r} (expected 32 hex digits or 1-xxxxxxxx-xxxxxxxxxxxxxxxxxxxxxxxx)")
