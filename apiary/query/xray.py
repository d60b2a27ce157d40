"""X-Ray filter expressions -> the query plan, and the X-Ray reads that run it on either store.

A filter expression is a predicate over a *trace*: ``service("api")`` holds when some span of the trace is the
api service's, ``responsetime`` is the root segment's, ``duration`` the whole trace's. Those become `PerTrace`
values of the plan (``any``, ``root``, ``min`` / ``max``) over `SpanValue`s of `TraceRows`, which the dialect of
the store renders (``apiary/query/dialects/xray.py``). Attributes are found through the one column catalogue
(``planner.Catalogue``), wherever the store keeps them (their own column, or the overflow JSON).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Any, Sequence

from apiary.query.plan import (
    BOOLEAN, FLOAT, ROOT_CAUSE_KINDS, STRING, Call, Expr, Group, InList, Literal, PerTrace, RootCausePath, SpanQuery,
    SpanValue, TraceGraph, TraceQuery, TraceRootCauses, TraceRows, TraceSeries,
)
from apiary.query.planner import Catalogue
from apiary.query.xray_filter import (And, Compare, Edge, Everything, Flag, GroupRef, Node, Not, Or, RootCause,
                                      RootCauseJson, Service)
from apiary.store.base import Store

#: Spans of a trace may start after the window that holds the trace's start.
TRACE_SLACK = timedelta(minutes=10)
#: X-Ray filter keyword -> the span attribute it reads (``apiary/receivers/xray/segments.py`` writes them).
KEYWORD_ATTRIBUTES = {"http.status": ("http.status_code", FLOAT), "http.method": ("http.method", STRING),
                      "http.url": ("http.url", STRING), "http.useragent": ("http.user_agent", STRING),
                      "http.clientip": ("http.client_ip", STRING), "user": ("enduser.id", STRING),
                      "availabilityzone": ("aws.ec2.availability_zone", STRING),
                      "instance.id": ("aws.ec2.instance_id", STRING), "resource.arn": ("aws.resource_arn", STRING)}
#: Keywords read from the trace's root segment at the top level of an expression.
ROOT_KEYWORDS = ("http.status", "http.method", "http.url", "http.useragent", "http.clientip")
_OPS = {"=": "eq", "!=": "ne", "<": "lt", "<=": "le", ">": "gt", ">=": "ge", "contains": "contains",
        "beginswith": "starts_with", "endswith": "ends_with"}
#: The type of a service whose segments carry no ``origin``.
DEFAULT_NODE_TYPE = "AWS::Service"
#: The node X-Ray draws upstream of the services that took a trace's first request.
CLIENT_NODE_TYPE = "client"
FLAG_NAMES = ("fault", "error", "throttle", "ok", "partial")
#: Between a node's name and its type in a summary's ``services`` (the unit separator: in neither).
SEPARATOR = "\x1f"


def _b(fn: str, *args: Expr) -> Call:
    return Call(fn, tuple(args), BOOLEAN)


def _false(e: Expr) -> Expr:
    """Unknown counts as false."""
    return _b("coalesce", e, Literal(False, BOOLEAN))


def _value(name: str, typ: str) -> SpanValue:
    return SpanValue(name, typ)


class Compiler:
    """One filter expression (and the summary's own columns) -> plan expressions; collects the span values read.

    Scopes, as AWS's guide ("Using filter expressions") describes them: at the top level the simple keywords judge
    the trace -- ``fault``, ``error``, ``ok`` and the ``http.*`` keywords its root segment, ``throttle`` and
    ``partial`` any segment, ``responsetime`` the root, ``duration`` the whole trace; inside ``service() { }`` and
    ``edge() { }`` they judge the segments of that service or connection; inside ``rootcause.<kind>.<level> { }``
    a root cause of the trace's faults (a faulting span no child of which faulted), errors (likewise), or response
    time (the end of the slowest path: from the root, at each span the child that took longest, down to a span
    with no children; ``coverage`` is a span's share of the root's response time).
    """

    def __init__(self, catalogue: Catalogue) -> None:
        self.catalogue = catalogue
        self.values: list[Expr] = []
        self._index: dict[Expr, int] = {}

    def attribute(self, name: str, typ: str) -> Expr:
        """A span attribute read as ``typ``, as a span value (NULL where no span of the environment has it)."""
        try:
            column: Expr = self.catalogue.column(name, typ)
        except KeyError:
            return Literal(None, typ)
        if column not in self._index:
            self._index[column] = len(self.values)
            self.values.append(column)
        return _value(f"v{self._index[column]}", typ)

    # -- the span rows -------------------------------------------------------------------------

    def rows(self, env: str, start: datetime, end: datetime, trace_ids: Sequence[str] | None = None) -> TraceRows:
        """The rows for a trace window [start, end): spans from ``start`` to ``end`` + `TRACE_SLACK`; call `finish`
        once every expression is compiled."""
        x_error = self.attribute("xray.error", BOOLEAN)
        # An OpenTelemetry span has no X-Ray flags: its error counts as a fault (a 5xx-like failure).
        fault = _b("coalesce", self.attribute("xray.fault", BOOLEAN),
                   _b("and", _b("is_null", x_error), _false(_value("span_error", BOOLEAN))))
        namespace = self.attribute("xray.namespace", STRING)
        # A subsegment calling something outside its service (namespace remote or aws) is a node of its own, named
        # by the subsegment; an AWS SDK call is typed AWS::<service>, as X-Ray types them (AWS::DynamoDB).
        inferred = _false(_b("and", _b("eq", self.attribute("xray.type", STRING), Literal("subsegment", STRING)),
                             InList(namespace, (Literal("remote", STRING), Literal("aws", STRING)))))
        aws_type = Call("concat", (Literal("AWS::", STRING), _value("name", STRING)), STRING)
        inferred_type = Call("if", (_b("eq", namespace, Literal("aws", STRING)), aws_type, Literal("remote", STRING)),
                             STRING)
        service_type = Call("coalesce", (_value("service_origin", STRING), Literal(DEFAULT_NODE_TYPE, STRING)), STRING)
        return TraceRows(
            env, _naive(start), _naive(end) + TRACE_SLACK, (), origin=self.attribute("xray.origin", STRING),
            in_progress=_false(self.attribute("xray.in_progress", BOOLEAN)), fault=fault, error=_false(x_error),
            throttle=_false(self.attribute("xray.throttle", BOOLEAN)), inferred=inferred,
            node=Call("if", (inferred, _value("name", STRING), _value("service", STRING)), STRING),
            node_type=Call("if", (inferred, inferred_type, service_type), STRING),
            trace_ids=tuple(trace_ids) if trace_ids is not None else None)

    def finish(self, rows: TraceRows) -> TraceRows:
        """The rows with every span value the compiled expressions read."""
        return replace(rows, values=tuple(self.values))

    # -- trace predicates ----------------------------------------------------------------------

    def trace(self, node: Node | None) -> Expr | None:
        """A predicate over one trace's spans."""
        if node is None:
            return None
        if isinstance(node, Everything):
            return Literal(True, BOOLEAN)
        if isinstance(node, And):
            return _b("and", self._trace(node.left), self._trace(node.right))
        if isinstance(node, Or):
            return _b("or", self._trace(node.left), self._trace(node.right))
        if isinstance(node, Not):
            return _b("not", self._trace(node.operand))
        if isinstance(node, RootCause):
            return self.root_cause(node)
        if isinstance(node, RootCauseJson):
            return self.root_cause_json(node)
        if isinstance(node, (Service, Edge)):
            return _any(self.span(node, "trace"))
        if isinstance(node, GroupRef):
            raise ValueError("group references are resolved before compiling")
        if isinstance(node, Flag):
            if node.key in FLAG_NAMES:
                return self.trace_flag(node.key)
            if node.key == "inferred":
                return _any(_value("inferred", BOOLEAN))
            if node.key in ROOT_KEYWORDS:
                return _b("not_null", PerTrace("root", self.attribute(*KEYWORD_ATTRIBUTES[node.key]), STRING))
            if node.key in ("responsetime", "duration"):
                return Literal(True, BOOLEAN)
            return _any(self.span(node, "trace"))
        if node.key == "responsetime":
            return _false(self._compare(PerTrace("root", self.response_time(), FLOAT), node))
        if node.key == "duration":
            return _false(self._compare(self.trace_duration(), node))
        if node.key in ROOT_KEYWORDS:
            name, typ = KEYWORD_ATTRIBUTES[node.key]
            return _false(self._compare(PerTrace("root", self.attribute(name, typ), typ), node))
        if node.key in FLAG_NAMES or node.key == "inferred":
            flag = self._trace(Flag(node.key))
            return flag if (node.op == "=") == bool(node.value) else _b("not", flag)
        return _any(self.span(node, "trace"))

    def _trace(self, node: Node) -> Expr:
        out = self.trace(node)
        assert out is not None
        return out

    def trace_flag(self, key: str) -> Expr:
        """``fault`` and ``error``: the root segment had one; ``ok``: it had none; ``throttle``: some segment was
        throttled; ``partial``: some segment is still in progress (TraceSummary's HasFault, HasError, HasThrottle
        and IsPartial say the same)."""
        if key in ("fault", "error"):
            return _false(PerTrace("root", _value(key, BOOLEAN), BOOLEAN))
        if key == "ok":
            return _b("not", _false(PerTrace("root", self._span_flag("ok", negate=True), BOOLEAN)))
        if key == "partial":
            return _any(_value("in_progress", BOOLEAN))
        return _any(_value(key, BOOLEAN))

    def response_time(self) -> Expr:
        return Call("div", (_value("duration_ms", FLOAT), Literal(1000.0, FLOAT)), FLOAT)

    def trace_duration(self) -> Expr:
        """First span's start to last span's end, in seconds."""
        end = Call("add", (_value("start_us", FLOAT), Call("mul", (_b("coalesce", _value("duration_ms", FLOAT), Literal(0.0, FLOAT)),
                                                                   Literal(1000.0, FLOAT)), FLOAT)), FLOAT)
        span = Call("sub", (PerTrace("max", end, FLOAT), PerTrace("min", _value("start_us", FLOAT), FLOAT)), FLOAT)
        return Call("div", (span, Literal(1e6, FLOAT)), FLOAT)

    # -- span predicates -----------------------------------------------------------------------

    def span(self, node: Node, scope: str) -> Expr:
        """A predicate over one span: under ``any`` at the top level, or inside braces (``scope``: service, edge,
        or ``rootcause.<kind>.<level>``)."""
        if isinstance(node, Everything):
            return Literal(True, BOOLEAN)
        if isinstance(node, And):
            return _b("and", self.span(node.left, scope), self.span(node.right, scope))
        if isinstance(node, Or):
            return _b("or", self.span(node.left, scope), self.span(node.right, scope))
        if isinstance(node, Not):
            return _b("not", _false(self.span(node.operand, scope)))
        if isinstance(node, Service):
            parts = self._end(node, "node", "node_type")
            if node.inner is not None:
                parts.append(_false(self.span(node.inner, "service")))
            return _all(parts)
        if isinstance(node, Edge):
            parts = [_b("or", _b("ne", _value("parent_node", STRING), _value("node", STRING)),
                        _b("ne", _value("parent_type", STRING), _value("node_type", STRING))),
                     *self._end(node.source, "parent_node", "parent_type"), *self._end(node.target, "node", "node_type")]
            if node.inner is not None:
                parts.append(_false(self.span(node.inner, "edge")))
            return _all(parts)
        if isinstance(node, (RootCause, RootCauseJson)):
            raise ValueError("root causes are judged per trace, not inside braces")
        if isinstance(node, GroupRef):
            raise ValueError("group references are resolved before compiling")
        if isinstance(node, Flag):
            return self._span_flag(node.key, scope=scope)
        if node.key in ("responsetime", "duration"):
            return self._compare(self.response_time(), node)
        if node.key in FLAG_NAMES or node.key in ("inferred", "root", "remote", "first", "last"):
            flag = self._span_flag(node.key, scope=scope)
            return flag if (node.op == "=") == bool(node.value) else _b("not", flag)
        if node.key.startswith("annotation."):
            return self._compare(self.attribute(node.key, _type_of(node.value)), node)
        return self._compare(self._keyword_value(node.key, scope), node)

    def _keyword_value(self, key: str, scope: str) -> Expr:
        """What a string or number keyword reads from one span, in its scope."""
        if key == "name":
            if scope.endswith(".entity"):
                return _value("name", STRING)
            if scope.endswith(".exception"):
                return self.attribute("exception.type", STRING)
            return _value("node", STRING)
        if key == "type":
            return _value("node_type", STRING)
        if key == "message":
            return self.attribute("exception.message", STRING)
        if key == "coverage":
            return Call("div", (_value("duration_ms", FLOAT), _value("root_ms", FLOAT)), FLOAT)
        if key == "index":
            return self._place(scope)
        name, typ = KEYWORD_ATTRIBUTES[key]
        return self.attribute(name, typ)

    # -- root causes ---------------------------------------------------------------------------

    def root_cause(self, node: RootCause) -> Expr:
        """``rootcause.<kind>.<level> { inner }``: some element of that level on the path of some root cause of
        that kind satisfies ``inner`` ("a fault root cause that includes a service named Auth"). The exceptions
        of a path are its spans' first exceptions (the one Apiary keeps of each span)."""
        inner = _false(self.span(node.inner, f"rootcause.{node.kind}.{node.level}"))
        if node.level == "exception":
            inner = _b("and", self._has_exception(), inner)
        return RootCausePath((node.kind,), (inner,))

    def root_cause_json(self, node: RootCauseJson) -> Expr:
        """``rootcause.json = #[...]``: each listed root cause has the shape of one of the trace's root causes (of
        any kind): the same number of services, in order, each with the listed fields and the same number of
        entities in its ``EntityPath``, each with the listed fields. Fields left out match anything."""
        matches: list[Expr] = []
        for cause in node.causes:
            services = cause.get("Services", [])
            last = Literal(float(len(services) - 1), FLOAT)
            holds: list[Expr] = [_b("and", _b("eq", _value("svc_index", FLOAT), last), _value("svc_last", BOOLEAN))] \
                if services else []
            for i, service in enumerate(services):
                at = _b("eq", _value("svc_index", FLOAT), Literal(float(i), FLOAT))
                terms = [at, *self._service_fields(service)]
                holds.append(_all(terms))
                for j, entity in enumerate(service.get("EntityPath", [])):
                    place = _b("and", at, _b("eq", _value("ent_index", FLOAT), Literal(float(j), FLOAT)))
                    if j == len(service["EntityPath"]) - 1:
                        place = _b("and", place, _value("ent_last", BOOLEAN))
                    holds.append(_all([place, *self._entity_fields(entity)]))
            matches.append(RootCausePath(ROOT_CAUSE_KINDS, tuple(holds)))
        found = _all(matches)
        return _b("not", found) if node.negate else found

    def _service_fields(self, service: dict[str, Any]) -> list[Expr]:
        terms: list[Expr] = []
        if "Name" in service:
            terms.append(_b("eq", _value("node", STRING), Literal(service["Name"], STRING)))
        for name in service.get("Names", []):
            terms.append(_b("eq", _value("node", STRING), Literal(name, STRING)))
        if "Type" in service:
            terms.append(_b("eq", _value("node_type", STRING), Literal(service["Type"], STRING)))
        if "Inferred" in service:
            terms.append(_b("eq", _false(_value("inferred", BOOLEAN)), Literal(bool(service["Inferred"]), BOOLEAN)))
        return terms

    def _entity_fields(self, entity: dict[str, Any]) -> list[Expr]:
        terms: list[Expr] = []
        if "Name" in entity:
            terms.append(_b("eq", _value("name", STRING), Literal(entity["Name"], STRING)))
        if "Remote" in entity:
            terms.append(_b("eq", _false(_value("inferred", BOOLEAN)), Literal(bool(entity["Remote"]), BOOLEAN)))
        return terms

    def _has_exception(self) -> Expr:
        return _b("or", _b("not_null", self.attribute("exception.type", STRING)),
                  _b("not_null", self.attribute("exception.message", STRING)))

    def _place(self, scope: str) -> Expr:
        """``index``: an element's place in its list, from 0 -- a service among the root cause's services, an entity
        among the entities of the whole path (so the ``last`` entity is the root cause itself, as the guide's
        "last entity that has coverage greater than 0.8" reads); an exception is its span's first."""
        if scope.endswith(".service"):
            return _value("svc_index", FLOAT)
        if scope.endswith(".entity"):
            return _value("path_index", FLOAT)
        return Literal(0.0, FLOAT)

    def _ends_list(self, key: str, scope: str) -> Expr:
        """``first`` / ``last``: the element begins / ends its list. A span's exception is last when the span
        recorded no other (``xray.cause.exception_count``; a span without one, from OpenTelemetry, holds one)."""
        if key == "first":
            return _b("eq", self._place(scope), Literal(0.0, FLOAT))
        if scope.endswith(".service"):
            return _value("svc_last", BOOLEAN)
        if scope.endswith(".entity"):
            return _value("path_last", BOOLEAN)
        count = self.attribute("xray.cause.exception_count", FLOAT)
        return _b("eq", _b("coalesce", count, Literal(1.0, FLOAT)), Literal(1.0, FLOAT))

    def _end(self, end: "str | Service", name: str, typ: str) -> list[Expr]:
        """The terms that pick a service (a name, or ``id(name:, type:)``) by its node."""
        if isinstance(end, str):
            return [_b("eq", _value(name, STRING), Literal(end, STRING))]
        parts: list[Expr] = []
        if end.name is not None:
            parts.append(_b("eq", _value(name, STRING), Literal(end.name, STRING)))
        if end.type is not None:
            parts.append(_b("eq", _value(typ, STRING), Literal(end.type, STRING)))
        return parts

    def _span_flag(self, key: str, negate: bool = False, scope: str = "service") -> Expr:
        """A keyword on its own, on one span: a boolean keyword's value, any other keyword being set."""
        if key == "ok":
            bad = _b("or", _value("fault", BOOLEAN), _value("error", BOOLEAN), _value("throttle", BOOLEAN))
            return bad if negate else _b("not", bad)
        if key == "partial":
            return _value("in_progress", BOOLEAN)
        if key in ("fault", "error", "throttle", "inferred"):
            return _value(key, BOOLEAN)
        if key == "remote":
            return _value("inferred", BOOLEAN)
        if key == "root":
            return _value("is_root", BOOLEAN)
        if key in ("first", "last"):
            return self._ends_list(key, scope)
        if key in ("responsetime", "duration"):
            return _b("not_null", _value("duration_ms", FLOAT))
        if key.startswith("annotation."):
            # Set, or -- for a boolean annotation -- true.
            return _false(_b("coalesce", self.attribute(key, BOOLEAN), _b("not_null", self.attribute(key, STRING))))
        return _b("not_null", self._keyword_value(key, scope))

    def _compare(self, value: Expr, node: Compare) -> Expr:
        literal = Literal(node.value, _type_of(node.value))
        if literal.type == FLOAT:
            literal = Literal(float(node.value), FLOAT)
        return _b(_OPS[node.op], value, literal)


def _type_of(value: Any) -> str:
    return BOOLEAN if isinstance(value, bool) else STRING if isinstance(value, str) else FLOAT


def _any(e: Expr) -> Expr:
    return PerTrace("any", _false(e), BOOLEAN)


def _all(parts: list[Expr]) -> Expr:
    if not parts:
        return Literal(True, BOOLEAN)
    return parts[0] if len(parts) == 1 else Call("and", tuple(parts), BOOLEAN)


def _naive(dt: datetime) -> datetime:
    return dt.astimezone(timezone.utc).replace(tzinfo=None) if dt.tzinfo else dt


def catalogue_of(store: Store, env: str) -> Catalogue:
    return Catalogue(store.columns(env, None), f"environment {env!r}")


# -- the reads --------------------------------------------------------------------------------------


@dataclass
class SummaryRows:
    rows: list[dict[str, Any]]
    matched: int


def summary_plan(catalogue: Catalogue, env: str, start: datetime, end: datetime, node: Node | None, *,
                 sample: float | None = None, limit: int = 100, offset: int = 0) -> TraceQuery:
    """What GetTraceSummaries shows of each trace: start (µs), duration and response time (s), flags, the root's
    HTTP fields and service, every service (``name<SEPARATOR>type``), every user."""
    c = Compiler(catalogue)
    rows = c.rows(env, start, end)
    where = c.trace(node)
    root = {k: PerTrace("root", c.attribute(*KEYWORD_ATTRIBUTES[k]), KEYWORD_ATTRIBUTES[k][1])
            for k in ("http.url", "http.status", "http.method", "http.useragent", "http.clientip")}
    columns = (("start_us", PerTrace("min", _value("start_us", FLOAT), FLOAT)),
               ("duration", c.trace_duration()),
               ("response_time", PerTrace("root", c.response_time(), FLOAT)),
               ("has_fault", c.trace_flag("fault")), ("has_error", c.trace_flag("error")),
               ("has_throttle", c.trace_flag("throttle")), ("partial", c.trace_flag("partial")),
               ("http_url", root["http.url"]), ("http_status", root["http.status"]), ("http_method", root["http.method"]),
               ("http_ua", root["http.useragent"]), ("http_ip", root["http.clientip"]),
               ("entry", PerTrace("root", _value("service", STRING), STRING)),
               ("entry_type", PerTrace("root", _value("node_type", STRING), STRING)),
               ("services", PerTrace("distinct", Call("concat", (_value("node", STRING), Literal(SEPARATOR, STRING),
                                                                  _value("node_type", STRING)), STRING), STRING)),
               ("users", PerTrace("distinct", c.attribute("enduser.id", STRING), STRING)))
    return TraceQuery(c.finish(rows), _naive(start), _naive(end), where, columns, sample, limit, offset)


def trace_summaries(store: Store, env: str, start: datetime, end: datetime, node: Node | None, *,
                    sample: float | None = None, limit: int = 100, offset: int = 0) -> SummaryRows:
    from apiary.query.dialects.xray import xray_dialect_for

    plan = summary_plan(catalogue_of(store, env), env, start, end, node, sample=sample, limit=limit, offset=offset)
    compiled = xray_dialect_for(store.dialect).summaries(plan)
    rows = store.query(compiled.sql, compiled.params).to_pylist()
    return SummaryRows(rows, int(rows[0]["_matched"]) if rows else 0)


def root_cause_plan(catalogue: Catalogue, env: str, start: datetime, end: datetime,
                    trace_ids: Sequence[str]) -> TraceRootCauses:
    """What GetTraceSummaries lists of each element of a root cause's path: its node (``node``, ``node_type``,
    ``inferred``), the span's ``name``, its first exception (``exception_type``, ``exception_message``) and its
    ``coverage`` (its duration over the root's)."""
    c = Compiler(catalogue)
    rows = c.rows(env, start, end, trace_ids)
    columns = (("node", _value("node", STRING)), ("node_type", _value("node_type", STRING)),
               ("inferred", _false(_value("inferred", BOOLEAN))), ("name", _value("name", STRING)),
               ("exception_type", c.attribute("exception.type", STRING)),
               ("exception_message", c.attribute("exception.message", STRING)),
               ("coverage", c._keyword_value("coverage", "rootcause.responsetime.entity")))
    return TraceRootCauses(c.finish(rows), columns)


@dataclass
class CausePath:
    """One root cause of a trace: its ``kind`` (one of `ROOT_CAUSE_KINDS`) and its path, from the trace's entry
    point down to the root-cause span, a row per span with the columns of `root_cause_plan` and the span's
    place (``svc_index``, ``ent_index``)."""

    kind: str
    path: list[dict[str, Any]]


def root_causes(store: Store, env: str, trace_ids: Sequence[str], start: datetime,
                end: datetime) -> dict[str, list[CausePath]]:
    """Per trace of a page of summaries, its root causes of every kind: one statement for the whole page, none
    for an empty page."""
    from apiary.query.dialects.xray import xray_dialect_for

    if not trace_ids:
        return {}
    plan = root_cause_plan(catalogue_of(store, env), env, start, end, trace_ids)
    compiled = xray_dialect_for(store.dialect).root_causes(plan)
    out: dict[str, list[CausePath]] = {}
    last: tuple[str, int, str] | None = None
    for r in store.query(compiled.sql, compiled.params).to_pylist():
        key = (r["_tid"], int(r["rc_kind"]), r["rc"])
        if key != last:
            out.setdefault(key[0], []).append(CausePath(ROOT_CAUSE_KINDS[key[1]], []))
            last = key
        out[key[0]][-1].path.append(r)
    return out


def graph_plan(catalogue: Catalogue, env: str, start: datetime, end: datetime, node: Node | None,
               trace_ids: Sequence[str] | None = None) -> TraceGraph:
    c = Compiler(catalogue)
    rows = c.rows(env, start, end, trace_ids)
    traces = c.trace(node)
    return TraceGraph(c.finish(rows), traces)


@dataclass
class GraphRows:
    """Per node (``node``, ``node_type``, ``root``) and per edge (``parent_node``, ``parent_type``, ``node``,
    ``node_type``): ``total``, ``ok``, ``errors`` (not throttled), ``throttles``, ``faults``, ``response_s`` (their
    sum), ``first_us``, ``last_us`` and ``histogram`` (response times in s, rounded to ms -> count)."""

    nodes: list[dict[str, Any]]
    edges: list[dict[str, Any]]


def service_graph(store: Store, env: str, start: datetime, end: datetime, node: Node | None = None,
                  trace_ids: Sequence[str] | None = None) -> GraphRows:
    from apiary.query.dialects.xray import xray_dialect_for

    plan = graph_plan(catalogue_of(store, env), env, start, end, node, trace_ids)
    dialect = xray_dialect_for(store.dialect)
    out = []
    for compiled in (dialect.graph_nodes(plan), dialect.graph_edges(plan)):
        rows = store.query(compiled.sql, compiled.params).to_pylist()
        for r in rows:
            r["histogram"] = dialect.histogram(r["histogram"])
        out.append(rows)
    return GraphRows(*out)


class SelectorError(ValueError):
    """An EntitySelectorExpression that is not made of service(), id() and edge() functions."""


def selects_edges(entity: Node | None) -> bool:
    """Whether an EntitySelectorExpression picks edges (``edge()``) rather than services (``service()`` /
    ``id()``); none picks every edge, as AWS's reference says. The functions may be combined with and, or, not,
    but services and edges not mixed: the answer carries one kind of statistics."""
    if entity is None:
        return True
    kinds: set[bool] = set()

    def walk(n: Node) -> None:
        if isinstance(n, (And, Or)):
            walk(n.left)
            walk(n.right)
        elif isinstance(n, Not):
            walk(n.operand)
        elif isinstance(n, (Service, Edge)):
            kinds.add(isinstance(n, Edge))
        else:
            raise SelectorError("EntitySelectorExpression takes only service(), id() and edge() functions")

    walk(entity)
    if len(kinds) > 1:
        raise SelectorError("EntitySelectorExpression cannot mix service() and edge(): pick services or edges")
    return kinds.pop()


@dataclass
class SeriesRows:
    """Per bucket (``bucket_us``, its start), oldest first: the statistics of `GraphRows`; ``edges`` says whether
    they are of edges or of services."""

    rows: list[dict[str, Any]]
    edges: bool


def time_series(store: Store, env: str, start: datetime, end: datetime, traces: Node | None, entity: Node | None,
                period_s: int, *, limit: int = 1000, offset: int = 0) -> SeriesRows:
    """GetTimeSeriesServiceStatistics: the service graph's statistics of the entities ``entity`` selects, among the
    traces ``traces`` (a group's expression) selects, per ``period_s`` seconds of span start time. The graph's
    statement grouped by time rather than a second one: over 20,000 segments one service's hour per minute took
    88 ms p50 beside GetServiceGraph's 225 ms on DuckDB, 281 ms beside 629 ms on chdb (``bench/xray.py``)."""
    from apiary.query.dialects.xray import xray_dialect_for

    edges = selects_edges(entity)
    c = Compiler(catalogue_of(store, env))
    rows = c.rows(env, start, end)
    picked = _false(c.span(entity, "trace")) if entity is not None else None
    counted = c.trace(traces)
    plan = TraceSeries(TraceGraph(c.finish(rows), counted), picked, edges, _naive(start), _naive(end),
                       int(period_s) * 1_000_000, limit, offset)
    dialect = xray_dialect_for(store.dialect)
    compiled = dialect.series(plan)
    out = store.query(compiled.sql, compiled.params).to_pylist()
    for r in out:
        r["histogram"] = dialect.histogram(r["histogram"])
    return SeriesRows(out, edges)


def annotation_values(store: Store, env: str, trace_ids: Sequence[str], start: datetime, end: datetime,
                      max_keys: int = 50) -> dict[str, dict[str, list[tuple[Any, str]]]]:
    """Per trace, per annotation key: its distinct (value, service) pairs. Read with the Honeycomb query engine's
    plan -- the page's spans that carry an annotation, grouped by trace, service and every annotation -- so one
    statement per page, on either store."""
    from apiary.query.dialects import dialect_for

    catalogue = catalogue_of(store, env)
    keys = sorted(n for n in catalogue.sources if n.startswith("annotation."))[:max_keys]
    if not trace_ids or not keys:
        return {}
    tid, svc = catalogue.column("trace.trace_id"), catalogue.column("service.name")
    columns = [catalogue.column(k) for k in keys]
    carries = Call("or", tuple(_b("not_null", c) for c in columns), BOOLEAN) if len(columns) > 1 else _b("not_null", columns[0])
    q = SpanQuery(env=env, datasets=None, start=_naive(start), end=_naive(end) + TRACE_SLACK, granularity_s=3600,
                  where=_b("and", InList(tid, tuple(Literal(t, STRING) for t in trace_ids)), carries),
                  groups=(Group("tid", tid), Group("service", svc), *(Group(k, c) for k, c in zip(keys, columns))),
                  aggregates=(), limit=100_000)
    compiled = dialect_for(store.dialect).summary(q)
    out: dict[str, dict[str, list[tuple[Any, str]]]] = {}
    for r in store.query(compiled.sql, compiled.params).to_pylist():
        for i, key in enumerate(keys):
            value = r[f"g{i + 2}"]
            if value is None:
                continue
            values = out.setdefault(r["g0"], {}).setdefault(key[len("annotation."):], [])
            if (value, r["g1"]) not in values:
                values.append((value, r["g1"]))
    return out
