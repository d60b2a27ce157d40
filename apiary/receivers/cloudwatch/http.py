"""CloudWatch Logs on the main port: ``POST /`` with ``X-Amz-Target: Logs_20140328.<Operation>``.

boto3 reaches it with ``AWS_ENDPOINT_URL`` alone. Requests are SigV4-signed
with an Apiary key as both the access key id and the secret: the key id
names the environment, the signature proves the sender holds the key.
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from apiary.input_limits import InputError, load_json
from apiary.permissions import permission_of
from apiary.receivers import aws_auth
from apiary.receivers.cloudwatch.errors import CONTENT_TYPE, AwsError
from apiary.receivers.cloudwatch import log_group_list, lookup_tables, metric_filters, tags
from apiary.receivers.cloudwatch.operations import OPERATIONS as LOG_OPERATIONS
from apiary.receivers.cloudwatch.operations import Call
from apiary.receivers.cloudwatch.sink import LogsSink
from apiary.receivers.encoding import decompress, read_body
from apiary.receivers.refusals import refusal_for
from apiary.store.lookup_tables import MAX_BODY_BYTES
from apiary.store.meta import ApiKey

log = logging.getLogger(__name__)
TARGET_PREFIX = "Logs_20140328."
SERVICE = "logs"  # the SigV4 signing name
#: PutLogEvents carries at most 1 MiB of events; JSON escaping can roughly double that.
MAX_BODY = 4 * 1024 * 1024
#: A lookup table's CSV may be 10 MB (CreateLookupTable), escaped inside a JSON string.
LOOKUP_TABLE_BODY = 2 * MAX_BODY_BYTES + 64 * 1024
OPERATIONS = {**LOG_OPERATIONS, **log_group_list.OPERATIONS, **lookup_tables.OPERATIONS, **tags.OPERATIONS,
              **metric_filters.OPERATIONS}
_LARGE_BODIES = {lookup_tables.create_lookup_table, lookup_tables.update_lookup_table}


def _refused(exc: Exception) -> AwsError:
    """CloudWatch Logs' words for the answer `apiary.receivers.refusals` gives ``exc``; a bug propagates."""
    refusal = refusal_for(exc, "log events")
    if refusal is None:
        raise exc
    if refusal.http_status == 413:
        return AwsError("InvalidParameterException", f"Request body exceeds {MAX_BODY} bytes; a PutLogEvents batch "
                        "may carry at most 1,048,576 bytes of events", 413)
    if refusal.http_status == 429:  # JSON 1.1 services throttle with a 400, which botocore retries by its code
        return AwsError("ThrottlingException", f"Rate exceeded: {refusal.message}", 400, refusal.retry_after)
    if refusal.http_status == 503:
        return AwsError("ServiceUnavailableException", refusal.message, 503, refusal.retry_after)
    return AwsError("SerializationException", refusal.message)


def _authorize(sink: LogsSink, request: Request, body: bytes, action: str, op: Any) -> tuple[ApiKey, str]:
    """(key, region) of a correctly signed request whose key may run ``op``; AwsError otherwise."""
    try:
        key, region = aws_auth.authorize(
            sink.authenticate, request.method, request.scope.get("raw_path", b"").decode("latin-1") or request.url.path,
            request.url.query, dict(request.headers), body, service=SERVICE, action=action, need=permission_of(op))
    except aws_auth.AwsDenied as exc:
        raise AwsError(exc.code, exc.message) from None  # AWS's JSON 1.1 services answer these with 400
    return key, region


async def logs_api(request: Request) -> Response:
    sink: LogsSink = request.app.state.cloudwatch
    target = request.headers.get("x-amz-target", "")
    if not target.startswith(TARGET_PREFIX):
        return AwsError("UnknownOperationException",
                        f"unknown X-Amz-Target {target or '(none)'!r}: this endpoint serves CloudWatch Logs "
                        f"({TARGET_PREFIX}<Operation>)").response()
    op = OPERATIONS.get(target[len(TARGET_PREFIX):])
    if op is None:
        return AwsError("UnknownOperationException", f"Apiary does not implement {target}").response()
    logs = sink.logs
    if logs is None:
        return AwsError("ServiceUnavailableException", "the log store is not open", 503).response()
    try:
        limit = LOOKUP_TABLE_BODY if op in _LARGE_BODIES else MAX_BODY
        raw = await read_body(request, limit)
        key, region = _authorize(sink, request, raw, target[len(TARGET_PREFIX):], op)
        body = decompress(raw, request.headers.get("content-encoding"), limit)
        try:
            params = load_json(body or b"{}", "request body")
        except InputError as exc:
            raise AwsError("SerializationException", str(exc)) from None
        except (ValueError, UnicodeDecodeError) as exc:
            raise AwsError("SerializationException", f"request body is not valid JSON: {exc}") from None
        if not isinstance(params, dict):
            raise AwsError("SerializationException", "request body must be a JSON object")
        result = await op(Call(key.environment, region, params, logs, sink.insights, key))
    except AwsError as exc:
        return exc.response()
    except RecursionError:  # a backstop: every parser checks nesting first (``apiary.input_limits``)
        return AwsError("InvalidParameterException", "the request nests too deeply to be parsed").response()
    except Exception as exc:
        return _refused(exc).response()
    return JSONResponse(result, media_type=CONTENT_TYPE)


routes = [Route("/", logs_api, methods=["POST"])]
