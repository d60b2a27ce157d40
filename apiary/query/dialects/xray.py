"""X-Ray's trace queries (`TraceQuery`, `TraceGraph`) rendered for DuckDB and ClickHouse.

The statements are written once, in `XRaySQL`: the window's spans, one row per span id (the completed version of a
span sent in progress first wins), each joined to its parent and to its children's flags, the root marked; then
grouped per trace (summaries) or per graph node and edge (graphs). Each store's subclass supplies its expression
renderer (the one ``duckdb.py`` / ``clickhouse.py`` use for Honeycomb queries, taught `SpanValue` and `PerTrace`)
and the handful of functions the two engines spell differently. ClickHouse runs the joins with
``join_use_nulls = 1``, so a span without a parent reads NULL there, as in DuckDB.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from typing import Any, Sequence

from apiary.query.dialects import Compiled
from apiary.query.dialects.base import epoch_us
from apiary.query.dialects.clickhouse import ClickHouseRender
from apiary.query.dialects.duckdb import DuckDBRender
from apiary.query.dialects.traces import span_rows
from apiary.query.plan import (ROOT_CAUSE_KINDS, Column, Expr, InList, Literal, NodeFaultSeries, PerTrace,
                               RootCausePath, SpanValue, TraceGraph, TraceQuery, TraceRootCauses, TraceRows,
                               TraceSeries)

_NAME = re.compile(r"[a-z][a-z0-9_]*")
#: The spans a graph node counts: those entering it, from no parent or from another node.
_ENTERS_NODE = "(_orphan OR _parent_node <> _node OR _parent_type <> _node_type)"
#: The spans an edge counts: the trace's root (called by the client) and those called from another node.
_CROSSES_EDGE = "(_is_root OR _parent_node <> _node OR _parent_type <> _node_type)"
#: The root-cause spans of each kind, over a span of ``r`` joined to its children's flags (``kids`` as ``k``): a fault
#: (error) none of whose children faulted (erred); for response time, a span without children that is its parent's
#: slowest child (`_SLOWEST`) -- the climb from it keeps only the one whose whole path is slowest children.
_ROOT_CAUSE_SPANS = {"fault": "_fault AND NOT coalesce(k._kfault, false)",
                     "error": "_error AND NOT coalesce(k._kerror, false)", "responsetime": "k._ktid IS NULL AND _slowest"}
#: The slowest path is walked down from the root: at each span, to the child that took longest (the earliest
#: started, then the least span id, of equals; a span still in progress, without a duration, last). A span without
#: a parent id heads a path of its own.
_SLOWEST = ("(_pid IS NULL OR row_number() OVER (PARTITION BY _tid, _pid ORDER BY _duration_ms DESC NULLS LAST, "
            "_start_us, _sid) = 1) AS _slowest")
_RESPONSE_TIME = ROOT_CAUSE_KINDS.index("responsetime")
#: `_ROOT_CAUSE_SPANS`' fault, read from a row of ``t`` (its children's flags joined as ``_child_fault``).
_FAULT_ROOT_CAUSE = "_fault AND NOT coalesce(_child_fault, false)"


def value_column(name: str) -> str:
    """The row column holding a span value (names come from the plan's vocabulary, checked all the same)."""
    if not _NAME.fullmatch(name):
        raise ValueError(f"{name!r} is not a span value")
    return f"_{name}"


class XRaySQL(ABC):
    """The statements; subclasses say how their engine spells a few aggregates."""

    name = ""
    settings = ""

    # -- what each engine spells its own way ----------------------------------------------------

    @abstractmethod
    def renderer(self) -> Any:
        ...

    @abstractmethod
    def any_true(self, x: str) -> str:
        ...

    @abstractmethod
    def root(self, x: str) -> str:
        ...

    @abstractmethod
    def count_if(self, x: str) -> str:
        ...

    @abstractmethod
    def histogram_sql(self, x: str) -> str:
        ...

    @abstractmethod
    def histogram(self, value: Any) -> dict[float, int]:
        ...

    @abstractmethod
    def sample(self, r: Any, fraction: float) -> str:
        ...

    # -- expressions ------------------------------------------------------------------------------

    def per_trace(self, r: Any, e: PerTrace) -> str:
        x = r.expr(e.arg) if e.arg is not None else None
        if e.kind == "any":
            return self.any_true(str(x))
        if e.kind == "root":
            return self.root(str(x))
        if e.kind in ("min", "max", "sum"):
            return f"{e.kind}({x})"
        if e.kind == "count":
            return "count(*)" if x is None else self.count_if(x)
        if e.kind == "distinct":
            return r.distinct_list(str(x))
        raise ValueError(f"no per-trace aggregate {e.kind!r}")

    # -- the rows ---------------------------------------------------------------------------------

    def rows(self, r: Any, rows: TraceRows, reads: Sequence[Expr | None] = ()) -> str:
        """``WITH`` clauses ending in ``t``: one row per span with every `SpanValue` as ``_<name>``; the root's
        duration (a window of its own) only when ``reads`` use it."""
        i = r.ident
        cols = [f"{i('trace.trace_id')} AS _tid", f"{i('trace.span_id')} AS _sid", f"{i('trace.parent_id')} AS _pid",
                f"{i('service.name')} AS _service", f"{i('name')} AS _name", f"{r.micros(i('timestamp'))} AS _start_us",
                f"{i('duration_ms')} AS _duration_ms", f"{i('error')} AS _span_error"]
        cols += [f"{r.expr(v)} AS _v{n}" for n, v in enumerate(rows.values)]
        where = span_rows(r, rows, rows.trace_ids) + [f"{i('trace.span_id')} IS NOT NULL"]
        read = f"SELECT {', '.join(cols)} FROM spans WHERE {' AND '.join(where)}"
        latest = (f"SELECT *, row_number() OVER (PARTITION BY _tid, _sid ORDER BY {r.expr(rows.in_progress)}, "
                  f"_duration_ms DESC NULLS LAST) AS _n, "
                  f"max({r.expr(rows.origin)}) OVER (PARTITION BY _tid, _service) AS _service_origin FROM ({read}) AS s0")
        derived = [f"{r.expr(rows.fault)} AS _fault", f"{r.expr(rows.error)} AS _error",
                   f"{r.expr(rows.throttle)} AS _throttle", f"{r.expr(rows.in_progress)} AS _in_progress",
                   f"{r.expr(rows.inferred)} AS _inferred", f"{r.expr(rows.node)} AS _node",
                   f"{r.expr(rows.node_type)} AS _node_type"]
        kinds = sorted(set().union(*(root_cause_kinds(e) for e in reads)))
        # Only a response-time root cause needs each span's place among its siblings: a window over every span.
        r_columns = derived + ([_SLOWEST] if "responsetime" in kinds else [])
        # Named one by one: ClickHouse prefixes the columns of ``c.*`` in a join with ``c.``.
        own = [c.rsplit(" AS ", 1)[1] for c in cols + r_columns] + ["_service_origin"]
        order = "_orphan DESC, _start_us, _sid"
        root_ms = ""
        t_columns = own + ["_parent_service", "_parent_node", "_parent_type", "_orphan", "_child_fault", "_child_error",
                           "_leaf", "_is_root"]
        if any("root_ms" in span_values(e) for e in reads):
            root_ms = f", first_value(_duration_ms) OVER (PARTITION BY _tid ORDER BY {order}) AS _root_ms"
            t_columns.append("_root_ms")
        paths = self.root_cause_paths(kinds, t_columns) if kinds else ""
        recursive = "RECURSIVE " if kinds else ""
        return (f"WITH {recursive}r AS (SELECT *, {', '.join(r_columns)} FROM ({latest}) AS s1 WHERE _n = 1), "
                f"kids AS (SELECT _tid AS _ktid, _pid AS _kpid, {self.any_true('_fault')} AS _kfault, "
                f"{self.any_true('_error')} AS _kerror FROM r WHERE _pid IS NOT NULL GROUP BY _tid, _pid), "
                f"j AS (SELECT {', '.join(f'c.{name} AS {name}' for name in own)}, p._service AS _parent_service, "
                "p._node AS _parent_node, p._node_type AS _parent_type, p._sid IS NULL AS _orphan, "
                "k._kfault AS _child_fault, k._kerror AS _child_error, k._ktid IS NULL AS _leaf "
                "FROM r AS c LEFT JOIN r AS p ON p._tid = c._tid AND p._sid = c._pid "
                "LEFT JOIN kids AS k ON k._ktid = c._tid AND k._kpid = c._sid), "
                f"t AS (SELECT *, row_number() OVER (PARTITION BY _tid ORDER BY {order}) = 1 AS _is_root{root_ms} FROM j)"
                f"{paths}")

    def root_cause_paths(self, kinds: Sequence[str], t_columns: Sequence[str]) -> str:
        """``WITH`` clauses after ``t`` ending in ``rcp``: a row per (root cause, span on its path) -- the root cause
        (``_rc_kind``: its kind's place in `ROOT_CAUSE_KINDS`, ``_rc``: its span id), the path span's columns of
        ``t``, and where the span stands in the root cause as X-Ray lists it: ``_svc_index`` (its service's place in
        the services, the root's first), ``_ent_index`` (its place in that service's entity path), ``_svc_last``,
        ``_ent_last``;
        and in the whole path: ``_path_index`` (the root 0), ``_path_last`` (the root-cause span itself).
        The path is climbed from each root cause to the root (or to a span whose parent is missing), 256 spans
        at most. A response-time root cause is the end of the trace's slowest path (`_SLOWEST`): of the climbs from
        the leaves that are their parents' slowest children, only the one that reaches the trace's root through
        slowest children alone is kept -- one root cause per trace."""
        # The seeds read the spans and their children's flags, not ``t``: ClickHouse would evaluate ``t`` (two
        # joins and a window) once more for them; every kind in one pass over them, not one pass per kind.
        numbers = " UNION ALL ".join(f"SELECT {ROOT_CAUSE_KINDS.index(k)} AS _akind" for k in kinds)
        seeded = " OR ".join(f"(_akind = {ROOT_CAUSE_KINDS.index(k)} AND {_ROOT_CAUSE_SPANS[k]})" for k in kinds)
        timed = "responsetime" in kinds
        seeds = ("SELECT _tid AS _atid, _akind, _sid AS _arc, _sid AS _aat, _pid AS _anext, 0 AS _aup "
                 "FROM r LEFT JOIN kids AS k ON k._ktid = r._tid AND k._kpid = r._sid "
                 f"CROSS JOIN ({numbers}) AS kinds WHERE {seeded}")
        # Climbed over ``r`` (the spans, before their joins): ClickHouse evaluates a WITH clause at every reference,
        # and the climb refers to it once a step. The few path rows are joined last (ClickHouse builds its hash
        # table from a join's right side): with the spans on the right, 10,000 traces took about 1.3x longer.
        # The climb reads no window of ``r`` (ClickHouse would evaluate it again at every step): a response-time
        # path is judged once climbed, from the path rows' own ``_slowest``.
        climb = ("SELECT a._atid, a._akind, a._arc, p._sid, p._pid, a._aup + 1 FROM r AS p "
                 "JOIN anc AS a ON p._tid = a._atid AND p._sid = a._anext WHERE a._aup < 255")
        path = "PARTITION BY _tid, _rc_kind, _rc"
        enters = f"CASE WHEN {_ENTERS_NODE} THEN 1 ELSE 0 END"
        # The seeds in a subquery of their own: ClickHouse reads every part after a recursive CTE's first as recursive.
        return (f", anc AS (SELECT * FROM ({seeds}) AS seeds UNION ALL {climb}), "
                f"rcp0 AS (SELECT a._akind AS _rc_kind, a._arc AS _rc, a._aup AS _rc_up, "
                f"{', '.join(f's.{c} AS {c}' for c in t_columns)} FROM t AS s "
                "JOIN anc AS a ON s._tid = a._atid AND s._sid = a._aat), "
                f"rcp1 AS (SELECT *, sum({enters}) OVER ({path} ORDER BY _rc_up DESC "
                "ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) - 1 AS _svc_index"
                + (f", min(CASE WHEN _is_root OR _slowest THEN 1 ELSE 0 END) OVER ({path}) "
                   f"* max(CASE WHEN _is_root THEN 1 ELSE 0 END) OVER ({path}) AS _rc_whole" if timed else "")
                + " FROM rcp0), "
                f"rcp AS (SELECT *, row_number() OVER ({path}, _svc_index ORDER BY _rc_up DESC) - 1 AS _ent_index, "
                f"row_number() OVER ({path}, _svc_index ORDER BY _rc_up) = 1 AS _ent_last, "
                f"_svc_index = max(_svc_index) OVER ({path}) AS _svc_last, "
                f"max(_rc_up) OVER ({path}) - _rc_up AS _path_index, _rc_up = 0 AS _path_last FROM rcp1"
                + (f" WHERE _rc_kind <> {_RESPONSE_TIME} OR _rc_whole = 1" if timed else "") + ")")

    def root_cause(self, r: Any, e: RootCausePath) -> str:
        """Some root cause of the kinds whose path holds an element satisfying each condition: the trace ids of
        such root causes, grouped by root cause."""
        kinds = ", ".join(str(ROOT_CAUSE_KINDS.index(k)) for k in e.kinds)
        holds = " AND ".join(self.any_true(f"coalesce({r.expr(c)}, false)") for c in e.holds) or "true"
        return (f"(_tid IN (SELECT _tid FROM rcp WHERE _rc_kind IN ({kinds}) GROUP BY _tid, _rc_kind, _rc "
                f"HAVING {holds}))")

    # -- statements -------------------------------------------------------------------------------

    def summaries(self, q: TraceQuery) -> Compiled:
        """One row per matching trace, newest first, a page of them: ``_tid``, the plan's columns, ``_matched``."""
        r = self.renderer()
        with_rows = self.rows(r, q.rows, [q.where, *(e for _, e in q.columns)])
        cols = [f"{r.expr(e)} AS {_alias(name)}" for name, e in q.columns]
        having = [f"min(_start_us) >= {r.param(_micros(q.start))}", f"min(_start_us) < {r.param(_micros(q.end))}"]
        if q.where is not None:
            having.append(r.expr(q.where))
        if q.sample is not None:
            having.append(self.sample(r, q.sample))
        sql = (f"{with_rows} SELECT _tid, {', '.join(cols)}, count(*) OVER () AS _matched FROM t GROUP BY _tid "
               f"HAVING {' AND '.join(having)} ORDER BY min(_start_us) DESC, _tid "
               f"LIMIT {r.param(int(q.limit))} OFFSET {r.param(int(q.offset))}{self.settings}")
        return Compiled(sql, r.params)

    def root_causes(self, q: TraceRootCauses) -> Compiled:
        """A row per (root cause, span on its path) of the plan's traces, every kind: ``_tid``, ``rc_kind`` (its
        place in `ROOT_CAUSE_KINDS`), ``rc`` (the root-cause span), ``svc_index``, ``ent_index`` and the plan's
        columns, in path order from the entry point. The paths are the ones the ``rootcause.*`` keywords judge
        (`root_cause_paths`), climbed over the page's traces only."""
        r = self.renderer()
        with_rows = self.rows(r, q.rows, [RootCausePath(ROOT_CAUSE_KINDS, ()), *(e for _, e in q.columns)])
        cols = [f"{r.expr(e)} AS {_alias(name)}" for name, e in q.columns]
        sql = (f"{with_rows} SELECT _tid, _rc_kind AS rc_kind, _rc AS rc, _svc_index AS svc_index, "
               f"_ent_index AS ent_index, {', '.join(cols)} FROM rcp "
               f"ORDER BY _tid, _rc_kind, _rc, _path_index{self.settings}")
        return Compiled(sql, r.params)

    def _selected(self, r: Any, g: TraceGraph, reads: Sequence[Expr | None] = ()) -> str:
        sql = self.rows(r, g.rows, [g.traces, *reads])
        if g.traces is None:
            return sql + ", sel AS (SELECT * FROM t)"
        return sql + f", sel AS (SELECT * FROM t WHERE _tid IN (SELECT _tid FROM t GROUP BY _tid HAVING {r.expr(g.traces)}))"

    def _stats(self) -> str:
        c = self.count_if
        return ", ".join([
            "count(*) AS total", f"{c('NOT (_fault OR _error OR _throttle)')} AS ok",
            f"{c('_error AND NOT _throttle')} AS errors", f"{c('_throttle')} AS throttles", f"{c('_fault')} AS faults",
            "sum(coalesce(_duration_ms, 0)) / 1000.0 AS response_s", "min(_start_us) AS first_us",
            "max(_start_us) AS last_us", f"{self.histogram_sql('round(_duration_ms / 1000.0, 3)')} AS histogram"])

    def graph_nodes(self, g: TraceGraph) -> Compiled:
        """A row per node the spans enter (from no parent, or from another node): ``node``, ``node_type``, ``root``
        and the statistics of `apiary.query.xray.GraphRows`."""
        r = self.renderer()
        sql = (f"{self._selected(r, g)} SELECT _node AS node, _node_type AS node_type, {self.any_true('_orphan')} AS root, "
               f"{self._stats()} FROM sel WHERE _node IS NOT NULL AND {_ENTERS_NODE} "
               f"GROUP BY _node, _node_type{self.settings}")
        return Compiled(sql, r.params)

    def graph_edges(self, g: TraceGraph) -> Compiled:
        """A row per (parent's node, node) pair: ``parent_node``, ``parent_type``, ``node``, ``node_type``, statistics;
        the root spans' row has no parent node (X-Ray draws their caller as the ``client`` node)."""
        r = self.renderer()
        sql = (f"{self._selected(r, g)} SELECT _parent_node AS parent_node, _parent_type AS parent_type, _node AS node, "
               f"_node_type AS node_type, {self._stats()} FROM sel WHERE _node IS NOT NULL AND {_CROSSES_EDGE} "
               f"GROUP BY _parent_node, _parent_type, _node, _node_type{self.settings}")
        return Compiled(sql, r.params)

    def series(self, s: TraceSeries) -> Compiled:
        """A row per ``period_us`` bucket (``bucket_us``, its start) with the statistics of `graph_nodes` (or
        `graph_edges`) over the spans the entity selects: the graph's own statement, grouped by time instead."""
        r = self.renderer()
        period = r.param(int(s.period_us))
        where = ["_node IS NOT NULL", _CROSSES_EDGE if s.edges else _ENTERS_NODE,
                 f"_start_us >= {r.param(_micros(s.start))}", f"_start_us < {r.param(_micros(s.end))}"]
        if s.entity is not None:
            where.append(f"coalesce({r.expr(s.entity)}, false)")
        sql = (f"{self._selected(r, s.graph, [s.entity])} SELECT _start_us - _start_us % {period} AS bucket_us, "
               f"{self._stats()} FROM sel WHERE {' AND '.join(where)} GROUP BY bucket_us ORDER BY bucket_us "
               f"LIMIT {r.param(int(s.limit))} OFFSET {r.param(int(s.offset))}{self.settings}")
        return Compiled(sql, r.params)

    def node_fault_series(self, s: NodeFaultSeries) -> Compiled:
        """A row per (bucket, node) the spans enter: ``bucket_us``, ``node``, ``node_type``, ``total``, ``ok``,
        ``faults`` (of the spans entering the node, as `graph_nodes` counts them); ``root_causes``: the selected
        traces with a fault root cause among the node's spans in the bucket -- the span the ``rootcause.fault``
        keywords end their paths at (`_FAULT_ROOT_CAUSE`), so counting it needs no climb; and ``roots``,
        ``root_ok``, ``root_faults``: the same counts of the traces' roots (the client's requests) in the node."""
        r = self.renderer()
        period, lo, hi = r.param(int(s.period_us)), r.param(_micros(s.start)), r.param(_micros(s.end))
        c = self.count_if
        sql = (f"{self._selected(r, s.graph)} SELECT _start_us - _start_us % {period} AS bucket_us, _node AS node, "
               f"_node_type AS node_type, {c(_ENTERS_NODE)} AS total, "
               f"{c(f'{_ENTERS_NODE} AND NOT (_fault OR _error OR _throttle)')} AS ok, "
               f"{c(f'{_ENTERS_NODE} AND _fault')} AS faults, "
               f"count(DISTINCT CASE WHEN {_FAULT_ROOT_CAUSE} THEN _tid END) AS root_causes, "
               f"{c('_is_root')} AS roots, {c('_is_root AND NOT (_fault OR _error OR _throttle)')} AS root_ok, "
               f"{c('_is_root AND _fault')} AS root_faults FROM sel "
               f"WHERE _node IS NOT NULL AND _start_us >= {lo} AND _start_us < {hi} GROUP BY bucket_us, _node, "
               f"_node_type HAVING {c(_ENTERS_NODE)} > 0 ORDER BY bucket_us, node, node_type{self.settings}")
        return Compiled(sql, r.params)

def _parts(e: Expr) -> tuple[Expr | None, ...]:
    if isinstance(e, PerTrace):
        return (e.arg,)
    if isinstance(e, InList):
        return (e.expr,)
    if isinstance(e, RootCausePath):
        return e.holds
    return tuple(getattr(e, "args", ()))


def span_values(e: Expr | None) -> set[str]:
    """The names of the span values an expression reads."""
    if e is None or isinstance(e, (Literal, Column)):
        return set()
    if isinstance(e, SpanValue):
        return {e.name}
    return set().union(*(span_values(a) for a in _parts(e)))


def root_cause_kinds(e: Expr | None) -> set[str]:
    """The kinds of root cause whose paths an expression reads."""
    if e is None or isinstance(e, (Literal, Column, SpanValue)):
        return set()
    own = set(e.kinds) if isinstance(e, RootCausePath) else set()
    return own.union(*(root_cause_kinds(a) for a in _parts(e)))


def _alias(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise ValueError(f"{name!r} is not a column name of a trace query")
    return name


def _micros(naive_utc: Any) -> int:
    return epoch_us(naive_utc)


# -- DuckDB -----------------------------------------------------------------------------------------


class _TraceValues:
    """Teaches a dialect's expression renderer the trace plan's own values: a `SpanValue` is a row column, a
    `PerTrace` the owner's aggregate; everything else renders as for Honeycomb queries."""

    def __init__(self, owner: XRaySQL) -> None:
        super().__init__()
        self.owner = owner

    def expr(self, e: Expr) -> str:
        if isinstance(e, SpanValue):
            return value_column(e.name)
        if isinstance(e, PerTrace):
            return self.owner.per_trace(self, e)
        if isinstance(e, RootCausePath):
            return self.owner.root_cause(self, e)
        return super().expr(e)  # type: ignore[misc]


class _DuckDBRender(_TraceValues, DuckDBRender):
    pass


class DuckDBXRay(XRaySQL):
    name = "duckdb"

    def renderer(self) -> _DuckDBRender:
        return _DuckDBRender(self)

    def any_true(self, x: str) -> str:
        return f"coalesce(bool_or({x}), false)"

    def root(self, x: str) -> str:
        return f"(any_value({x}) FILTER (WHERE _is_root))"

    def count_if(self, x: str) -> str:
        return f"count(*) FILTER (WHERE {x})"

    def histogram_sql(self, x: str) -> str:
        return f"histogram({x})"

    def histogram(self, value: Any) -> dict[float, int]:
        items = value.items() if isinstance(value, dict) else (value or [])
        return {float(k): int(n) for k, n in items if k is not None}

    def sample(self, r: Any, fraction: float) -> str:
        return f"hash(_tid) % 10000 < {r.param(int(fraction * 10000))}"


# -- ClickHouse -------------------------------------------------------------------------------------


class _ClickHouseRender(_TraceValues, ClickHouseRender):
    pass


class ClickHouseXRay(XRaySQL):
    name = "clickhouse"
    settings = " SETTINGS join_use_nulls = 1"

    def renderer(self) -> _ClickHouseRender:
        return _ClickHouseRender(self)

    def any_true(self, x: str) -> str:
        return f"(countIf(coalesce({x}, false)) > 0)"

    def root(self, x: str) -> str:
        return f"anyIf({x}, _is_root)"

    def count_if(self, x: str) -> str:
        return f"countIf(coalesce({x}, false))"

    def histogram_sql(self, x: str) -> str:
        return f"sumMapIf([assumeNotNull({x})], [toUInt64(1)], ({x}) IS NOT NULL)"

    def histogram(self, value: Any) -> dict[float, int]:
        if isinstance(value, dict):  # a tuple of two arrays arrives as a struct
            keys, counts = list(value.values())
        else:
            keys, counts = value or ([], [])
        return {float(k): int(n) for k, n in zip(keys, counts)}

    def sample(self, r: Any, fraction: float) -> str:
        return f"cityHash64(_tid) % 10000 < {r.param(int(fraction * 10000), 'UInt64')}"


def xray_dialect_for(name: str) -> XRaySQL:
    if name == "duckdb":
        return DuckDBXRay()
    if name == "clickhouse":
        return ClickHouseXRay()
    raise ValueError(f"no SQL dialect {name!r}")
