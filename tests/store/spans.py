"""Span batches for the store tests, built the way the receivers build them."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

from apiary.model.builder import BatchBuilder
from apiary.model.span import SpanBatch


def batch(rows: list[dict], dataset: str = "svc", trace_id: str = "ab" * 16, ts: datetime | None = None) -> SpanBatch:
    b = BatchBuilder(len(rows))
    ts_us = int((ts or datetime.now(timezone.utc)).timestamp() * 1_000_000)
    for i, attrs in enumerate(rows):
        b.core["timestamp"][i] = ts_us + i
        b.core["trace.trace_id"][i] = trace_id
        b.core["trace.span_id"][i] = f"{i:016x}"
        b.core["name"][i] = f"s{i}"
        b.core["service.name"][i] = dataset
        b.dataset[i] = dataset
        for k, v in attrs.items():
            b.set_attr(i, k, v)
    return b.build()


def run(coro):  # noqa: ANN001, ANN201
    return asyncio.run(coro)
