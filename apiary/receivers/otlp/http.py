"""OTLP/HTTP: ``POST /v1/traces``, ``/v1/logs`` and ``/v1/metrics``, answered as the OTLP/HTTP specification asks.

The receiver gets the same narrow `OtlpSink` as OTLP/gRPC (``app.state.otlp_sink``), never the server.

Success is 200 with an ``ExportTraceServiceResponse`` (``partial_success``
when some spans were refused), in the request's own encoding. Failures carry
a ``google.rpc.Status`` whose message tells the user what to fix; 429 and
503 carry ``Retry-After`` so SDK exporters back off and retry.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable

from google.protobuf import json_format
from google.protobuf.message import Message
from google.rpc import code_pb2, status_pb2
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from apiary.permissions import Permission, needs
from apiary.receivers.encoding import read_body
from apiary.receivers.otlp import logs as otlp_logs
from apiary.receivers.otlp import metrics as otlp_metrics
from apiary.receivers.otlp import traces as otlp_traces
from apiary.receivers.otlp.auth import KEY_HEADER, missing_key, unknown_key
from apiary.receivers.otlp.sink import OtlpSink
from apiary.receivers.refusals import Refusal, refusal_for

PROTOBUF = "application/x-protobuf"
JSON = "application/json"


def _refused(refusal: Refusal, as_json: bool) -> Response:
    msg = status_pb2.Status(code=refusal.grpc_code, message=refusal.message)
    headers = {"Retry-After": str(refusal.retry_after)} if refusal.retry_after else None
    if as_json:
        return Response(json_format.MessageToJson(msg, indent=None), refusal.http_status, headers, media_type=JSON)
    return Response(msg.SerializeToString(), refusal.http_status, headers, media_type=PROTOBUF)


def _unsupported_type(ctype: str) -> Refusal:
    return Refusal(415, code_pb2.INVALID_ARGUMENT, f"unsupported Content-Type {ctype or '(none)'!r}: send {PROTOBUF} or {JSON}")


Decoder = Callable[..., Any]
Append = Callable[[OtlpSink, str, Any], Awaitable[None]]
Respond = Callable[[Any], Message]


async def _export(request: Request, noun: str, decoder: Decoder, extra: tuple[Any, ...], append: Append,
                  respond: Respond) -> Response:
    """One signal's export: content type, key, body, decode (on the workers past 16 KiB), commit, answer.

    The three signals differ only in their decoder, where the batch goes and the response message, so
    each refusal is worded once, in `apiary.receivers.refusals`, as for OTLP/gRPC.
    """
    sink: OtlpSink = request.app.state.otlp_sink
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    as_json = ctype == JSON
    if ctype not in (PROTOBUF, JSON):
        return _refused(_unsupported_type(ctype), False)
    key = request.headers.get(KEY_HEADER)
    env = sink.environment(key)
    if env is None:
        return _refused(unknown_key() if key else missing_key(), as_json)
    limit = sink.max_body_bytes
    try:
        body = await read_body(request, limit)
        batch = await sink.decode(len(body), decoder, body, request.headers.get("content-encoding"), as_json, limit,
                                  *extra)
        await append(sink, env, batch)
    except Exception as exc:
        refusal = refusal_for(exc, noun)
        if refusal is None:
            raise
        return _refused(refusal, as_json)
    resp = respond(batch)
    if as_json:
        return Response(json_format.MessageToJson(resp, indent=None), 200, media_type=JSON)
    return Response(resp.SerializeToString(), 200, media_type=PROTOBUF)


@needs(Permission.INGEST)
async def export_traces(request: Request) -> Response:
    limits = request.app.state.otlp_sink.span_limits
    return await _export(request, "spans", otlp_traces.decode_request, (limits,),
                         lambda sink, env, batch: sink.append_spans(env, batch), otlp_traces.export_response)


@needs(Permission.INGEST)
async def export_logs(request: Request) -> Response:
    """``POST /v1/logs``: into the log store; large bodies decoded off the event loop, as traces are
    (20 bodies of 19 MiB decoded inline held the loop for seconds)."""
    return await _export(request, "log records", otlp_logs.decode_request, (),
                         lambda sink, env, batch: sink.append_logs(env, batch), otlp_logs.export_response)


@needs(Permission.INGEST)
async def export_metrics(request: Request) -> Response:
    """``POST /v1/metrics``: data points become rows of the span store."""
    return await _export(request, "data points", otlp_metrics.decode_request, (),
                         lambda sink, env, batch: sink.append_metrics(env, batch), otlp_metrics.export_response)


routes = [Route("/v1/traces", export_traces, methods=["POST"]), Route("/v1/logs", export_logs, methods=["POST"]),
          Route("/v1/metrics", export_metrics, methods=["POST"])]
