"""Percentiles of OTLP histograms, from their merged bucket counts.

A histogram point keeps counts per bucket, not its values, so a percentile
over many points and series is read from the buckets added together: the
bucket where the running count passes ``q`` of the total holds the answer,
and within it values are taken to be spread evenly (the same linear
interpolation Prometheus' ``histogram_quantile`` uses). The answer therefore
always lies inside that bucket's bounds. Buckets of exponential histograms at
different scales overlap; they are ordered by upper bound, then lower.
"""

from __future__ import annotations

import math
from typing import Iterable


def bucket_quantile(buckets: Iterable[tuple[float, float, float]], q: float) -> float | None:
    """``q`` (0..1) of the values counted in ``(lower, upper, count)`` buckets; None when they hold nothing.

    An outermost bucket has an infinite bound: a percentile that falls there is its finite bound.
    """
    merged: dict[tuple[float, float], float] = {}
    for lower, upper, count in buckets:
        if count and count > 0:
            merged[(lower, upper)] = merged.get((lower, upper), 0.0) + count
    total = sum(merged.values())
    if total <= 0:
        return None
    rank = q * total
    seen = 0.0
    ordered = sorted(merged.items(), key=lambda kv: (kv[0][1], kv[0][0]))
    for (lower, upper), count in ordered:
        if seen + count >= rank:
            if math.isinf(lower):
                return upper if not math.isinf(upper) else None
            if math.isinf(upper):
                return lower
            return lower + (upper - lower) * (rank - seen) / count
        seen += count
    (lower, upper), _ = ordered[-1]
    return upper if not math.isinf(upper) else lower
