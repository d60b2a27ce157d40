"""OTLP `ExportTraceServiceRequest` -> `SpanBatch`, with Honeycomb's column mapping.

Honeycomb turns one OTLP span into one event whose columns are the span's
fields under fixed names, every resource and span attribute under its own
key (span attributes win over resource attributes), and one further event per
span event (``meta.annotation_type = span_event``) and per link
(``meta.annotation_type = link``) tied to the span by ``trace.parent_id``.

Bad values (``docs/faults.md``): a span whose start or end is past
2262-04-11 (the end of a signed 64-bit nanosecond count), or whose span id
repeats one earlier in the same trace and request, is refused and counted in
``partial_success``; a start of 0 (unset) puts the span at its end time, or
at the time received, with duration 0; an end before the start gives
duration 0; NaN and Infinity attribute values are dropped.

This module runs in the decode worker processes, so it is pure: bytes in,
Arrow table out.
"""

from __future__ import annotations

import base64
import time
from math import isfinite
from typing import Any, TypeVar

from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest, ExportTraceServiceResponse

from apiary.input_limits import InputError, load_json
from apiary.model.builder import BatchBuilder
from apiary.model.limits import DEFAULT, SpanLimits
from apiary.receivers.encoding import decompress
from apiary.receivers.refusals import MalformedPayload
from apiary.model.span import UNKNOWN_SERVICE, SpanBatch
from apiary.model.timestamps import MAX_TIMESTAMP_NS, MAX_TIMESTAMP_TEXT
from apiary.receivers.otlp.values import any_value, attributes

SPAN_KINDS = {0: "unspecified", 1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}
_ERROR = 2


class PayloadError(MalformedPayload):
    """The body is not a valid OTLP request; the message says what to fix."""


def parse_protobuf(body: bytes) -> ExportTraceServiceRequest:
    return parse_message(ExportTraceServiceRequest(), body, False, "resourceSpans")


_ID_FIELDS = ("traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id")


def _hex_ids_to_base64(node: Any) -> None:
    """OTLP/JSON writes ids as hex, protobuf's JSON mapping expects base64: convert in place."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _ID_FIELDS and isinstance(value, str):
                if value == "":
                    continue
                try:
                    node[key] = base64.b64encode(bytes.fromhex(value)).decode()
                except ValueError:
                    raise PayloadError(f"{key} {value!r} is not a hex string") from None
            else:
                _hex_ids_to_base64(value)
    elif isinstance(node, list):
        for item in node:
            _hex_ids_to_base64(item)


def load_body(body: bytes) -> Any:
    """The OTLP/JSON body as Python values, depth-limited and valid Unicode (`apiary.input_limits`)."""
    try:
        return load_json(body)
    except InputError as exc:
        raise PayloadError(str(exc)) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise PayloadError(f"body is not valid JSON: {exc}") from None


M = TypeVar("M", bound=Message)


def parse_message(req: M, body: bytes, json_body: bool, array: str) -> M:
    """``body`` (protobuf, or OTLP/JSON whose top-level ``array`` holds the data) parsed into ``req``.

    One parser for the three signals, so each gets the same depth and Unicode checks on JSON
    (`load_body`) and the same error wording.
    """
    name = type(req).__name__
    if not json_body:
        try:
            req.ParseFromString(body)
        except DecodeError as exc:
            raise PayloadError(f"body is not a valid {name} protobuf: {exc}") from None
        return req
    doc = load_body(body)
    if not isinstance(doc, dict):
        raise PayloadError(f"body must be a JSON object with a {array} array")
    _hex_ids_to_base64(doc)
    try:
        json_format.ParseDict(doc, req, ignore_unknown_fields=True)
    except json_format.ParseError as exc:
        raise PayloadError(f"body is not a valid OTLP/JSON {name}: {exc}") from None
    return req


def parse_json(body: bytes) -> ExportTraceServiceRequest:
    return parse_message(ExportTraceServiceRequest(), body, True, "resourceSpans")


def to_batch(req: ExportTraceServiceRequest, limits: SpanLimits = DEFAULT) -> SpanBatch:
    """Flatten every span (and its events and links) into rows; invalid spans are rejected, not stored."""
    total = 0
    for rs in req.resource_spans:
        for ss in rs.scope_spans:
            for span in ss.spans:
                total += 1 + len(span.events) + len(span.links)
    b = BatchBuilder(total, limits)
    counts, cap, max_bytes = b.counts, limits.max_attributes, limits.max_value_bytes
    core = b.core
    c_ts, c_dur, c_tid, c_sid, c_pid = (
        core["timestamp"], core["duration_ms"], core["trace.trace_id"], core["trace.span_id"], core["trace.parent_id"])
    c_state, c_name, c_service, c_kind = core["trace.trace_state"], core["name"], core["service.name"], core["span.kind"]
    c_status, c_smsg, c_error = core["status_code"], core["status_message"], core["error"]
    c_lname, c_lver, c_signal, c_ann = core["library.name"], core["library.version"], core["meta.signal_type"], core["meta.annotation_type"]
    c_pname, c_ltid, c_lsid = core["parent_name"], core["trace.link.trace_id"], core["trace.link.span_id"]
    c_nev, c_nlinks = core["span.num_events"], core["span.num_links"]
    dataset = b.dataset
    set_attr = b.set_attr
    attrs, kinds = b.attrs, b.kinds

    row = 0
    rejected = 0
    errors: list[str] = []
    bad_rows: list[tuple[int, int]] = []
    seen: set[tuple[bytes, bytes]] = set()
    received_ns = time.time_ns()
    for rs in req.resource_spans:
        res_attrs = attributes(rs.resource.attributes)
        service = res_attrs.get("service.name")
        service = str(service) if service not in (None, "") else UNKNOWN_SERVICE
        res_start = row
        for ss in rs.scope_spans:
            lib_name = ss.scope.name or None
            lib_version = ss.scope.version or None
            scope_attrs = attributes(ss.scope.attributes) if len(ss.scope.attributes) else None
            for span in ss.spans:
                first = row
                width = 1 + len(span.events) + len(span.links)
                tid_b, sid_b = span.trace_id, span.span_id
                if len(tid_b) != 16 or tid_b == b"\0" * 16 or len(sid_b) != 8 or sid_b == b"\0" * 8:
                    rejected += 1
                    if len(errors) < 5:
                        errors.append(
                            f"span {span.name!r} rejected: trace_id must be 16 bytes and span_id 8 bytes, not all zero "
                            f"(got {len(tid_b)} and {len(sid_b)})")
                    bad_rows.append((row, row + width))
                    row += width
                    continue
                start = span.start_time_unix_nano
                end = span.end_time_unix_nano
                problem = None
                if start > MAX_TIMESTAMP_NS or end > MAX_TIMESTAMP_NS:
                    problem = (f"start_time_unix_nano {start} / end_time_unix_nano {end} is after {MAX_TIMESTAMP_TEXT}, "
                               f"the last time a signed 64-bit nanosecond count holds")
                elif (tid_b, sid_b) in seen:
                    problem = (f"span_id {sid_b.hex()} appears twice in trace {tid_b.hex()} in this request; "
                               f"the first was kept")
                if problem is not None:
                    rejected += 1
                    if len(errors) < 5:
                        errors.append(f"span {span.name!r} rejected: {problem}")
                    bad_rows.append((row, row + width))
                    row += width
                    continue
                seen.add((tid_b, sid_b))
                if start == 0:  # unset: the span is put at its end, or at the time it was received
                    start = end if end else received_ns
                    end = start
                tid = tid_b.hex()
                sid = sid_b.hex()
                pid = span.parent_span_id.hex() or None
                status = span.status
                code = status.code
                c_ts[row] = start // 1000
                c_dur[row] = (end - start) / 1e6 if end >= start else 0.0
                c_tid[row] = tid
                c_sid[row] = sid
                c_pid[row] = pid
                c_state[row] = span.trace_state or None
                c_name[row] = span.name
                c_service[row] = service
                c_kind[row] = SPAN_KINDS.get(span.kind, "unspecified")
                c_status[row] = code
                c_smsg[row] = status.message or None
                c_error[row] = code == _ERROR
                c_lname[row] = lib_name
                c_lver[row] = lib_version
                c_signal[row] = "trace"
                c_nev[row] = len(span.events)
                c_nlinks[row] = len(span.links)
                dataset[row] = service
                if scope_attrs:
                    for k, v in scope_attrs.items():
                        set_attr(row, k, v)
                span_attrs = span.attributes
                room = cap - counts[row]
                if len(span_attrs) > room:  # past the per-span cap: the rest are counted, never decoded
                    b.dropped += len(span_attrs) - max(room, 0)
                    span_attrs = span_attrs[:max(room, 0)]
                fast = 0
                for kv in span_attrs:
                    # Inlined fast path for scalar values of an existing column of the same type.
                    v = kv.value
                    which = v.WhichOneof("value")
                    key = kv.key
                    col = attrs.get(key)
                    if col is not None:
                        kind = kinds[key]
                        if which == "string_value":
                            if kind == 0:
                                text = v.string_value
                                if len(text) * 4 <= max_bytes:
                                    col[row] = text
                                    fast += 1
                                    continue
                        elif which == "int_value":
                            if kind == 1:
                                col[row] = v.int_value
                                fast += 1
                                continue
                        elif which == "double_value":
                            if kind == 2 and isfinite(v.double_value):
                                col[row] = v.double_value
                                fast += 1
                                continue
                        elif which == "bool_value":
                            if kind == 3:
                                col[row] = v.bool_value
                                fast += 1
                                continue
                    set_attr(row, key, any_value(v))
                counts[row] += fast
                sample_rate = attrs.get("SampleRate")
                if sample_rate is not None and sample_rate[row] is not None:
                    _keep_sample_rate(b, row, sample_rate[row])
                span_row = row
                row += 1
                for ev in span.events:
                    ev_time = ev.time_unix_nano
                    c_ts[row] = (ev_time if 0 < ev_time <= MAX_TIMESTAMP_NS else start) // 1000
                    c_dur[row] = 0.0
                    c_tid[row] = tid
                    c_pid[row] = sid
                    c_name[row] = ev.name
                    c_service[row] = service
                    c_signal[row] = "trace"
                    c_ann[row] = "span_event"
                    c_pname[row] = span.name
                    c_lname[row] = lib_name
                    c_lver[row] = lib_version
                    dataset[row] = service
                    for kv in ev.attributes:
                        value = any_value(kv.value)
                        set_attr(row, kv.key, value)
                        # Honeycomb copies exception details onto the span, so errors are queryable there.
                        if ev.name == "exception" and kv.key.startswith("exception."):
                            set_attr(span_row, kv.key, value)
                    row += 1
                for link in span.links:
                    c_ts[row] = start // 1000
                    c_dur[row] = 0.0
                    c_tid[row] = tid
                    c_pid[row] = sid
                    c_name[row] = "link"
                    c_service[row] = service
                    c_signal[row] = "trace"
                    c_ann[row] = "link"
                    c_pname[row] = span.name
                    c_ltid[row] = link.trace_id.hex() or None
                    c_lsid[row] = link.span_id.hex() or None
                    dataset[row] = service
                    for kv in link.attributes:
                        set_attr(row, kv.key, any_value(kv.value))
                    row += 1
                assert row == first + width
        for k, v in res_attrs.items():
            if k != "service.name":
                b.fill_attr(res_start, row, k, v)
    keep = None
    if bad_rows:
        drop = set()
        for lo, hi in bad_rows:
            drop.update(range(lo, hi))
        keep = [i for i in range(total) if i not in drop]
    return b.build(rejected, errors, keep)


def _keep_sample_rate(b: BatchBuilder, row: int, value: Any) -> None:
    """Honeycomb weights a span by its ``SampleRate`` attribute (1 in N kept); queries read it as ``meta.sample_rate``,
    as for events sent with a sample rate. A rate that is not a number of at least 1 is left as an attribute only."""
    try:
        rate = float(value) if not isinstance(value, bool) else None
    except (TypeError, ValueError):
        rate = None
    if rate is not None and isfinite(rate) and 1 <= rate < 2**63:
        b.set_attr(row, "meta.sample_rate", int(rate) if rate == int(rate) else rate)


def decode(body: bytes, json_body: bool, limits: SpanLimits = DEFAULT) -> SpanBatch:
    req = parse_json(body) if json_body else parse_protobuf(body)
    return to_batch(req, limits)


def decode_request(body: bytes, content_encoding: str | None, json_body: bool, limit: int,
                   limits: SpanLimits = DEFAULT) -> SpanBatch:
    """Entry point for the decode workers: raw body in, batch out (or a PayloadError/encoding error)."""
    return decode(decompress(body, content_encoding, limit), json_body, limits)


def export_response(batch: SpanBatch) -> ExportTraceServiceResponse:
    """The answer to a committed request: ``partial_success`` names the spans refused and why.

    With none refused, a message alone is a warning (attributes dropped, values cut by the span limits).
    """
    resp = ExportTraceServiceResponse()
    if batch.rejected or batch.errors:
        resp.partial_success.rejected_spans = batch.rejected
        resp.partial_success.error_message = "; ".join(batch.errors)
    return resp
