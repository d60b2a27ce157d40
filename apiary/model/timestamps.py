"""The range of times a record may carry, and what happens outside it.

A time is kept as microseconds since the Unix epoch. The OTel collector, Jaeger and Go's
``time.Time`` in nanoseconds all stop at the largest signed 64-bit count of nanoseconds,
2262-04-11T23:47:16Z; ClickHouse's ``DateTime64(6)`` stops at 2299. Apiary takes the first
limit as its own, so both stores hold every time it accepts. OTLP's ``fixed64`` fields can say
more (year 2500, or 2^64-1 ns = year 2554): such a span is refused with the reason in OTLP's
``partial_success``, as Jaeger refuses a span it cannot store; an X-Ray segment or a Honeycomb
event beyond it is refused with 400. A time of 0 is OTLP's and libhoney's "unset", not
1970-01-01: such a record takes the time it was received (Honeycomb's rule for an event without
a time).
"""

from __future__ import annotations

import math
import time
from datetime import datetime, timezone
from typing import Any

#: The last microsecond a signed 64-bit nanosecond count reaches.
MAX_TIMESTAMP_NS = 2**63 - 1
MAX_TIMESTAMP_US = MAX_TIMESTAMP_NS // 1000
MAX_TIMESTAMP_TEXT = datetime.fromtimestamp(MAX_TIMESTAMP_US // 1_000_000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
_INT64 = (-(2**63), 2**63 - 1)


def now_us() -> int:
    return time.time_ns() // 1000


def ns_in_range(ns: int) -> bool:
    """Is an OTLP ``*_unix_nano`` value a time Apiary keeps (0, unset, is not out of range)?"""
    return 0 <= ns <= MAX_TIMESTAMP_NS


def us_in_range(us: int) -> bool:
    return 0 <= us <= MAX_TIMESTAMP_US


def finite(value: Any) -> bool:
    """False for NaN and +-Infinity, which no column keeps: one NaN makes every SUM/AVG of its column NaN."""
    return not (value.__class__ is float and not math.isfinite(value))


def int64(value: int) -> bool:
    return _INT64[0] <= value <= _INT64[1]
