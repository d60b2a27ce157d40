"""OTLP/HTTP: ``POST /v1/traces``, answered as the OTLP/HTTP specification asks.

Success is 200 with an ``ExportTraceServiceResponse`` (``partial_success``
when some spans were refused), in the request's own encoding. Failures carry
a ``google.rpc.Status`` whose message tells the user what to fix; 429 and
503 carry ``Retry-After`` so SDK exporters back off and retry.
"""

from __future__ import annotations

from google.protobuf import json_format
from google.rpc import status_pb2
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from apiary.receivers.body_budget import BodyOverBudget
from apiary.receivers.encoding import BadEncoding, BodyTooLarge, UnsupportedEncoding, read_body
from apiary.receivers.otlp import logs as otlp_logs
from apiary.receivers.otlp.traces import PayloadError, decode_request
from apiary.server.context import Apiary
from apiary.store.base import StoreOverloaded, StoreUnavailable

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
KEY_HEADER = "x-honeycomb-team"


def _status(code: int, message: str, as_json: bool, retry_after: int | None = None) -> Response:
    msg = status_pb2.Status(code=_grpc_code(code), message=message)
    headers = {"Retry-After": str(retry_after)} if retry_after else None
    if as_json:
        return Response(json_format.MessageToJson(msg, indent=None), code, headers, media_type=JSON)
    return Response(msg.SerializeToString(), code, headers, media_type=PROTOBUF)


def _grpc_code(http: int) -> int:
    return {400: 3, 401: 16, 403: 7, 413: 3, 415: 3, 429: 8, 503: 14}.get(http, 2)


async def export_traces(request: Request) -> Response:
    ctx: Apiary = request.app.state.apiary
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    as_json = ctype == JSON
    if ctype not in (PROTOBUF, JSON):
        return _status(415, f"unsupported Content-Type {ctype or '(none)'!r}: send {PROTOBUF} or {JSON}", False)
    key = request.headers.get(KEY_HEADER)
    if not key:
        return _status(401, f"missing API key: set the {KEY_HEADER} header "
                            f"(OTEL_EXPORTER_OTLP_HEADERS={KEY_HEADER}=<your Apiary key>)", as_json)
    api_key = ctx.authenticate(key)
    if api_key is None:
        return _status(401, f"unknown API key in the {KEY_HEADER} header: check OTEL_EXPORTER_OTLP_HEADERS "
                            f"(`apiary keys list` shows the keys of each environment)", as_json)
    limit = ctx.settings.max_body_bytes
    try:
        body = await read_body(request, limit)
        batch = await ctx.pool.run(len(body), decode_request, body, request.headers.get("content-encoding"), as_json, limit,
                                   ctx.settings.span_limits)
        await ctx.store.append(api_key.environment, batch)
    except BodyTooLarge as exc:
        return _status(413, str(exc), as_json)
    except UnsupportedEncoding as exc:
        return _status(415, str(exc), as_json)
    except (PayloadError, BadEncoding) as exc:
        return _status(400, str(exc), as_json)
    except BodyOverBudget as exc:
        return _status(429, str(exc), as_json, exc.retry_after)
    except StoreOverloaded as exc:
        return _status(429, "too many spans waiting to be committed; retry later", as_json, exc.retry_after)
    except StoreUnavailable as exc:
        return _status(503, str(exc), as_json, exc.retry_after)
    resp = ExportTraceServiceResponse()
    if batch.rejected or batch.errors:  # with none rejected, the message is a warning (attributes dropped, values cut)
        resp.partial_success.rejected_spans = batch.rejected
        resp.partial_success.error_message = "; ".join(batch.errors)
    if as_json:
        return Response(json_format.MessageToJson(resp, indent=None), 200, media_type=JSON)
    return Response(resp.SerializeToString(), 200, media_type=PROTOBUF)


async def export_logs(request: Request) -> Response:
    """``POST /v1/logs``: the same checks and answers as traces, into the log store."""
    ctx: Apiary = request.app.state.apiary
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    as_json = ctype == JSON
    if ctype not in (PROTOBUF, JSON):
        return _status(415, f"unsupported Content-Type {ctype or '(none)'!r}: send {PROTOBUF} or {JSON}", False)
    api_key = ctx.authenticate(request.headers.get(KEY_HEADER))
    if api_key is None:
        return _status(401, f"missing or unknown API key in the {KEY_HEADER} header: check OTEL_EXPORTER_OTLP_HEADERS "
                            f"(`apiary keys list` shows the keys of each environment)", as_json)
    if ctx.logs is None:
        return _status(503, "the log store is not open", as_json, 5)
    limit = ctx.settings.max_body_bytes
    try:
        body = await read_body(request, limit)
        # Off the event loop for large bodies, as traces are: 20 bodies of 19 MiB decoded inline held it for seconds.
        batch = await ctx.pool.run(len(body), otlp_logs.decode_request, body, request.headers.get("content-encoding"),
                                   as_json, limit)
        for group, stream in {(g, s) for g, s in zip(batch.table.column("log_group").to_pylist(),
                                                      batch.table.column("log_stream").to_pylist())}:
            await ctx.logs.ensure_stream(api_key.environment, group, stream)
        await ctx.logs.append(api_key.environment, batch)
    except BodyTooLarge as exc:
        return _status(413, str(exc), as_json)
    except UnsupportedEncoding as exc:
        return _status(415, str(exc), as_json)
    except (PayloadError, BadEncoding) as exc:
        return _status(400, str(exc), as_json)
    except BodyOverBudget as exc:
        return _status(429, str(exc), as_json, exc.retry_after)
    except StoreOverloaded as exc:
        return _status(429, "too many log records waiting to be committed; retry later", as_json, exc.retry_after)
    except StoreUnavailable as exc:
        return _status(503, str(exc), as_json, exc.retry_after)
    resp = ExportLogsServiceResponse()
    if as_json:
        return Response(json_format.MessageToJson(resp, indent=None), 200, media_type=JSON)
    return Response(resp.SerializeToString(), 200, media_type=PROTOBUF)


routes = [Route("/v1/traces", export_traces, methods=["POST"]), Route("/v1/logs", export_logs, methods=["POST"])]
