"""OTLP ``ExportLogsServiceRequest`` -> `LogBatch`, in the same log store as CloudWatch Logs.

A record lands in the log group named by its resource's ``service.name``
(the same name its spans' dataset has) and in a stream named by
``host.name`` (else ``otlp``), so ``DescribeLogGroups`` and Insights see it
like any CloudWatch line. The record's own trace and span ids link it to its
trace; a record without them may still carry one in its body.
"""

from __future__ import annotations

import time
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest, ExportLogsServiceResponse

from apiary.model.builder import json_text
from apiary.model.log import LogBatch, build_batch, json_object, trace_context
from apiary.model.span import UNKNOWN_SERVICE
from apiary.model.timestamps import MAX_TIMESTAMP_NS
from apiary.receivers.encoding import decompress
from apiary.receivers.otlp.traces import parse_message
from apiary.receivers.otlp.values import any_value, attributes

DEFAULT_STREAM = "otlp"


def parse(body: bytes, json_body: bool) -> ExportLogsServiceRequest:
    return parse_message(ExportLogsServiceRequest(), body, json_body, "resourceLogs")


def to_batch(req: ExportLogsServiceRequest, now_us: int | None = None) -> LogBatch:
    now = now_us or int(time.time() * 1e6)
    rows: dict[str, list[Any]] = {k: [] for k in ("timestamp", "ingestion_time", "log_group", "log_stream", "message",
                                                   "severity_text", "severity_number", "trace_id", "span_id",
                                                   "attributes", "source")}
    for rl in req.resource_logs:
        res = attributes(rl.resource.attributes)
        group = str(res.get("service.name") or UNKNOWN_SERVICE)
        stream = str(res.get("host.name") or DEFAULT_STREAM)
        for sl in rl.scope_logs:
            for rec in sl.log_records:
                body = any_value(rec.body)
                message = body if isinstance(body, str) else json_text(body)
                tid = rec.trace_id.hex() if len(rec.trace_id) == 16 and any(rec.trace_id) else None
                sid = rec.span_id.hex() if len(rec.span_id) == 8 and any(rec.span_id) else None
                if tid is None and message:
                    tid, sid = trace_context(message, json_object(message))
                attrs = {**{k: v for k, v in res.items() if k != "service.name"}, **attributes(rec.attributes)}
                if sl.scope.name:
                    attrs["otel.scope.name"] = sl.scope.name
                # A time past 2262-04-11 (``apiary.model.timestamps``) falls back like an unset one.
                ts = next((t for t in (rec.time_unix_nano, rec.observed_time_unix_nano) if 0 < t <= MAX_TIMESTAMP_NS), 0)
                rows["timestamp"].append(ts // 1000 if ts else now)
                rows["ingestion_time"].append(now)
                rows["log_group"].append(group)
                rows["log_stream"].append(stream)
                rows["message"].append(message or "")
                rows["severity_text"].append(rec.severity_text or None)
                rows["severity_number"].append(rec.severity_number or None)
                rows["trace_id"].append(tid)
                rows["span_id"].append(sid)
                rows["attributes"].append(json_text(attrs) if attrs else None)
                rows["source"].append("otlp")
    return build_batch(rows)


def streams(batch: LogBatch) -> set[tuple[str, str]]:
    """The (log group, log stream) pairs a batch writes to, which the log store must know before the append."""
    table = batch.table
    return set(zip(table.column("log_group").to_pylist(), table.column("log_stream").to_pylist()))


def decode_request(body: bytes, content_encoding: str | None, json_body: bool, limit: int) -> LogBatch:
    """Raw body in, batch out (or a PayloadError / encoding error); pure, like the trace decoder."""
    return to_batch(parse(decompress(body, content_encoding, limit), json_body))


def export_response(batch: LogBatch) -> ExportLogsServiceResponse:
    """The answer to a committed request; the decoder refuses no single record, so never a partial success."""
    return ExportLogsServiceResponse()
