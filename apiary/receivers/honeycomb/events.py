"""Honeycomb's events API bodies (libhoney's format) -> `SpanBatch`.

An event is a flat JSON object of fields; the dataset comes from the URL.
Fields that carry Honeycomb's own column names (``trace.trace_id``,
``duration_ms``, ``name`` ...) fill the core columns when their type fits,
so libhoney-built traces and OTLP spans are queried the same way.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any

from apiary.input_limits import InputError
from apiary.input_limits import load_json as load_bounded_json
from apiary.model.builder import BatchBuilder
from apiary.model.limits import DEFAULT, SpanLimits
from apiary.model.span import CORE_FIELDS, SpanBatch
from apiary.model.timestamps import MAX_TIMESTAMP_TEXT, finite, int64, us_in_range
from apiary.receivers.refusals import MalformedPayload

_CORE_KINDS: dict[str, type | tuple[type, ...]] = {}
for _f in CORE_FIELDS:
    t = str(_f.type)
    if _f.name == "timestamp":
        continue
    _CORE_KINDS[_f.name] = (int, float) if t == "double" else int if t == "int64" else bool if t == "bool" else str


class EventError(MalformedPayload):
    """An event or body Honeycomb would refuse with 400."""


def parse_time(value: Any) -> int | None:
    """RFC 3339 text or Unix seconds -> microseconds since the epoch; None (unset: the time received) for 0.

    A time before 1970 or after 2262-04-11 is refused (`apiary.model.timestamps`).
    """
    us = _time_us(value)
    if us is None or us == 0:
        return None
    if not us_in_range(us):
        raise EventError(f"time {value!r} is outside the times Apiary keeps (1970-01-01 to {MAX_TIMESTAMP_TEXT})")
    return us


def _time_us(value: Any) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _seconds_to_us(value)
    if isinstance(value, str):
        text = value.strip()
        try:
            seconds: float | None = float(text)
        except ValueError:
            seconds = None
        if seconds is not None:
            return _seconds_to_us(seconds)
        try:
            dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except (ValueError, OverflowError):
            raise EventError(f"time {value!r} is not RFC 3339 (e.g. 2024-01-02T03:04:05.678Z) or Unix seconds") from None
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=timezone.utc)
        return int(dt.timestamp() * 1_000_000)
    raise EventError(f"time {value!r} must be a string or a number")


def _seconds_to_us(seconds: float) -> int:
    if not finite(seconds) or abs(seconds) > 1e12:  # Unix seconds past year 33658: out of range either way
        raise EventError(f"time {seconds!r} is outside the times Apiary keeps (1970-01-01 to {MAX_TIMESTAMP_TEXT})")
    return int(seconds * 1_000_000)


def load_json(body: bytes) -> Any:
    try:
        return load_bounded_json(body)
    except InputError as exc:
        raise EventError(str(exc)) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise EventError(f"body is not valid JSON: {exc}") from None


def to_batch(dataset: str, events: list[tuple[dict[str, Any], int | None, int | None]],
             limits: SpanLimits = DEFAULT) -> SpanBatch:
    """``events`` are (fields, time in us or None, sample rate or None)."""
    now_us = time.time_ns() // 1000
    b = BatchBuilder(len(events), limits)
    core = b.core
    for row, (fields, ts, sample_rate) in enumerate(events):
        core["timestamp"][row] = ts if ts is not None else now_us
        b.dataset[row] = dataset
        for key, value in fields.items():
            kind = _CORE_KINDS.get(key)
            if (kind is not None and isinstance(value, kind) and not (kind is not bool and isinstance(value, bool))
                    and (not isinstance(value, int) or int64(value))):
                core[key][row] = float(value) if key == "duration_ms" else value
            else:
                b.set_attr(row, key, value)
        if sample_rate and sample_rate != 1:
            b.set_attr(row, "meta.sample_rate", sample_rate)
    return b.build()


def single_event(dataset: str, body: bytes, event_time: str | None, sample_rate: str | None,
                 limits: SpanLimits = DEFAULT) -> SpanBatch:
    fields = load_json(body)
    if not isinstance(fields, dict):
        raise EventError("an event must be a JSON object of fields")
    rate = None
    if sample_rate:
        try:
            rate = int(sample_rate)
        except ValueError:
            raise EventError(f"X-Honeycomb-Samplerate {sample_rate!r} is not an integer") from None
        if rate < 1:
            raise EventError(f"X-Honeycomb-Samplerate {sample_rate!r} must be a positive integer")
    return to_batch(dataset, [(fields, parse_time(event_time), rate)], limits)


def batch_events(dataset: str, body: bytes, limits: SpanLimits = DEFAULT) -> tuple[SpanBatch, list[dict[str, Any]]]:
    """The batch of valid events, and Honeycomb's per-event answer list (202 or 400 with a reason)."""
    doc = load_json(body)
    if not isinstance(doc, list):
        raise EventError("a batch must be a JSON array of {\"data\": {...}, \"time\": ..., \"samplerate\": n} objects")
    good: list[tuple[dict[str, Any], int | None, int | None]] = []
    answers: list[dict[str, Any]] = []
    for i, item in enumerate(doc):
        try:
            if not isinstance(item, dict) or not isinstance(item.get("data"), dict):
                raise EventError(f"event {i} has no \"data\" object")
            # libhoney writes ``samplerate``; Honeycomb's batch API also takes ``sampleRate``.
            rate = item.get("samplerate", item.get("sampleRate"))
            if rate is not None and (not isinstance(rate, int) or isinstance(rate, bool) or rate < 1):
                raise EventError(f"event {i}: samplerate must be a positive integer")
            good.append((item["data"], parse_time(item.get("time")), rate))
            answers.append({"status": 202})
        except EventError as exc:
            answers.append({"status": 400, "error": str(exc)})
    return to_batch(dataset, good, limits), answers
