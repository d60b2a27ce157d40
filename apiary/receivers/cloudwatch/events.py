"""``PutLogEvents`` input -> a `LogBatch`, checked against the limits CloudWatch Logs enforces.

Limits (https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_PutLogEvents.html):
at most 10,000 events and 1,048,576 bytes per call, each event counting its
UTF-8 message plus 26 bytes; events in chronological order; no more than 24
hours between the first and the last. Breaking those fails the whole call
(``InvalidParameterException``). Events more than 2 hours in the future, or
older than 14 days or the group's retention, are not an error: they are left
out and reported in ``rejectedLogEventsInfo`` while the rest are stored.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from apiary.model.log import LogBatch, build_batch, json_object, severity, trace_context

MAX_EVENTS = 10_000
MAX_BATCH_BYTES = 1_048_576
EVENT_OVERHEAD = 26
MAX_EVENT_BYTES = 1_048_576 - EVENT_OVERHEAD
MAX_SPAN_MS = 24 * 3600 * 1000
MAX_FUTURE_MS = 2 * 3600 * 1000
MAX_AGE_MS = 14 * 24 * 3600 * 1000


class InvalidEvents(ValueError):
    """The whole call is refused (``InvalidParameterException``)."""


@dataclass
class Decoded:
    batch: LogBatch
    rejected: dict[str, int]


def decode(group: str, stream: str, events: Any, retention_days: int | None, now_ms: int | None = None) -> Decoded:
    if not isinstance(events, list) or not events:
        raise InvalidEvents("logEvents must be a non-empty list of {timestamp, message} objects")
    if len(events) > MAX_EVENTS:
        raise InvalidEvents(f"1 validation error detected: Value at 'logEvents' failed to satisfy constraint: "
                            f"Member must have length less than or equal to {MAX_EVENTS} (got {len(events)} events)")
    now = int(time.time() * 1000) if now_ms is None else now_ms
    timestamps: list[int] = []
    messages: list[str] = []
    size = 0
    for i, ev in enumerate(events):
        if not isinstance(ev, dict):
            raise InvalidEvents(f"logEvents[{i}] must be an object with timestamp and message")
        ts, msg = ev.get("timestamp"), ev.get("message")
        if not isinstance(ts, int) or isinstance(ts, bool) or ts < 0:
            raise InvalidEvents(f"logEvents[{i}].timestamp must be milliseconds since the epoch, got {ts!r}")
        if not isinstance(msg, str) or not msg:
            raise InvalidEvents(f"logEvents[{i}].message must be a non-empty string")
        n = len(msg.encode("utf-8"))
        if n > MAX_EVENT_BYTES:
            raise InvalidEvents(f"logEvents[{i}] is {n} bytes; an event may be at most {MAX_EVENT_BYTES} bytes")
        size += n + EVENT_OVERHEAD
        if timestamps and ts < timestamps[-1]:
            raise InvalidEvents("Log events in a single PutLogEvents request must be in chronological order.")
        timestamps.append(ts)
        messages.append(msg)
    if size > MAX_BATCH_BYTES:
        raise InvalidEvents(f"Upload too large: {size} bytes exceeds limit of {MAX_BATCH_BYTES} "
                            f"(each event counts its UTF-8 message plus {EVENT_OVERHEAD} bytes)")
    if timestamps[-1] - timestamps[0] > MAX_SPAN_MS:
        raise InvalidEvents("The batch of log events in a single PutLogEvents request cannot span more than 24 hours.")

    # Chronological order makes the rejected events a prefix (too old) and a suffix (too new).
    too_old_end = sum(1 for t in timestamps if t < now - MAX_AGE_MS)
    expired_end = too_old_end
    if retention_days:
        expired_end = max(too_old_end, sum(1 for t in timestamps if t < now - retention_days * 86_400_000))
    too_new_start = len(timestamps) - sum(1 for t in timestamps if t > now + MAX_FUTURE_MS)
    rejected: dict[str, int] = {}
    if too_old_end:
        rejected["tooOldLogEventEndIndex"] = too_old_end
    if expired_end > too_old_end:
        rejected["expiredLogEventEndIndex"] = expired_end
    if too_new_start < len(timestamps):
        rejected["tooNewLogEventStartIndex"] = too_new_start
    lo, hi = max(too_old_end, expired_end), too_new_start
    kept_ts, kept_msgs = timestamps[lo:hi], messages[lo:hi]

    n = len(kept_msgs)
    rows: dict[str, list[Any]] = {
        "timestamp": [t * 1000 for t in kept_ts], "ingestion_time": [now * 1000] * n,
        "log_group": [group] * n, "log_stream": [stream] * n, "message": kept_msgs,
        "severity_text": [None] * n, "severity_number": [None] * n, "trace_id": [None] * n, "span_id": [None] * n,
        "source": ["cloudwatch"] * n,
    }
    for i, msg in enumerate(kept_msgs):
        doc = json_object(msg)
        rows["trace_id"][i], rows["span_id"][i] = trace_context(msg, doc)
        rows["severity_text"][i], rows["severity_number"][i] = severity(msg, doc)
    return Decoded(build_batch(rows), rejected)
