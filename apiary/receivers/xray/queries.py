"""X-Ray reads over the span store: trace summaries, trace and service graphs, segment documents.

This is the one module that turns a filter-expression AST into something the
store runs. The shared plan (``apiary/query/plan.py``) describes row filters
and aggregates over rows; an X-Ray filter is a *trace* predicate (``service``
holds if any span of the trace is that service's, ``responsetime`` is the
root's), which the plan has no quantifier for yet. Until it does, the AST is
compiled here to parameterised DuckDB SQL: rows of the window, superseded
in-progress versions dropped, each row joined to its parent (for edges and
root causes), grouped per trace, and the filter in HAVING -- values only
ever travel as parameters.

In-progress documents: a span id may have an in-progress row and a
completed one; ``ORDER BY in_progress`` in a window keeps the completed one.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Sequence

from apiary.model.ids import w3c_to_xray
from apiary.receivers.xray.filter import And, Compare, Edge, Flag, Node, Not, Or, Service
from apiary.store.base import Store

#: Spans of a trace may start after the window that holds the trace's start.
TRACE_SLACK = timedelta(minutes=10)
PAGE_SIZE = 100
_SQL_OPS = {"=": "=", "!=": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
_SQL_TYPES = {"string": "VARCHAR", "number": "DOUBLE", "boolean": "BOOLEAN"}
#: logical row column -> (attribute name, type)
_ROW_ATTRS = {
    "http_status": ("http.status_code", "number"), "http_method": ("http.method", "string"),
    "http_url": ("http.url", "string"), "http_ua": ("http.user_agent", "string"),
    "http_ip": ("http.client_ip", "string"), "usr": ("enduser.id", "string"),
    "x_fault": ("xray.fault", "boolean"), "x_error": ("xray.error", "boolean"), "x_throttle": ("xray.throttle", "boolean"),
    "x_inprog": ("xray.in_progress", "boolean"), "x_type": ("xray.type", "string"),
    "origin": ("xray.origin", "string"),
}
_KEY_COLUMN = {"http.status": "http_status", "http.method": "http_method", "http.url": "http_url",
               "http.useragent": "http_ua", "http.clientip": "http_ip", "user": "usr", "name": "name"}


def _q(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


class Catalogue:
    """Where each attribute lives physically in one environment (several places if sent with several types)."""

    def __init__(self, store: Store, env: str) -> None:
        self.sources: dict[str, list[tuple[str, str | None]]] = {}
        for c in store.columns(env, None):
            self.sources.setdefault(c.name, []).append((c.physical, c.json_key))

    def expr(self, name: str, typ: str, params: list[Any]) -> str:
        sql_type = _SQL_TYPES[typ]
        parts = []
        for physical, json_key in self.sources.get(name, []):
            if json_key is None:
                parts.append(f"TRY_CAST({_q(physical)} AS {sql_type})")
            else:
                params.append("$." + json.dumps(json_key))
                parts.append(f"TRY_CAST(json_extract_string({_q(physical)}, ?) AS {sql_type})")
        if not parts:
            return f"CAST(NULL AS {sql_type})"
        return parts[0] if len(parts) == 1 else f"coalesce({', '.join(parts)})"


@dataclass
class Compiled:
    """Row columns the filter needs (``extra``), the HAVING text and its parameters, in order."""

    having: str
    params: list[Any]
    annotations: dict[str, str]  # annotation key -> row alias


class FilterCompiler:
    def __init__(self, catalogue: Catalogue) -> None:
        self.cat = catalogue
        self.annotations: dict[str, tuple[str, str]] = {}  # alias -> (annotation name, type)
        self.params: list[Any] = []

    def _annotation(self, key: str, typ: str) -> str:
        alias = f"ann_{len(self.annotations)}"
        self.annotations[alias] = (key, typ)
        return alias

    def trace(self, node: Node | None) -> str:
        """A predicate over the grouped rows of one trace."""
        if node is None:
            return "TRUE"
        if isinstance(node, And):
            return f"({self.trace(node.left)} AND {self.trace(node.right)})"
        if isinstance(node, Or):
            return f"({self.trace(node.left)} OR {self.trace(node.right)})"
        if isinstance(node, Not):
            return f"(NOT {self.trace(node.operand)})"
        if isinstance(node, (Service, Edge)):
            return f"coalesce(bool_or({self.row(node)}), FALSE)"
        if isinstance(node, Flag):
            if node.key == "ok":
                return "NOT coalesce(bool_or(fault OR err OR throttle), FALSE)"
            if node.key == "partial":
                return "FALSE"
            return f"coalesce(bool_or({self.row(node)}), FALSE)"
        assert isinstance(node, Compare)
        if node.key == "responsetime":
            return self._cmp("(any_value(dur) FILTER (WHERE is_root)) / 1000.0", node)
        if node.key == "duration":
            return self._cmp("(max(epoch_us(ts) + coalesce(dur, 0) * 1000) - min(epoch_us(ts))) / 1e6", node)
        if node.key.startswith("http."):
            return f"coalesce({self._cmp(f'any_value({_KEY_COLUMN[node.key]}) FILTER (WHERE is_root)', node)}, FALSE)"
        if node.key in ("fault", "error", "throttle", "ok", "partial"):
            flag = self.trace(Flag(node.key))
            return flag if (node.op == "=") == bool(node.value) else f"(NOT {flag})"
        return f"coalesce(bool_or({self.row(node)}), FALSE)"

    def row(self, node: Node) -> str:
        """A predicate over one span row (inside ``service() { ... }``, or under bool_or)."""
        if isinstance(node, And):
            return f"({self.row(node.left)} AND {self.row(node.right)})"
        if isinstance(node, Or):
            return f"({self.row(node.left)} OR {self.row(node.right)})"
        if isinstance(node, Not):
            return f"(NOT coalesce({self.row(node.operand)}, FALSE))"
        if isinstance(node, Service):
            parts = []
            if node.name is not None:
                self.params.append(node.name)
                parts.append("svc = ?")
            if node.type is not None:
                self.params.append(node.type)
                parts.append("coalesce(origin, 'client') = ?")
            if node.inner is not None:
                parts.append(f"coalesce({self.row(node.inner)}, FALSE)")
            return "(" + (" AND ".join(parts) or "TRUE") + ")"
        if isinstance(node, Edge):
            self.params += [node.source, node.target]
            inner = f" AND coalesce({self.row(node.inner)}, FALSE)" if node.inner is not None else ""
            return f"(psvc = ? AND svc = ? AND psvc <> svc{inner})"
        if isinstance(node, Flag):
            if node.key == "ok":
                return "NOT (fault OR err OR throttle)"
            if node.key == "partial":
                return "FALSE"
            if node.key in ("fault", "error", "throttle"):
                return {"fault": "fault", "error": "err", "throttle": "throttle"}[node.key]
            return f"coalesce({self._annotation(node.key[len('annotation.'):], 'boolean')}, FALSE)"
        assert isinstance(node, Compare)
        if node.key == "responsetime":
            return self._cmp("dur / 1000.0", node)
        if node.key == "duration":
            return self._cmp("dur / 1000.0", node)
        if node.key in ("fault", "error", "throttle", "ok"):
            flag = self.row(Flag(node.key))
            return flag if (node.op == "=") == bool(node.value) else f"(NOT {flag})"
        if node.key.startswith("rootcause."):
            kind = node.key.split(".")[1]
            column = "svc" if node.key.endswith(".name") else "coalesce(origin, 'client')"
            flag = "fault" if kind == "fault" else "err"
            child = "child_fault" if kind == "fault" else "child_error"
            return f"({flag} AND NOT coalesce({child}, FALSE) AND {self._cmp(column, node)})"
        if node.key.startswith("annotation."):
            typ = "string" if isinstance(node.value, str) else "boolean" if isinstance(node.value, bool) else "number"
            return self._cmp(self._annotation(node.key[len("annotation."):], typ), node)
        return self._cmp(_KEY_COLUMN[node.key], node)

    def _cmp(self, sql: str, node: Compare) -> str:
        self.params.append(node.value)
        if node.op == "contains":
            return f"contains({sql}, ?)"
        if node.op == "beginswith":
            return f"starts_with({sql}, ?)"
        if node.op == "endswith":
            return f"ends_with({sql}, ?)"
        return f"({sql} {_SQL_OPS[node.op]} ?)"


def _naive(dt: datetime) -> datetime:
    return dt.astimezone(timezone.utc).replace(tzinfo=None) if dt.tzinfo else dt


def _rows_sql(cat: Catalogue, env: str, start: datetime, end: datetime, annotations: dict[str, tuple[str, str]],
              params: list[Any]) -> str:
    """The window's span rows, one per span id (completed versions win), joined to their parents and children."""
    cols = ['"trace.trace_id" AS tid', '"trace.span_id" AS sid', '"trace.parent_id" AS pid', '"service.name" AS svc',
            "name", '"timestamp" AS ts', "duration_ms AS dur", '"error" AS any_error', '"span.kind" AS kind']
    for alias, (attr, typ) in _ROW_ATTRS.items():
        cols.append(f"{cat.expr(attr, typ, params)} AS {alias}")
    for alias, (key, typ) in annotations.items():
        cols.append(f"{cat.expr('annotation.' + key, typ, params)} AS {alias}")
    params += [env, _naive(start), _naive(end) + TRACE_SLACK]
    ann_cols = "".join(f", r.{a}" for a in annotations)
    return f"""
raw AS (SELECT {', '.join(cols)} FROM spans
        WHERE _env = ? AND "timestamp" >= ? AND "timestamp" < ? AND "meta.annotation_type" IS NULL
          AND "trace.trace_id" IS NOT NULL AND "trace.span_id" IS NOT NULL
        QUALIFY row_number() OVER (PARTITION BY "trace.trace_id", "trace.span_id"
                                   ORDER BY coalesce(x_inprog, FALSE), duration_ms DESC NULLS LAST) = 1),
r AS (SELECT *,
        coalesce(x_fault, x_error IS NULL AND coalesce(any_error, FALSE)) AS fault,
        coalesce(x_error, FALSE) AS err,
        coalesce(x_throttle, FALSE) AS throttle
      FROM raw),
kids AS (SELECT tid, pid, bool_or(fault) AS child_fault, bool_or(err) AS child_error FROM r
         WHERE pid IS NOT NULL GROUP BY ALL),
j AS (SELECT r.tid, r.sid, r.pid, r.svc, r.name, r.ts, r.dur, r.kind, r.http_status, r.http_method, r.http_url,
             r.http_ua, r.http_ip, r.usr, r.fault, r.err, r.throttle, r.origin, r.x_type, r.x_inprog{ann_cols},
             p.svc AS psvc, p.sid IS NULL AS orphan, k.child_fault, k.child_error,
             row_number() OVER (PARTITION BY r.tid ORDER BY p.sid IS NULL DESC, r.ts, r.sid) = 1 AS is_root
      FROM r LEFT JOIN r p ON p.tid = r.tid AND p.sid = r.pid
             LEFT JOIN kids k ON k.tid = r.tid AND k.pid = r.sid)"""


@dataclass
class SummaryPage:
    summaries: list[dict[str, Any]]
    next_token: str | None
    processed: int


def trace_summaries(store: Store, env: str, start: datetime, end: datetime, node: Node | None, *,
                    sampling: float | None = None, token: str | None = None, page_size: int = PAGE_SIZE) -> SummaryPage:
    offset = _offset(token, start, end, node)
    cat = Catalogue(store, env)
    fc = FilterCompiler(cat)
    having = fc.trace(node)
    params: list[Any] = []
    rows = _rows_sql(cat, env, start, end, fc.annotations, params)
    sample = ""
    sample_params: list[Any] = []
    if sampling is not None:
        sample = " AND hash(tid) % 10000 < ?"
        sample_params = [int(sampling * 10000)]
    sql = f"""WITH {rows}
SELECT tid, min(ts) AS start, (max(epoch_us(ts) + coalesce(dur, 0) * 1000) - min(epoch_us(ts))) / 1e6 AS duration,
       (any_value(dur) FILTER (WHERE is_root)) / 1000.0 AS response_time,
       coalesce(bool_or(fault), FALSE) AS has_fault, coalesce(bool_or(err), FALSE) AS has_error,
       coalesce(bool_or(throttle), FALSE) AS has_throttle, coalesce(bool_or(x_inprog), FALSE) AS partial,
       any_value(http_url) FILTER (WHERE is_root) AS http_url, any_value(http_status) FILTER (WHERE is_root) AS http_status,
       any_value(http_method) FILTER (WHERE is_root) AS http_method, any_value(http_ua) FILTER (WHERE is_root) AS http_ua,
       any_value(http_ip) FILTER (WHERE is_root) AS http_ip, any_value(svc) FILTER (WHERE is_root) AS entry,
       list(DISTINCT svc) AS services, list(DISTINCT usr) FILTER (WHERE usr IS NOT NULL) AS users,
       count(*) OVER () AS total
FROM j GROUP BY tid
HAVING min(ts) >= ? AND min(ts) < ? AND {having}{sample}
ORDER BY start DESC, tid LIMIT ? OFFSET ?"""
    all_params = params + [_naive(start), _naive(end)] + fc.params + sample_params + [page_size + 1, offset]
    table = store.query(sql, all_params).to_pylist()
    more = len(table) > page_size
    table = table[:page_size]
    annotations = _annotations(store, env, cat, [r["tid"] for r in table], start, end)
    out = []
    for r in table:
        entry = r["entry"] or ""
        http = {k: v for k, v in (("HttpURL", r["http_url"]), ("HttpMethod", r["http_method"]),
                                  ("UserAgent", r["http_ua"]), ("ClientIp", r["http_ip"])) if v is not None}
        if r["http_status"] is not None:
            http["HttpStatus"] = int(r["http_status"])
        out.append({
            "Id": w3c_to_xray(r["tid"]), "StartTime": _epoch(r["start"]), "Duration": round(r["duration"], 6),
            "ResponseTime": round(r["response_time"], 6) if r["response_time"] is not None else None,
            "HasFault": r["has_fault"], "HasError": r["has_error"], "HasThrottle": r["has_throttle"],
            "IsPartial": r["partial"], "Http": http, "Annotations": annotations.get(r["tid"], {}),
            "Users": [{"UserName": u, "ServiceIds": []} for u in (r["users"] or [])],
            "ServiceIds": [{"Name": s, "Names": [s], "Type": "AWS::Service"} for s in sorted(x for x in r["services"] if x)],
            "EntryPoint": {"Name": entry, "Names": [entry], "Type": "AWS::Service"},
            "ResourceARNs": [], "InstanceIds": [], "AvailabilityZones": [],
            "FaultRootCauses": [], "ErrorRootCauses": [], "ResponseTimeRootCauses": [], "Revision": 1,
        })
    for s in out:
        if s["ResponseTime"] is None:
            del s["ResponseTime"]
    next_token = _token(offset + page_size, start, end, node) if more else None
    processed = table[0]["total"] if table else 0
    return SummaryPage(out, next_token, processed)


def _annotations(store: Store, env: str, cat: Catalogue, trace_ids: list[str], start: datetime,
                 end: datetime) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Annotation values per trace for one page, as TraceSummary.Annotations wants them."""
    keys = sorted(n for n in cat.sources if n.startswith("annotation."))[:50]
    if not trace_ids or not keys:
        return {}
    params: list[Any] = []
    cols = []
    for i, k in enumerate(keys):
        physical, json_key = cat.sources[k][0]
        if json_key is None:
            cols.append(f"{_q(physical)} AS k{i}")
        else:
            params.append("$." + json.dumps(json_key))
            cols.append(f"json_extract({_q(physical)}, ?) AS k{i}")
    params += [env, _naive(start), _naive(end) + TRACE_SLACK, trace_ids]
    rows = store.query(f"""SELECT "trace.trace_id" AS tid, {', '.join(cols)} FROM spans
                           WHERE _env = ? AND "timestamp" >= ? AND "timestamp" < ? AND list_contains(?, "trace.trace_id")""",
                       params).to_pylist()
    out: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for row in rows:
        for i, k in enumerate(keys):
            v = row[f"k{i}"]
            if v is None:
                continue
            if cat.sources[k][0][1] is not None:  # from the overflow JSON: JSON text
                v = json.loads(v)
            kind = ("BooleanValue" if isinstance(v, bool) else "NumberValue" if isinstance(v, (int, float))
                    else "StringValue")
            values = out.setdefault(row["tid"], {}).setdefault(k[len("annotation."):], [])
            entry = {"AnnotationValue": {kind: v}, "ServiceIds": []}
            if entry not in values:
                values.append(entry)
    return out


def _epoch(dt: datetime) -> float:
    return (dt.replace(tzinfo=timezone.utc) if dt.tzinfo is None else dt).timestamp()


def _fingerprint(start: datetime, end: datetime, node: Node | None) -> str:
    return f"{_epoch(start)}|{_epoch(end)}|{node!r}"


def _token(offset: int, start: datetime, end: datetime, node: Node | None) -> str:
    doc = {"o": offset, "f": _fingerprint(start, end, node)}
    return base64.urlsafe_b64encode(json.dumps(doc).encode()).decode()


class BadToken(ValueError):
    pass


def _offset(token: str | None, start: datetime, end: datetime, node: Node | None) -> int:
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

_HIST_SQL = "histogram(round(dur / 1000.0, 3))"


def service_graph(store: Store, env: str, start: datetime, end: datetime, node: Node | None = None,
                  trace_ids: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Services as nodes, edges from a parent span's service to its child's, with AWS's statistics."""
    cat = Catalogue(store, env)
    fc = FilterCompiler(cat)
    having = fc.trace(node)
    params: list[Any] = []
    rows = _rows_sql(cat, env, start, end, fc.annotations, params)
    only = ""
    extra: list[Any] = []
    if node is not None:
        only = f" AND tid IN (SELECT tid FROM j GROUP BY tid HAVING {having})"
        extra += fc.params
    if trace_ids is not None:
        only += " AND list_contains(?, tid)"
        extra.append(list(trace_ids))
    stats = """count(*) AS total, count(*) FILTER (WHERE NOT (fault OR err OR throttle)) AS ok,
               count(*) FILTER (WHERE err AND NOT throttle) AS err_other, count(*) FILTER (WHERE throttle) AS throttles,
               count(*) FILTER (WHERE fault) AS faults, sum(coalesce(dur, 0)) / 1000.0 AS total_rt,
               min(ts) AS first, max(ts) AS last, """ + _HIST_SQL + " AS hist"
    sql = f"""WITH {rows}, sel AS (SELECT * FROM j WHERE ts < ?{only})
SELECT 'node' AS what, svc AS a, NULL AS b, max(CASE WHEN orphan THEN 1 ELSE 0 END) AS root, {stats}
  FROM sel WHERE svc IS NOT NULL AND (orphan OR psvc IS DISTINCT FROM svc) GROUP BY svc
UNION ALL
SELECT 'edge', psvc, svc, 0, {stats}
  FROM sel WHERE psvc IS NOT NULL AND svc IS NOT NULL AND psvc <> svc GROUP BY psvc, svc"""
    table = store.query(sql, params + [_naive(end) + TRACE_SLACK] + extra).to_pylist()
    names = sorted({r["a"] for r in table if r["a"]} | {r["b"] for r in table if r["b"]})
    ref = {n: i for i, n in enumerate(names)}
    services: dict[str, dict[str, Any]] = {}
    for n in names:
        services[n] = {"ReferenceId": ref[n], "Name": n, "Names": [n], "Root": False, "Type": "AWS::Service",
                       "State": "active", "Edges": [], "SummaryStatistics": _summary(None),
                       "DurationHistogram": [], "ResponseTimeHistogram": []}
    for r in table:
        if r["what"] == "node":
            s = services[r["a"]]
            s["Root"] = bool(r["root"])
            s["StartTime"], s["EndTime"] = _epoch(r["first"]), _epoch(r["last"])
            s["SummaryStatistics"] = _summary(r)
            s["DurationHistogram"] = s["ResponseTimeHistogram"] = _hist(r["hist"])
        else:
            services[r["a"]]["Edges"].append({
                "ReferenceId": ref[r["b"]], "StartTime": _epoch(r["first"]), "EndTime": _epoch(r["last"]),
                "SummaryStatistics": _summary(r), "ResponseTimeHistogram": _hist(r["hist"]), "Aliases": []})
    return list(services.values())


def _summary(r: dict[str, Any] | None) -> dict[str, Any]:
    r = r or {"ok": 0, "err_other": 0, "throttles": 0, "faults": 0, "total": 0, "total_rt": 0.0}
    return {"OkCount": r["ok"], "ErrorStatistics": {"ThrottleCount": r["throttles"], "OtherCount": r["err_other"],
                                                    "TotalCount": r["throttles"] + r["err_other"]},
            "FaultStatistics": {"OtherCount": r["faults"], "TotalCount": r["faults"]},
            "TotalCount": r["total"], "TotalResponseTime": float(r["total_rt"] or 0.0)}


def _hist(h: Any) -> list[dict[str, Any]]:
    if not h:
        return []
    items = h.items() if isinstance(h, dict) else h
    return [{"Value": float(k), "Count": int(v)} for k, v in sorted(items, key=lambda kv: (kv[0] is None, kv[0])) if k is not None]


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
