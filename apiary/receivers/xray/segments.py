"""X-Ray segment documents -> spans.

One segment or subsegment becomes one span row: a segment is the ``server``
span of its service (``service.name`` = the segment's name, which is also the
dataset); its subsegments, nested or sent on their own, are child spans.
The X-Ray trace id becomes the W3C one (same 128 bits), so a request traced
by OTel with the X-Ray id generator and by the X-Ray SDK is one trace.

Fields keep X-Ray's meaning under Honeycomb-style names: ``http.method``,
``http.status_code`` ..., ``annotation.<key>`` (typed, as X-Ray indexes them),
``metadata.<namespace>.<key>`` (JSON text for objects), ``aws.*``, ``sql.*``,
``xray.fault|error|throttle`` and the first exception's ``exception.*``.
The top document is kept verbatim in ``xray.segment_document`` so
BatchGetTraces answers with what the SDK sent.

In-progress documents are stored too, flagged ``xray.in_progress``; the
completed version of the same id supersedes them at read time (see
``queries.py``). Buffering instead would lose the in-progress segment of a
request that never finishes -- the one worth seeing.
"""

from __future__ import annotations

import json
import re
import threading
from collections import OrderedDict
from typing import Any

from apiary.input_limits import InputError, load_json
from apiary.model.builder import BatchBuilder
from apiary.model.limits import DEFAULT, SpanLimits
from apiary.model.timestamps import MAX_TIMESTAMP_TEXT, MAX_TIMESTAMP_US
from apiary.model.ids import xray_to_w3c
from apiary.model.span import UNKNOWN_SERVICE, SpanBatch

#: X-Ray's own limit for one segment document (the UDP datagram limit is the same).
MAX_DOCUMENT_BYTES = 64 * 1024
HEADER = {"format": "json", "version": 1}
_ID = re.compile(r"^[0-9a-f]{16}$")
_XRAY_TRACE = re.compile(r"^1-[0-9a-fA-F]{8}-[0-9a-fA-F]{24}$")
_MAX_DEPTH = 32
_STATUS_ERROR = 2


class SegmentError(ValueError):
    """A document X-Ray would refuse; the message says which field is wrong."""

    def __init__(self, message: str, segment_id: str | None = None) -> None:
        super().__init__(message)
        self.segment_id = segment_id


def parse_datagram(data: bytes) -> tuple[dict[str, Any], str]:
    """The daemon's wire format: ``{"format": "json", "version": 1}`` newline, then one document.

    Answers the validated document and its text (kept verbatim for BatchGetTraces).
    """
    if len(data) > MAX_DOCUMENT_BYTES + 64:
        raise SegmentError(f"datagram of {len(data)} bytes is larger than X-Ray's {MAX_DOCUMENT_BYTES} byte limit")
    head, sep, body = data.partition(b"\n")
    if not sep:
        raise SegmentError('datagram has no header line: expected {"format": "json", "version": 1} and a newline')
    try:
        header = load_json(head, "datagram header")
    except (ValueError, UnicodeDecodeError):
        raise SegmentError("datagram header is not JSON") from None
    if not isinstance(header, dict) or header.get("format") != "json" or header.get("version") != 1:
        raise SegmentError(f'datagram header must be {{"format": "json", "version": 1}}, got {head[:80]!r}')
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise SegmentError("segment document is not UTF-8") from None
    return parse_document(text), text


def parse_document(text: bytes | str) -> dict[str, Any]:
    """One segment document (PutTraceSegments sends them as strings), validated."""
    size = len(text.encode() if isinstance(text, str) else text)
    if size > MAX_DOCUMENT_BYTES:
        raise SegmentError(f"segment document of {size} bytes is larger than X-Ray's {MAX_DOCUMENT_BYTES} byte limit")
    try:
        doc = load_json(text, "segment document")
    except InputError as exc:
        raise SegmentError(str(exc)) from None
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise SegmentError(f"segment document is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise SegmentError("segment document must be a JSON object")
    validate(doc, top=True)
    return doc


def validate(doc: dict[str, Any], *, top: bool, depth: int = 0) -> None:
    sid = doc.get("id") if isinstance(doc.get("id"), str) else None
    if depth > _MAX_DEPTH:
        raise SegmentError(f"subsegments nested deeper than {_MAX_DEPTH} levels", sid)
    if not isinstance(doc.get("id"), str) or not _ID.match(doc["id"]):
        raise SegmentError(f"'id' must be 16 lower-case hex digits, got {doc.get('id')!r}", sid)
    name = doc.get("name")
    if not isinstance(name, str) or not name or len(name) > 250:
        raise SegmentError(f"segment {sid}: 'name' must be a non-empty string of at most 250 characters", sid)
    is_sub = doc.get("type") == "subsegment"
    if top:
        tid = doc.get("trace_id")
        if not isinstance(tid, str) or not _XRAY_TRACE.match(tid):
            raise SegmentError(f"segment {sid}: 'trace_id' must look like 1-5759e988-bd862e3fe1be46a994272793, got {tid!r}", sid)
        if is_sub and not (isinstance(doc.get("parent_id"), str) and _ID.match(doc["parent_id"])):
            raise SegmentError(f"subsegment {sid} sent on its own needs 'parent_id' (16 hex digits)", sid)
    if "parent_id" in doc and doc["parent_id"] is not None and not (
            isinstance(doc["parent_id"], str) and _ID.match(doc["parent_id"])):
        raise SegmentError(f"segment {sid}: 'parent_id' must be 16 lower-case hex digits", sid)
    start = doc.get("start_time")
    if not _number(start) or start <= 0:
        raise SegmentError(f"segment {sid}: 'start_time' must be epoch seconds, got {start!r}", sid)
    if start * 1e6 > MAX_TIMESTAMP_US or (_number(doc.get("end_time")) and doc["end_time"] * 1e6 > MAX_TIMESTAMP_US):
        raise SegmentError(f"segment {sid}: 'start_time' and 'end_time' must be before {MAX_TIMESTAMP_TEXT}", sid)
    end = doc.get("end_time")
    if end is None:
        if doc.get("in_progress") is not True:
            raise SegmentError(f"segment {sid}: needs 'end_time' or \"in_progress\": true", sid)
    elif not _number(end) or end < start:
        raise SegmentError(f"segment {sid}: 'end_time' must be epoch seconds not before start_time", sid)
    subs = doc.get("subsegments")
    if subs is not None:
        if not isinstance(subs, list):
            raise SegmentError(f"segment {sid}: 'subsegments' must be a list", sid)
        for sub in subs:
            if not isinstance(sub, dict):
                raise SegmentError(f"segment {sid}: each subsegment must be an object", sid)
            validate(sub, top=False, depth=depth + 1)


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and v == v and v not in (float("inf"), float("-inf"))


class SegmentNames:
    """Recently seen segment and subsegment ids -> their service, for subsegments sent on their own."""

    def __init__(self, size: int = 100_000) -> None:
        self.size = size
        self._names: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()  # the daemon's thread and the API both write

    def get(self, span_id: str | None) -> str | None:
        return self._names.get(span_id) if span_id else None

    def put(self, span_id: str, service: str) -> None:
        with self._lock:
            self._names[span_id] = service
            if len(self._names) > self.size:
                self._names.popitem(last=False)


def to_batch(docs: list[tuple[dict[str, Any], str]], names: SegmentNames | None = None,
             limits: SpanLimits = DEFAULT) -> SpanBatch:
    """Validated documents (with their original text) -> one `SpanBatch`, one row per (sub)segment."""
    names = names or SegmentNames()
    flat: list[tuple[dict[str, Any], dict[str, Any] | None, str, str, str | None]] = []
    for doc, raw in docs:
        is_sub = doc.get("type") == "subsegment"
        service = doc["name"] if not is_sub else (names.get(doc.get("parent_id")) or UNKNOWN_SERVICE)
        _flatten(doc, None, service, flat, names, raw)
    b = BatchBuilder(len(flat), limits)
    core = b.core
    for row, (ent, parent, service, trace_id, raw) in enumerate(flat):
        top = raw is not None
        is_segment = top and ent.get("type") != "subsegment"
        start = float(ent["start_time"])
        end = ent.get("end_time")
        fault, error, throttle = bool(ent.get("fault")), bool(ent.get("error")), bool(ent.get("throttle"))
        core["timestamp"][row] = int(round(start * 1_000_000))
        core["duration_ms"][row] = (float(end) - start) * 1000.0 if end is not None else None
        core["trace.trace_id"][row] = trace_id
        core["trace.span_id"][row] = ent["id"]
        core["trace.parent_id"][row] = parent["id"] if parent is not None else ent.get("parent_id")
        core["name"][row] = ent["name"]
        core["service.name"][row] = service
        core["span.kind"][row] = "server" if is_segment else (
            "client" if ent.get("namespace") in ("remote", "aws") else "internal")
        core["status_code"][row] = _STATUS_ERROR if (fault or error) else 0
        core["error"][row] = fault or error
        core["meta.signal_type"][row] = "trace"
        core["parent_name"][row] = parent["name"] if parent is not None else None
        aws = ent.get("aws")
        if isinstance(aws, dict) and isinstance(aws.get("xray"), dict):
            core["library.name"][row] = aws["xray"].get("sdk") or "X-Ray"
            core["library.version"][row] = aws["xray"].get("sdk_version")
        b.dataset[row] = service
        _attributes(b, row, ent, is_segment, fault, error, throttle)
        if top:
            b.set_raw(row, "xray.segment_document", raw)
    return b.build()


def _flatten(ent: dict[str, Any], parent: dict[str, Any] | None, service: str,
             out: list[tuple[dict[str, Any], dict[str, Any] | None, str, str, str | None]],
             names: SegmentNames, raw: str | None, trace_id: str | None = None) -> None:
    trace_id = trace_id or xray_to_w3c(ent["trace_id"])
    out.append((ent, parent, service, trace_id, raw))
    names.put(ent["id"], service)
    for sub in ent.get("subsegments") or ():
        _flatten(sub, ent, service, out, names, None, trace_id)


_HTTP_REQUEST = {"method": "http.method", "url": "http.url", "user_agent": "http.user_agent",
                 "client_ip": "http.client_ip", "x_forwarded_for": "http.x_forwarded_for", "traced": "http.traced"}
_HTTP_RESPONSE = {"status": "http.status_code", "content_length": "http.response_content_length"}


def _attributes(b: BatchBuilder, row: int, ent: dict[str, Any], is_segment: bool,
                fault: bool, error: bool, throttle: bool) -> None:
    set_attr = b.set_attr
    set_attr(row, "xray.type", "segment" if is_segment else "subsegment")
    set_attr(row, "xray.in_progress", ent.get("in_progress") is True)
    set_attr(row, "xray.fault", fault)
    set_attr(row, "xray.error", error)
    set_attr(row, "xray.throttle", throttle)
    for key, attr in (("origin", "xray.origin"), ("namespace", "xray.namespace"), ("user", "enduser.id"),
                      ("resource_arn", "aws.resource_arn")):
        if isinstance(ent.get(key), str):
            set_attr(row, attr, ent[key])
    service = ent.get("service")
    if isinstance(service, dict):
        _flat(b, row, "service", service)
    http = ent.get("http")
    if isinstance(http, dict):
        for part, table in (("request", _HTTP_REQUEST), ("response", _HTTP_RESPONSE)):
            section = http.get(part)
            if isinstance(section, dict):
                for k, v in section.items():
                    set_attr(row, table.get(k, f"http.{part}.{k}"), _scalar(v))
    for section in ("aws", "sql"):
        value = ent.get(section)
        if isinstance(value, dict):
            _flat(b, row, section, value)
    sql = ent.get("sql")
    if isinstance(sql, dict) and isinstance(sql.get("sanitized_query"), str):
        set_attr(row, "db.statement", sql["sanitized_query"])
    annotations = ent.get("annotations")
    if isinstance(annotations, dict):
        for k, v in annotations.items():
            set_attr(row, f"annotation.{k}", _scalar(v))
    metadata = ent.get("metadata")
    if isinstance(metadata, dict):
        for ns, values in metadata.items():
            if isinstance(values, dict):
                for k, v in values.items():
                    set_attr(row, f"metadata.{ns}.{k}", _scalar(v))
            else:
                set_attr(row, f"metadata.{ns}", _scalar(values))
    cause = ent.get("cause")
    if isinstance(cause, str):
        set_attr(row, "xray.cause.id", cause)
    elif isinstance(cause, dict):
        if isinstance(cause.get("working_directory"), str):
            set_attr(row, "xray.cause.working_directory", cause["working_directory"])
        exceptions = cause.get("exceptions")
        if isinstance(exceptions, list) and exceptions:
            first = exceptions[0] if isinstance(exceptions[0], dict) else {}
            set_attr(row, "exception.type", _scalar(first.get("type")))
            set_attr(row, "exception.message", _scalar(first.get("message")))
            if first.get("stack") is not None:
                set_attr(row, "exception.stacktrace", json.dumps(first["stack"], separators=(",", ":")))
            set_attr(row, "xray.cause.exceptions", json.dumps(exceptions, separators=(",", ":")))
            # Whether the first exception is also the last of the entity's list (``rootcause.*.exception { last }``).
            set_attr(row, "xray.cause.exception_count", len(exceptions))


def _flat(b: BatchBuilder, row: int, prefix: str, obj: dict[str, Any], depth: int = 0) -> None:
    for k, v in obj.items():
        key = f"{prefix}.{k}"
        if isinstance(v, dict) and depth < 2:
            _flat(b, row, key, v, depth + 1)
        else:
            b.set_attr(row, key, _scalar(v))


def _scalar(v: Any) -> Any:
    """Scalars stay typed; lists and objects become JSON text; NaN and infinities become text."""
    if isinstance(v, float) and not _number(v):
        return str(v)
    if isinstance(v, int) and not isinstance(v, bool) and not -2**63 <= v < 2**63:
        return str(v)
    if isinstance(v, (list, dict)):
        return json.dumps(v, separators=(",", ":"), default=str)
    return v
