"""OTLP/HTTP: ``POST /v1/traces``, answered as the OTLP/HTTP specification asks.

Success is 200 with an ``ExportTraceServiceResponse`` (``partial_success``
when some spans were refused), in the request's own encoding. Failures carry
a ``google.rpc.Status`` whose message tells the user what to fix; 429 and
503 carry ``Retry-After`` so SDK exporters back off and retry.
"""

from __future__ import annotations

from google.protobuf import json_format
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
from apiary.receivers.refusals import Refusal, refusal_for
from apiary.server.context import Apiary

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


@needs(Permission.INGEST)
async def export_traces(request: Request) -> Response:
    ctx: Apiary = request.app.state.apiary
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    as_json = ctype == JSON
    if ctype not in (PROTOBUF, JSON):
        return _refused(_unsupported_type(ctype), False)
    key = request.headers.get(KEY_HEADER)
    api_key = ctx.authenticate(key)
    if api_key is None:
        return _refused(unknown_key() if key else missing_key(), as_json)
    limit = ctx.settings.max_body_bytes
    try:
        body = await read_body(request, limit)
        batch = await ctx.pool.run(len(body), otlp_traces.decode_request, body, request.headers.get("content-encoding"),
                                   as_json, limit, ctx.settings.span_limits)
        await ctx.store.append(api_key.environment, batch)
    except Exception as exc:
        refusal = refusal_for(exc, "spans")
        if refusal is None:
            raise
        return _refused(refusal, as_json)
    resp = otlp_traces.export_response(batch)
    if as_json:
        return Response(json_format.MessageToJson(resp, indent=None), 200, media_type=JSON)
    return Response(resp.SerializeToString(), 200, media_type=PROTOBUF)


@needs(Permission.INGEST)
async def export_logs(request: Request) -> Response:
    """``POST /v1/logs``: the same checks and answers as traces, into the log store."""
    ctx: Apiary = request.app.state.apiary
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    as_json = ctype == JSON
    if ctype not in (PROTOBUF, JSON):
        return _refused(_unsupported_type(ctype), False)
    key = request.headers.get(KEY_HEADER)
    api_key = ctx.authenticate(key)
    if api_key is None:
        return _refused(unknown_key() if key else missing_key(), as_json)
    if ctx.logs is None:
        return _refused(Refusal(503, code_pb2.UNAVAILABLE, "the log store is not open", 5), as_json)
    limit = ctx.settings.max_body_bytes
    try:
        body = await read_body(request, limit)
        # Off the event loop for large bodies, as traces are: 20 bodies of 19 MiB decoded inline held it for seconds.
        batch = await ctx.pool.run(len(body), otlp_logs.decode_request, body, request.headers.get("content-encoding"),
                                   as_json, limit)
        for group, stream in otlp_logs.streams(batch):
            await ctx.logs.ensure_stream(api_key.environment, group, stream)
        await ctx.logs.append(api_key.environment, batch)
    except Exception as exc:
        refusal = refusal_for(exc, "log records")
        if refusal is None:
            raise
        return _refused(refusal, as_json)
    resp = otlp_logs.export_response(batch)
    if as_json:
        return Response(json_format.MessageToJson(resp, indent=None), 200, media_type=JSON)
    return Response(resp.SerializeToString(), 200, media_type=PROTOBUF)


@needs(Permission.INGEST)
async def export_metrics(request: Request) -> Response:
    """``POST /v1/metrics``: the same checks and answers as traces; data points become rows of the span store."""
    ctx: Apiary = request.app.state.apiary
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    as_json = ctype == JSON
    if ctype not in (PROTOBUF, JSON):
        return _refused(_unsupported_type(ctype), False)
    key = request.headers.get(KEY_HEADER)
    api_key = ctx.authenticate(key)
    if api_key is None:
        return _refused(unknown_key() if key else missing_key(), as_json)
    limit = ctx.settings.max_body_bytes
    try:
        body = await read_body(request, limit)
        batch = await ctx.pool.run(len(body), otlp_metrics.decode_request, body, request.headers.get("content-encoding"),
                                   as_json, limit)
        if batch.num_rows:
            await ctx.store.append(api_key.environment, batch)
    except Exception as exc:
        refusal = refusal_for(exc, "data points")
        if refusal is None:
            raise
        return _refused(refusal, as_json)
    resp = otlp_metrics.export_response(batch)
    if as_json:
        return Response(json_format.MessageToJson(resp, indent=None), 200, media_type=JSON)
    return Response(resp.SerializeToString(), 200, media_type=PROTOBUF)


routes = [Route("/v1/traces", export_traces, methods=["POST"]), Route("/v1/logs", export_logs, methods=["POST"]),
          Route("/v1/metrics", export_metrics, methods=["POST"])]
