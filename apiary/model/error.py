"""The normalised error occurrence, and how occurrences are grouped into items.

An occurrence is one reported error or message (Rollbar calls it an
*instance*); occurrences with the same grouping key form an *item* with a
count, first/last seen, a level and a status. The key is, in order of
preference: the client's own ``fingerprint``; the exception class and the
frames (file and function, not line numbers, so a change above the failing
line does not split an item); the message text with numbers blanked. It is
scoped by the reporting app's environment (``production``, ``development``),
as Rollbar keeps one item per environment.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

TIMESTAMP_TYPE = pa.timestamp("us", tz="UTC")
LEVELS = ("debug", "info", "warning", "error", "critical")
STATUSES = ("active", "resolved", "muted")

OCCURRENCE_FIELDS: tuple[pa.Field, ...] = (
    pa.field("timestamp", TIMESTAMP_TYPE),
    pa.field("uuid", pa.string()),
    pa.field("item_key", pa.string()),
    pa.field("title", pa.string()),
    pa.field("level", pa.string()),
    pa.field("environment", pa.string()),
    pa.field("framework", pa.string()),
    pa.field("platform", pa.string()),
    pa.field("language", pa.string()),
    pa.field("exception_class", pa.string()),
    pa.field("trace_id", pa.string()),
    pa.field("span_id", pa.string()),
    #: The reported ``data`` object as JSON (body, request, person, custom, server, ...).
    pa.field("data", pa.string()),
)
OCCURRENCE_SCHEMA = pa.schema(OCCURRENCE_FIELDS)


@dataclass
class ErrorOccurrence:
    timestamp_us: int
    uuid: str
    item_key: str
    title: str
    level: str
    environment: str
    framework: str | None
    platform: str | None
    language: str | None
    exception_class: str | None
    trace_id: str | None
    span_id: str | None
    data: str
    extra: dict[str, Any] = field(default_factory=dict)


def level_rank(level: str) -> int:
    return LEVELS.index(level) if level in LEVELS else LEVELS.index("error")


def normalise_level(level: Any, default: str = "error") -> str:
    text = str(level or default).lower()
    return {"warn": "warning", "fatal": "critical", "err": "error"}.get(text, text if text in LEVELS else default)


_NUMBERS = re.compile(r"\d+")


def item_key(environment: str, fingerprint: str | None, exception_class: str | None,
             frames: list[tuple[str, str]], message: str | None) -> str:
    """The grouping key (hex digest) of an occurrence."""
    if fingerprint:
        basis = "fingerprint\0" + fingerprint
    elif exception_class:
        basis = "exception\0" + exception_class + "\0" + "\0".join(f"{f}:{m}" for f, m in frames)
    else:
        basis = "message\0" + _NUMBERS.sub("#", (message or "").strip())[:1000]
    return hashlib.sha1(f"{environment}\0{basis}".encode("utf-8")).hexdigest()


def occurrences_table(occurrences: list[ErrorOccurrence]) -> pa.Table:
    cols: dict[str, list[Any]] = {f.name: [] for f in OCCURRENCE_FIELDS}
    for o in occurrences:
        cols["timestamp"].append(o.timestamp_us)
        for name in list(cols)[1:]:
            cols[name].append(getattr(o, name))
    return pa.Table.from_arrays([pa.array(cols[f.name], f.type) for f in OCCURRENCE_FIELDS], schema=OCCURRENCE_SCHEMA)
