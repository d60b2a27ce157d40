"""Span batches for the store tests, built the way the receivers build them."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from typing import Any

from apiary.model.builder import BatchBuilder
from apiary.model.span import SpanBatch
from apiary.query.engine import run_query
from apiary.query.spec import QuerySpec


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


def arrivals(store: Any, env: str = "e", dataset: str = "svc", by: str = "k") -> dict[Any, float | None]:
    """``by``'s value -> the latest ``INGEST_TIMESTAMP()`` of its spans (None: never stamped), through the query engine
    as the Query Data API runs it, over the last hour."""
    spec = QuerySpec.model_validate({"time_range": 3600, "calculated_fields": [{"name": "arrived", "expression": "INGEST_TIMESTAMP()"}],
                                     "breakdowns": [by], "calculations": [{"op": "MAX", "column": "arrived"}]})
    rows = run_query(store, env, dataset, spec).data["results"]
    return {r["data"][by]: r["data"]["MAX(arrived)"] for r in rows}
