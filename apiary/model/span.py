"""The normalised span record, as Honeycomb names its columns.

Every trace receiver (OTLP, Honeycomb events, X-Ray) produces a `SpanBatch`:
an Arrow table whose *core* columns have the fixed names and types below and
whose other columns are attributes, one column per attribute key, typed by
the values the client sent. Span events and links are rows of the same
table, told apart by ``meta.annotation_type`` -- exactly as Honeycomb stores
them, so a COUNT over a dataset means the same thing here as there.

The names are the user-facing names (``trace.trace_id``, ``duration_ms``);
how a store lays them out physically is the store's business.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import pyarrow as pa

from apiary.model import ipc

TIMESTAMP_TYPE = pa.timestamp("us", tz="UTC")

#: Columns every span row has (possibly null), with their Arrow types.
CORE_FIELDS: tuple[pa.Field, ...] = (
    pa.field("timestamp", TIMESTAMP_TYPE),
    pa.field("duration_ms", pa.float64()),
    pa.field("trace.trace_id", pa.string()),
    pa.field("trace.span_id", pa.string()),
    pa.field("trace.parent_id", pa.string()),
    pa.field("trace.trace_state", pa.string()),
    pa.field("name", pa.string()),
    pa.field("service.name", pa.string()),
    pa.field("span.kind", pa.string()),
    pa.field("status_code", pa.int64()),
    pa.field("status_message", pa.string()),
    pa.field("error", pa.bool_()),
    pa.field("library.name", pa.string()),
    pa.field("library.version", pa.string()),
    pa.field("meta.signal_type", pa.string()),
    pa.field("meta.annotation_type", pa.string()),
    pa.field("parent_name", pa.string()),
    pa.field("trace.link.trace_id", pa.string()),
    pa.field("trace.link.span_id", pa.string()),
    pa.field("span.num_events", pa.int64()),
    pa.field("span.num_links", pa.int64()),
)
CORE_SCHEMA = pa.schema(CORE_FIELDS)
CORE_NAMES: frozenset[str] = frozenset(f.name for f in CORE_FIELDS)

#: The dataset a row belongs to (Honeycomb: one per ``service.name``).
DATASET_COLUMN = "_dataset"
#: Attribute values that could not take their column's type, as a JSON object.
OVERFLOW_COLUMN = "_attrs"
#: When the store accepted the row's batch (Honeycomb's ``INGEST_TIMESTAMP()``): stamped by the store before it
#: acknowledges, kept in its span tables, and shown by no reader of whole rows -- only calculated fields read it.
INGEST_COLUMN = "_ingest_timestamp"
INTERNAL_NAMES: frozenset[str] = frozenset({DATASET_COLUMN, OVERFLOW_COLUMN, INGEST_COLUMN})

#: Honeycomb's dataset name for spans without ``service.name``.
UNKNOWN_SERVICE = "unknown_service"

#: Honeycomb's column types, keyed by the Arrow type an attribute column has.
COLUMN_TYPES: dict[pa.DataType, str] = {
    pa.string(): "string",
    pa.int64(): "integer",
    pa.float64(): "float",
    pa.bool_(): "boolean",
    TIMESTAMP_TYPE: "timestamp",
}
ARROW_TYPES: dict[str, pa.DataType] = {v: k for k, v in COLUMN_TYPES.items()}


def column_type(arrow_type: pa.DataType) -> str:
    """Honeycomb's type name for an Arrow type (anything unusual is a string)."""
    return COLUMN_TYPES.get(arrow_type, "string")


@dataclass
class SpanBatch(ipc.PickledAsIPC):
    """Rows bound for one environment, plus what the decoder refused.

    ``table`` always has the core columns, ``_dataset``, ``_attrs`` and then
    one column per attribute key. ``rejected`` counts spans the receiver
    dropped as invalid; ``errors`` says why, for the protocol's partial-success
    answer.
    """

    table: pa.Table
    rejected: int = 0
    errors: list[str] = field(default_factory=list)
    #: Microseconds since the epoch when a store accepted the batch (``INGEST_COLUMN``); None until then, and
    #: for batches an older intake log kept without one.
    arrived_us: int | None = None

    @property
    def num_rows(self) -> int:
        return self.table.num_rows

    def arrive(self) -> None:
        """Stamp the batch as accepted now, once: a batch handed on again keeps its first time."""
        if self.arrived_us is None:
            self.arrived_us = time.time_ns() // 1000

    def arrival_column(self) -> pa.Array:
        """``INGEST_COLUMN``'s values for every row, as the stores keep timestamps (UTC, without the zone)."""
        return pa.repeat(pa.scalar(self.arrived_us, pa.timestamp("us")), self.num_rows)

    def attribute_names(self) -> list[str]:
        return [n for n in self.table.column_names if n not in CORE_NAMES and n not in INTERNAL_NAMES]
