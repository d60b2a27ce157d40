"""X-Ray reads in AWS's shapes: trace summaries, trace and service graphs, segment documents.

The filter expression (parsed by ``filter.py``) is compiled and run by ``apiary/query/xray.py`` on whichever store
holds the spans; this module turns the rows it answers into the shapes botocore's X-Ray model names
(TraceSummary, Service, Edge ...), and pages with NextToken.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Sequence

from apiary.model.ids import w3c_to_xray
from apiary.query import xray as xray_query
from apiary.query.xray_filter import Node
from apiary.store.base import Store

PAGE_SIZE = 100
#: The name of the node drawn for the callers of the traces' root services.
CLIENT = "client"


@dataclass
class SummaryPage:
    summaries: list[dict[str, Any]]
    next_token: str | None
    processed: int


def service_id(name: str, typ: str | None) -> dict[str, Any]:
    return {"Name": name, "Names": [name], "Type": typ or xray_query.DEFAULT_NODE_TYPE}


def trace_summaries(store: Store, env: str, start: datetime, end: datetime, node: Node | None, *,
                    sampling: float | None = None, token: str | None = None, page_size: int = PAGE_SIZE) -> SummaryPage:
    offset = _offset(token, start, end, node)
    found = xray_query.trace_summaries(store, env, start, end, node, sample=sampling, limit=page_size + 1, offset=offset)
    more = len(found.rows) > page_size
    table = found.rows[:page_size]
    annotations = xray_query.annotation_values(store, env, [r["_tid"] for r in table], start, end)
    causes = xray_query.root_causes(store, env, [r["_tid"] for r in table], start, end)
    out = []
    for r in table:
        http = {k: v for k, v in (("HttpURL", r["http_url"]), ("HttpMethod", r["http_method"]),
                                  ("UserAgent", r["http_ua"]), ("ClientIp", r["http_ip"])) if v is not None}
        if r["http_status"] is not None:
            http["HttpStatus"] = int(r["http_status"])
        types = dict(s.split(xray_query.SEPARATOR, 1) for s in (r["services"] or []) if s)
        summary = {
            "Id": w3c_to_xray(r["_tid"]), "StartTime": r["start_us"] / 1e6, "Duration": round(r["duration"], 6),
            "HasFault": bool(r["has_fault"]), "HasError": bool(r["has_error"]), "HasThrottle": bool(r["has_throttle"]),
            "IsPartial": bool(r["partial"]), "Http": http,
            "Annotations": {key: [{"AnnotationValue": {_annotation_kind(v): v},
                                   "ServiceIds": [service_id(s, types.get(s))]} for v, s in values]
                            for key, values in annotations.get(r["_tid"], {}).items()},
            "Users": [{"UserName": u, "ServiceIds": []} for u in (r["users"] or [])],
            "ServiceIds": [service_id(n, t) for n, t in sorted(types.items())],
            "EntryPoint": service_id(r["entry"] or "", r["entry_type"]),
            "ResourceARNs": [], "InstanceIds": [], "AvailabilityZones": [],
            **_root_cause_fields(causes.get(r["_tid"], [])), "Revision": 1,
        }
        if r["response_time"] is not None:
            summary["ResponseTime"] = round(r["response_time"], 6)
        out.append(summary)
    next_token = _token(offset + page_size, start, end, node) if more else None
    return SummaryPage(out, next_token, found.matched)


#: The summary's field for each kind of root cause.
_ROOT_CAUSE_FIELDS = {"fault": "FaultRootCauses", "error": "ErrorRootCauses", "responsetime": "ResponseTimeRootCauses"}


def _root_cause_fields(causes: list[xray_query.CausePath]) -> dict[str, list[dict[str, Any]]]:
    """FaultRootCauses, ErrorRootCauses and ResponseTimeRootCauses: each root cause's path cut into the services
    it crosses (as GetServiceGraph draws them), each service with the path's entities in it. A fault or error
    entity lists the one exception Apiary keeps of its span; a response-time entity its ``Coverage``. No
    ``AccountId`` (Apiary keeps none) and no ``ClientImpacting`` (AWS does not document when it is set)."""
    out: dict[str, list[dict[str, Any]]] = {name: [] for name in _ROOT_CAUSE_FIELDS.values()}
    for cause in causes:
        services: list[dict[str, Any]] = []
        for r in cause.path:
            if int(r["ent_index"]) == 0:
                services.append({"Name": r["node"], "Names": [r["node"]], "Type": r["node_type"],
                                 "Inferred": bool(r["inferred"]), "EntityPath": []})
            entity: dict[str, Any] = {"Name": r["name"]}
            if cause.kind == "responsetime":
                if r["coverage"] is not None:
                    entity["Coverage"] = round(float(r["coverage"]), 6)
            else:
                entity["Exceptions"] = [{k: v for k, v in (("Name", r["exception_type"]),
                                                            ("Message", r["exception_message"])) if v is not None}] \
                    if r["exception_type"] is not None or r["exception_message"] is not None else []
            entity["Remote"] = bool(r["inferred"])
            services[-1]["EntityPath"].append(entity)
        out[_ROOT_CAUSE_FIELDS[cause.kind]].append({"Services": services})
    return out


def _annotation_kind(v: Any) -> str:
    return "BooleanValue" if isinstance(v, bool) else "NumberValue" if isinstance(v, (int, float)) else "StringValue"


def _epoch(dt: datetime) -> float:
    return (dt.replace(tzinfo=timezone.utc) if dt.tzinfo is None else dt).timestamp()


def _fingerprint(start: datetime, end: datetime, node: object) -> str:
    return f"{_epoch(start)}|{_epoch(end)}|{node!r}"


def _token(offset: int, start: datetime, end: datetime, node: object) -> str:
    doc = {"o": offset, "f": _fingerprint(start, end, node)}
    return base64.urlsafe_b64encode(json.dumps(doc).encode()).decode()


class BadToken(ValueError):
    pass


def _offset(token: str | None, start: datetime, end: datetime, node: object) -> int:
    if not token:
        return 0
    try:
        doc = json.loads(base64.urlsafe_b64decode(token.encode()))
        offset = int(doc["o"])
        same = doc["f"] == _fingerprint(start, end, node)
    except (ValueError, KeyError, TypeError):
        raise BadToken("NextToken is not one this server gave out") from None
    if not same:
        raise BadToken("NextToken belongs to a different StartTime, EndTime or FilterExpression")
    return offset


# -- graphs ------------------------------------------------------------------------------------------

def service_graph(store: Store, env: str, start: datetime, end: datetime, node: Node | None = None,
                  trace_ids: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Graph nodes (services, and what they call) with AWS's statistics; edges from a caller's node to the callee's,
    and from a ``client`` node to the services that took the traces' first requests."""
    graph = xray_query.service_graph(store, env, start, end, node, trace_ids)
    client = (CLIENT, xray_query.CLIENT_NODE_TYPE)

    def caller(r: dict[str, Any]) -> tuple[str, str]:
        return (r["parent_node"], r["parent_type"]) if r["parent_node"] is not None else client

    keys = sorted({(r["node"], r["node_type"]) for r in graph.nodes}
                  | {caller(r) for r in graph.edges} | {(r["node"], r["node_type"]) for r in graph.edges})
    ref = {k: i for i, k in enumerate(keys)}
    services: dict[tuple[str, str], dict[str, Any]] = {}
    for name, typ in keys:
        services[(name, typ)] = {"ReferenceId": ref[(name, typ)], "Name": name, "Names": [name], "Root": False,
                                 "Type": typ, "State": "unknown" if (name, typ) == client else "active", "Edges": [],
                                 "SummaryStatistics": _summary(None), "DurationHistogram": [], "ResponseTimeHistogram": []}
    for r in graph.nodes:
        s = services[(r["node"], r["node_type"])]
        s["Root"] = bool(r["root"])
        s["StartTime"], s["EndTime"] = r["first_us"] / 1e6, r["last_us"] / 1e6
        s["SummaryStatistics"] = _summary(r)
        s["DurationHistogram"] = s["ResponseTimeHistogram"] = _hist(r["histogram"])
    for r in graph.edges:
        services[caller(r)]["Edges"].append({
            "ReferenceId": ref[(r["node"], r["node_type"])], "StartTime": r["first_us"] / 1e6, "EndTime": r["last_us"] / 1e6,
            "SummaryStatistics": _summary(r), "ResponseTimeHistogram": _hist(r["histogram"]), "Aliases": []})
    for s in services.values():
        s["Edges"].sort(key=lambda e: e["ReferenceId"])
    return list(services.values())


#: Buckets per page of GetTimeSeriesServiceStatistics (a day of minutes is 1440).
SERIES_PAGE_SIZE = 1440


@dataclass
class SeriesPage:
    statistics: list[dict[str, Any]]
    next_token: str | None


def time_series_statistics(store: Store, env: str, start: datetime, end: datetime, traces: Node | None,
                           entity: Node | None, period_s: int, token: str | None = None,
                           page_size: int = SERIES_PAGE_SIZE) -> SeriesPage:
    """TimeSeriesServiceStatistics: one entry per period that saw requests of the selected entities (periods
    without any are left out), with the service graph's statistics and histogram; no forecasts."""
    key = (traces, entity, period_s)
    offset = _offset(token, start, end, key)
    found = xray_query.time_series(store, env, start, end, traces, entity, period_s, limit=page_size + 1,
                                   offset=offset)
    name = "EdgeSummaryStatistics" if found.edges else "ServiceSummaryStatistics"
    out = [{"Timestamp": r["bucket_us"] / 1e6, name: _summary(r), "ResponseTimeHistogram": _hist(r["histogram"])}
           for r in found.rows[:page_size]]
    more = len(found.rows) > page_size
    return SeriesPage(out, _token(offset + page_size, start, end, key) if more else None)


def _summary(r: dict[str, Any] | None) -> dict[str, Any]:
    r = r or {"ok": 0, "errors": 0, "throttles": 0, "faults": 0, "total": 0, "response_s": 0.0}
    ok, errors, throttles, faults = (int(r[k]) for k in ("ok", "errors", "throttles", "faults"))
    return {"OkCount": ok, "ErrorStatistics": {"ThrottleCount": throttles, "OtherCount": errors,
                                               "TotalCount": throttles + errors},
            "FaultStatistics": {"OtherCount": faults, "TotalCount": faults},
            "TotalCount": int(r["total"]), "TotalResponseTime": float(r["response_s"] or 0.0)}


def _hist(h: dict[float, int]) -> list[dict[str, Any]]:
    return [{"Value": k, "Count": n} for k, n in sorted(h.items())]


# -- documents -------------------------------------------------------------------------------------

def trace_documents(store: Store, env: str, trace_id: str) -> tuple[list[dict[str, str]], float] | None:
    """The segment documents of one trace (completed versions win; streamed subsegments folded into their parents)."""
    table = store.trace(env, trace_id)
    if table.num_rows == 0:
        return None
    rows = table.to_pylist()
    segments: dict[str, dict[str, Any]] = {}
    loose: list[dict[str, Any]] = []
    xray_ids: set[str] = set()
    t0, t1 = None, None
    for r in rows:
        if r.get("meta.annotation_type"):
            continue
        ts = r.get("timestamp")
        start = _epoch(ts) if ts is not None else None
        end = start + (r.get("duration_ms") or 0) / 1000 if start is not None else None
        if start is not None:
            t0 = start if t0 is None else min(t0, start)
            t1 = end if t1 is None else max(t1, end)
        if r.get("xray.type"):
            xray_ids.add(r["trace.span_id"])
        raw = r.get("xray.segment_document")
        if raw:
            doc = json.loads(raw)
            have = segments.get(doc["id"])
            if have is None or have.get("in_progress") or not doc.get("in_progress"):
                if doc.get("type") == "subsegment":
                    loose.append(doc)
                else:
                    segments[doc["id"]] = doc
        elif not r.get("xray.type"):
            # An OTel span: shown as a segment of its service, so X-Ray clients see the whole trace.
            segments[r["trace.span_id"]] = {
                "id": r["trace.span_id"], "trace_id": w3c_to_xray(trace_id), "name": r.get("service.name") or r.get("name"),
                "start_time": start, "end_time": end, **({"parent_id": r["trace.parent_id"]} if r.get("trace.parent_id") else {}),
                "origin": "OpenTelemetry", "annotations": {}, "metadata": {"otel": {"span.name": r.get("name"),
                                                                                    "span.kind": r.get("span.kind")}}}
    for sub in loose:
        parent = _find(list(segments.values()), sub.get("parent_id"))
        if parent is None:
            segments[sub["id"]] = sub
            continue
        kids = parent.setdefault("subsegments", [])
        kids[:] = [k for k in kids if k.get("id") != sub["id"]] + [{k: v for k, v in sub.items() if k not in ("trace_id", "parent_id", "type")}]
    docs = [{"Id": sid, "Document": json.dumps(doc, separators=(",", ":"))} for sid, doc in segments.items()]
    return docs, (t1 - t0) if t0 is not None and t1 is not None else 0.0


def _find(entities: list[dict[str, Any]], sid: str | None) -> dict[str, Any] | None:
    for e in entities:
        if e.get("id") == sid:
            return e
        found = _find(e.get("subsegments") or [], sid)
        if found is not None:
            return found
    return None
