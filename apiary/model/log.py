"""The normalised log record, and how a trace context is found in one.

Every log receiver (CloudWatch Logs ``PutLogEvents``, OTLP ``/v1/logs``)
produces a `LogBatch`: an Arrow table with the columns of `LOG_SCHEMA`, one
row per log event. Attributes (OTLP record and resource attributes, and the
top-level fields of a JSON message) travel as one JSON object per row, so
their values keep their JSON types -- an integer stays an integer, as in a
span's typed attribute columns -- while a log group whose lines all differ
cannot grow a table without bound.

A log line is tied to a trace when it carries a trace context: a
``trace_id`` (or ``traceId``) field of a JSON message, a W3C ``traceparent``,
an X-Ray ``Root=1-...`` / bare ``1-xxxxxxxx-...`` id, or -- for OTLP -- the
record's own trace and span ids. Trace ids are stored in the W3C spelling
(`apiary.model.ids`), the one the span store uses, so a log line and the
spans of its request meet on one key.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from apiary.model import ipc
from apiary.model.ids import is_span_id, is_w3c_trace_id, xray_to_w3c

TIMESTAMP_TYPE = pa.timestamp("us", tz="UTC")

LOG_FIELDS: tuple[pa.Field, ...] = (
    pa.field("timestamp", TIMESTAMP_TYPE),
    pa.field("ingestion_time", TIMESTAMP_TYPE),
    pa.field("log_group", pa.string()),
    pa.field("log_stream", pa.string()),
    pa.field("message", pa.string()),
    pa.field("severity_text", pa.string()),
    pa.field("severity_number", pa.int32()),
    pa.field("trace_id", pa.string()),
    pa.field("span_id", pa.string()),
    #: JSON object of attributes (values keep their JSON types), or null.
    pa.field("attributes", pa.string()),
    #: ``cloudwatch`` or ``otlp``: the wire format, for display only.
    pa.field("source", pa.string()),
)
LOG_SCHEMA = pa.schema(LOG_FIELDS)
LOG_NAMES = tuple(f.name for f in LOG_FIELDS)

SOURCES = ("cloudwatch", "otlp")

# OTel severity numbers for the level words a message or a JSON field may carry.
SEVERITY_NUMBERS = {"TRACE": 1, "DEBUG": 5, "INFO": 9, "NOTICE": 10, "WARN": 13, "WARNING": 13, "ERROR": 17,
                    "CRITICAL": 21, "FATAL": 21}
_LEVEL_WORD = re.compile(r"\b(TRACE|DEBUG|INFO|NOTICE|WARN|WARNING|ERROR|CRITICAL|FATAL)\b")
#: ``level=warn`` (logfmt, as Go's and Node's loggers write), and a lower-case level opening the line (``error: ...``).
_LOGFMT_LEVEL = re.compile(r"(?:^|\s)(?:level|lvl|severity)=\"?(trace|debug|info|notice|warn|warning|error|critical|fatal)\b",
                           re.IGNORECASE)
_LEADING_LEVEL = re.compile(r"^\s*\[?(trace|debug|info|notice|warn|warning|error|critical|fatal)\b", re.IGNORECASE)

_TRACEPARENT = re.compile(r"\b00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}\b")
_XRAY_ID = re.compile(r"\b(1-[0-9a-fA-F]{8}-[0-9a-fA-F]{24})\b")
_XRAY_PARENT = re.compile(r"\bParent=([0-9a-f]{16})\b")
_TRACE_KEYS = ("trace_id", "traceId", "trace.trace_id", "otelTraceID", "AWS-XRAY-TRACE-ID", "xray_trace_id")
_SPAN_KEYS = ("span_id", "spanId", "trace.span_id", "otelSpanID")


@dataclass
class LogBatch(ipc.PickledAsIPC):
    """Rows of one request bound for one environment; ``table`` follows `LOG_SCHEMA`."""

    table: pa.Table
    rejected: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def num_rows(self) -> int:
        return self.table.num_rows


def json_object(message: str) -> dict[str, Any] | None:
    """The message as a JSON object, when it is one (CloudWatch treats such lines as structured)."""
    text = message.lstrip()
    if not text.startswith("{"):
        return None
    try:
        doc = json.loads(text)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


def _trace_id(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    v = value.strip()
    m = _XRAY_ID.search(v)
    if m:
        return xray_to_w3c(m.group(1))
    m = _TRACEPARENT.search(v)
    if m:
        return m.group(1)
    v = v.lower().replace("-", "")
    return v if is_w3c_trace_id(v) else None


def trace_context(message: str, doc: dict[str, Any] | None = None) -> tuple[str | None, str | None]:
    """(trace_id, span_id) carried by a log message, W3C spelling; (None, None) when it has none."""
    if doc is not None:
        for k in _TRACE_KEYS:
            tid = _trace_id(doc.get(k))
            if tid:
                span = next((str(doc[s]).lower() for s in _SPAN_KEYS if isinstance(doc.get(s), str)), None)
                return tid, span if span and is_span_id(span) else None
    m = _TRACEPARENT.search(message)
    if m:
        return m.group(1), m.group(2)
    m = _XRAY_ID.search(message)
    if m:
        parent = _XRAY_PARENT.search(message)
        return xray_to_w3c(m.group(1)), parent.group(1) if parent else None
    return None, None


def severity(message: str, doc: dict[str, Any] | None = None) -> tuple[str | None, int | None]:
    """The level a line states: a JSON ``level``/``severity`` field, a logfmt ``level=``, an upper-case level word,
    or a level word opening the line -- what the LEVEL column shows for CloudWatch events, which carry no level."""
    if doc is not None:
        for k in ("level", "severity", "levelname", "log.level", "severity_text"):
            v = doc.get(k)
            if isinstance(v, str) and v:
                return v, SEVERITY_NUMBERS.get(v.upper())
    head = message[:200]
    m = _LOGFMT_LEVEL.search(head) or _LEVEL_WORD.search(head) or _LEADING_LEVEL.match(head)
    if m:
        word = m.group(1).upper()
        return word, SEVERITY_NUMBERS[word]
    return None, None


def build_batch(rows: dict[str, list[Any]]) -> LogBatch:
    """Columns (by `LOG_NAMES`, equal lengths) -> a `LogBatch`; missing columns are null."""
    n = len(rows["message"])
    arrays = [pa.array(rows.get(f.name, [None] * n), type=f.type) for f in LOG_FIELDS]
    return LogBatch(pa.Table.from_arrays(arrays, schema=LOG_SCHEMA))
