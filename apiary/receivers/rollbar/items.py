"""Rollbar item payloads (https://docs.rollbar.com/reference/create-item) -> `ErrorOccurrence`.

``data.body`` holds exactly one of ``trace`` (one exception with its
frames), ``trace_chain`` (chained exceptions, the raised one first),
``message`` or ``crash_report``. Grouping and the title follow Rollbar: a
``fingerprint`` or ``title`` the client set wins; otherwise the exception
class and frames, else the message.
"""

from __future__ import annotations

import time
import uuid as uuidlib
from typing import Any

from apiary.model.builder import json_text
from apiary.model.error import ErrorOccurrence, item_key, normalise_level
from apiary.model.ids import is_span_id, normalise_trace_id
from apiary.model.timestamps import MAX_TIMESTAMP_US

CLIENT_PLATFORMS = {"browser", "android", "ios", "flash", "client"}


class PayloadError(ValueError):
    """Valid JSON that is not a Rollbar item (Rollbar answers 422)."""


def _headers(request: Any) -> dict[str, str]:
    if not isinstance(request, dict) or not isinstance(request.get("headers"), dict):
        return {}
    return {str(k).lower(): str(v) for k, v in request["headers"].items()}


def trace_context(data: dict[str, Any]) -> tuple[str | None, str | None]:
    """The trace of the reported request: W3C ``traceparent``, else ``X-Amzn-Trace-Id``, else ``custom.trace_id``."""
    headers = _headers(data.get("request"))
    tp = headers.get("traceparent", "").strip().split("-")
    if len(tp) == 4 and len(tp[1]) == 32:
        try:
            return normalise_trace_id(tp[1]), tp[2] if is_span_id(tp[2]) else None
        except ValueError:
            pass
    amzn = headers.get("x-amzn-trace-id", "")
    fields = dict(p.strip().split("=", 1) for p in amzn.split(";") if "=" in p)
    if "Root" in fields:
        try:
            parent = fields.get("Parent")
            return normalise_trace_id(fields["Root"]), parent if parent and is_span_id(parent) else None
        except ValueError:
            pass
    custom = data.get("custom")
    if isinstance(custom, dict) and isinstance(custom.get("trace_id"), str):
        try:
            return normalise_trace_id(custom["trace_id"]), None
        except ValueError:
            pass
    return None, None


def _frames(trace: dict[str, Any]) -> list[tuple[str, str]]:
    frames = trace.get("frames")
    if not isinstance(frames, list):
        raise PayloadError("data.body.trace.frames must be a list of frames")
    return [(str(f.get("filename", "")), str(f.get("method", ""))) for f in frames if isinstance(f, dict)]


def decode(payload: Any, now: float | None = None) -> ErrorOccurrence:
    if not isinstance(payload, dict) or not isinstance(payload.get("data"), dict):
        raise PayloadError("payload must be a JSON object with a 'data' object")
    data: dict[str, Any] = payload["data"]
    body = data.get("body")
    if not isinstance(body, dict) or not body:
        raise PayloadError("data.body must be an object with one of trace, trace_chain, message or crash_report")
    environment = data.get("environment")
    if not isinstance(environment, str) or not environment:
        raise PayloadError("data.environment is required (e.g. 'production')")
    exc_class = exc_message = message = None
    frames: list[tuple[str, str]] = []
    if "trace" in body or "trace_chain" in body:
        chain = body.get("trace_chain") or [body.get("trace")]
        if not isinstance(chain, list) or not chain or not all(isinstance(t, dict) for t in chain):
            raise PayloadError("data.body.trace / trace_chain must hold trace objects")
        first = chain[0]
        exc = first.get("exception")
        if not isinstance(exc, dict) or not exc.get("class"):
            raise PayloadError("data.body.trace.exception.class is required")
        exc_class, exc_message = str(exc["class"]), str(exc.get("message") or "")
        for t in chain:
            frames += _frames(t)
    elif "message" in body:
        m = body["message"]
        if not isinstance(m, dict) or not isinstance(m.get("body"), str):
            raise PayloadError("data.body.message.body must be a string")
        message = m["body"]
    elif "crash_report" in body:
        message = str((body["crash_report"] or {}).get("raw", ""))[:1000] if isinstance(body["crash_report"], dict) else ""
    else:
        raise PayloadError("data.body must have one of trace, trace_chain, message or crash_report")
    title = data.get("title")
    if not isinstance(title, str) or not title:
        title = f"{exc_class}: {exc_message}" if exc_class else (message or "").strip().splitlines()[0:1]
        title = title if isinstance(title, str) else (title[0] if title else "(empty message)")
    fingerprint = data.get("fingerprint")
    ts = data.get("timestamp")
    # A timestamp of 0 or outside 1970..2262 (``apiary.model.timestamps``) is taken as unset: the time received.
    ts_s = float(ts) if isinstance(ts, (int, float)) and not isinstance(ts, bool) and 0 < ts * 1e6 <= MAX_TIMESTAMP_US \
        else (now or time.time())
    uid = data.get("uuid")
    try:
        uid = str(uuidlib.UUID(str(uid))) if uid else str(uuidlib.uuid4())
    except ValueError:
        uid = str(uuidlib.uuid4())
    data = {**data, "uuid": uid}
    trace_id, span_id = trace_context(data)
    level = normalise_level(data.get("level"), "error" if exc_class else "info")
    data["level"] = level
    notifier = data.get("notifier") if isinstance(data.get("notifier"), dict) else {}
    return ErrorOccurrence(
        timestamp_us=int(ts_s * 1e6), uuid=uid,
        item_key=item_key(environment, str(fingerprint) if fingerprint else None, exc_class, frames, message),
        title=title[:255], level=level, environment=environment,
        framework=str(data.get("framework") or notifier.get("name") or "") or None,
        platform=str(data["platform"]) if data.get("platform") else None,
        language=str(data["language"]) if data.get("language") else None,
        exception_class=exc_class, trace_id=trace_id, span_id=span_id,
        data=json_text(data))  # NaN and Infinity as null: the read API answers strict JSON
