"""Trace retrieval (StartTraceRetrieval, ListRetrievedTraces, GetRetrievedTracesGraph, CancelTraceRetrieval) over
the spans Apiary holds.

On AWS a retrieval reads Transaction Search's log group in the background and its results are listed once it is
COMPLETE. Apiary's spans are in its own store and read on demand, so a retrieval is only what was asked (trace
ids and an inclusive time range), kept per environment, and COMPLETE as soon as it is started: listing it reads
the spans of those traces that started in the range, then. A cancelled retrieval answers CANCELLED and no traces.
Retrievals older than `KEEP_S` are forgotten (their token is then ResourceNotFoundException, as an unknown one).

ListRetrievedTraces answers in either format the model allows: ``XRAY`` (each segment document, as BatchGetTraces
gives them) or ``OTEL`` (each span as OpenTelemetry JSON: resource, scope, ids, kind, times in nanoseconds,
attributes, status). Span events and links are not included in the OTEL documents.
"""

from __future__ import annotations

import json
import secrets
import time
from datetime import datetime, timedelta, timezone
from typing import Any

from apiary.model.ids import normalise_trace_id, w3c_to_xray
from apiary.model.span import CORE_SCHEMA
from apiary.receivers.xray import queries
from apiary.receivers.xray.paging import page
from apiary.receivers.xray.refusal import Refused
from apiary.store.base import Store
from apiary.store.meta_retrievals import RetrievalRow, XRayRetrievalRows

#: How long a retrieval's token stays good (AWS times a retrieval out after 60 minutes; a day leaves room to list).
KEEP_S = 24 * 3600
MAX_TRACE_IDS = 100
#: Traces a ListRetrievedTraces page holds (BatchGetTraces takes 5 ids a call; a page is about as large).
TRACES_PAGE = 5
FORMATS = ("XRAY", "OTEL")
_KINDS = {"server": "SERVER", "client": "CLIENT", "producer": "PRODUCER", "consumer": "CONSUMER",
          "internal": "INTERNAL"}
#: Columns that are a span's own fields in an OTel document, not among its attributes.
_OWN = set(CORE_SCHEMA.names) | {"duration_ms", "timestamp"}


def _epoch(params: dict[str, Any], name: str) -> float:
    v = params.get(name)
    if v is None:
        raise Refused(f"{name} is required")
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return float(v)
    if isinstance(v, str):
        try:
            return datetime.fromisoformat(v.replace("Z", "+00:00")).timestamp()
        except ValueError:
            pass
    raise Refused(f"{name} must be epoch seconds or an ISO 8601 time, got {v!r}")


def _trace_ids(params: dict[str, Any]) -> list[str]:
    ids = params.get("TraceIds")
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) and 1 <= len(i) <= 35 for i in ids):
        raise Refused("TraceIds must be a non-empty list of trace ids")
    if len(ids) > MAX_TRACE_IDS:
        raise Refused(f"TraceIds takes at most {MAX_TRACE_IDS} ids")
    out = []
    for tid in ids:
        try:
            out.append(w3c_to_xray(normalise_trace_id(tid)))
        except ValueError:
            raise Refused(f"not a trace id: {tid!r}") from None
    return list(dict.fromkeys(out))


class Retrievals:
    def __init__(self, rows: XRayRetrievalRows, store: Store) -> None:
        self.rows, self.store = rows, store

    def start(self, env: str, params: dict[str, Any]) -> dict[str, str]:
        ids, start, end = _trace_ids(params), _epoch(params, "StartTime"), _epoch(params, "EndTime")
        if end < start:
            raise Refused("EndTime must not be before StartTime")
        token = secrets.token_urlsafe(24)
        now = time.time()
        self.rows.add(env, token, ids, start, end, now, now - KEEP_S)
        return {"RetrievalToken": token}

    def _get(self, env: str, params: dict[str, Any]) -> tuple[str, RetrievalRow]:
        token = params.get("RetrievalToken")
        if not isinstance(token, str) or not token:
            raise Refused("RetrievalToken is required")
        row = self.rows.get(env, token)
        if row is None or row.created_at < time.time() - KEEP_S:
            raise Refused(f"Retrieval not found: {token}", "ResourceNotFoundException", 404)
        return token, row

    def cancel(self, env: str, params: dict[str, Any]) -> None:
        token, _row = self._get(env, params)
        self.rows.cancel(env, token)

    def list(self, env: str, params: dict[str, Any]) -> dict[str, Any]:
        token, row = self._get(env, params)
        fmt = params.get("TraceFormat") or "XRAY"
        if fmt not in FORMATS:
            raise Refused(f"TraceFormat must be XRAY or OTEL, got {fmt!r}")
        if row.cancelled:
            return {"RetrievalStatus": "CANCELLED", "TraceFormat": fmt, "Traces": []}
        ids, following = page(sorted(row.trace_ids), lambda t: t, params.get("NextToken"), TRACES_PAGE,
                              f"retrieval/{token}")
        traces = []
        for tid in ids:
            found = self._otel(env, tid, row) if fmt == "OTEL" else self._xray(env, tid, row)
            if found is not None:
                traces.append(found)
        out: dict[str, Any] = {"RetrievalStatus": "COMPLETE", "TraceFormat": fmt, "Traces": traces}
        if following:
            out["NextToken"] = following
        return out

    def graph(self, env: str, params: dict[str, Any]) -> dict[str, Any]:
        token, row = self._get(env, params)
        if row.cancelled:
            return {"RetrievalStatus": "CANCELLED", "Services": []}
        start = datetime.fromtimestamp(row.start, timezone.utc)
        end = datetime.fromtimestamp(row.end, timezone.utc) + timedelta(microseconds=1)  # the range is inclusive
        services = queries.service_graph(self.store, env, start, end, None,
                                         [normalise_trace_id(t) for t in row.trace_ids])
        return {"RetrievalStatus": "COMPLETE", "Services": [{"Service": s} for s in services]}

    def _xray(self, env: str, tid: str, row: RetrievalRow) -> dict[str, Any] | None:
        found = queries.trace_documents(self.store, env, normalise_trace_id(tid))
        if found is None:
            return None
        docs, duration = found
        spans = [{"Id": d["Id"], "Document": d["Document"]} for d in docs
                 if row.start <= float(json.loads(d["Document"]).get("start_time") or 0) <= row.end]
        return {"Id": tid, "Duration": round(duration, 6), "Spans": spans} if spans else None

    def _otel(self, env: str, tid: str, row: RetrievalRow) -> dict[str, Any] | None:
        spans, t0, t1 = [], None, None
        for r in self.store.trace(env, normalise_trace_id(tid)).to_pylist():
            if r.get("meta.annotation_type") or not r.get("trace.span_id") or r.get("timestamp") is None:
                continue
            start_ns = int(r["timestamp"].timestamp() * 1_000_000) * 1000
            end_ns = start_ns + int(round((r.get("duration_ms") or 0.0) * 1_000_000))
            t0, t1 = min(t0 or start_ns, start_ns), max(t1 or end_ns, end_ns)
            if not row.start <= start_ns / 1e9 <= row.end:
                continue
            spans.append({"Id": r["trace.span_id"], "Document": json.dumps(_otel_span(r, start_ns, end_ns),
                                                                             separators=(",", ":"))})
        if not spans:
            return None
        return {"Id": tid, "Duration": round(((t1 or 0) - (t0 or 0)) / 1e9, 6), "Spans": spans}


def _otel_span(r: dict[str, Any], start_ns: int, end_ns: int) -> dict[str, Any]:
    """One stored span as OpenTelemetry JSON (the names of OTLP's JSON encoding, attributes as a flat map)."""
    code = r.get("status_code")
    status: dict[str, Any] = {"code": "ERROR" if code == 2 or r.get("error") else "OK" if code == 1 else "UNSET"}
    if r.get("status_message"):
        status["message"] = r["status_message"]
    doc: dict[str, Any] = {
        "resource": {"attributes": {"service.name": r.get("service.name")}},
        "scope": {k: v for k, v in (("name", r.get("library.name")), ("version", r.get("library.version"))) if v},
        "traceId": r["trace.trace_id"], "spanId": r["trace.span_id"], "name": r.get("name"),
        "kind": _KINDS.get(str(r.get("span.kind") or "").lower(), "INTERNAL"),
        "startTimeUnixNano": start_ns, "endTimeUnixNano": end_ns, "durationNano": end_ns - start_ns,
        "attributes": {k: v for k, v in r.items() if k not in _OWN and not k.startswith(("meta.", "_"))
                       and v is not None and not isinstance(v, datetime)},
        "status": status,
    }
    if r.get("trace.parent_id"):
        doc["parentSpanId"] = r["trace.parent_id"]
    return doc
