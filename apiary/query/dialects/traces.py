"""What a trace search asks of a SQL dialect, and which one a store gets.

Kept apart from ``Dialect`` (spans grouped by columns) because a trace search
groups by trace and judges each trace by flags over its spans. The search
statement computes only the flags and each trace's first start and last end;
the rows shown (root, services, counts) are worked out afterwards for the
traces returned alone. On 1 M spans (this machine, loaded): 276 ms for the
flags, ordered and limited, against 941 ms with the shown columns computed for
every trace. Picking candidate traces first (a semi-join on the spans of a
condition every match needs) gained nothing (249 against 256 ms), so it is not done.
"""

from __future__ import annotations

from typing import Protocol, Sequence

from apiary.query.dialects import Compiled
from apiary.query.dialects.base import SpanRender
from apiary.query.plan import TraceRows
from apiary.query.trace_search import Const, Has, Logic, Match, TraceSearchPlan


class TraceDialect(Protocol):
    def search(self, plan: TraceSearchPlan) -> Compiled:
        """One row per trace: ``_tid``, ``start_us``, ``end_us``, ``h0..hN`` (some span matched condition i). When
        the plan's match is exact in SQL, only the matching traces, ordered and limited, each with ``_matched``
        (all that matched); otherwise every trace the relaxed match keeps."""

    def summaries(self, plan: TraceSearchPlan, trace_ids: Sequence[str]) -> Compiled:
        """For the traces listed: ``_tid``, ``start_us``, ``end_us``, ``spans``, ``errors``, ``has_root``,
        ``root_name``, ``root_service`` (the root's, else the earliest span's), ``services``."""

    def spans_of(self, plan: TraceSearchPlan, trace_ids: Sequence[str], conditions: Sequence[int]) -> Compiled:
        """For every span of the traces: ``_i`` (its row number, 0..n-1), ``_tid``, ``_p`` (its parent's row
        number, NULL without one) and ``m<i>`` (the span matches condition i)."""


def render_match(m: Match) -> str:
    """The relaxed match over the per-trace flag columns (the same text in both dialects)."""
    if isinstance(m, Has):
        return f"h{int(m.index)}"
    if isinstance(m, Const):
        return "true" if m.value else "false"
    if isinstance(m, Logic):
        if m.op == "not":
            return f"(NOT {render_match(m.args[0])})"
        if not m.args:
            return "true" if m.op == "and" else "false"
        return "(" + f" {m.op.upper()} ".join(render_match(a) for a in m.args) + ")"
    raise ValueError(f"{m!r} cannot be said in SQL; relax the match first")


def span_rows(r: SpanRender, plan: TraceSearchPlan | TraceRows, trace_ids: Sequence[str] | None) -> list[str]:
    """WHERE terms for the spans (not events or links) a search looks at."""
    tid = r.ident("trace.trace_id")
    where = [f"_env = {r.param(plan.env)}", f"{r.ident('meta.annotation_type')} IS NULL", f"{tid} IS NOT NULL"]
    if plan.start is not None and plan.end is not None:
        ts = r.ident("timestamp")
        where += [f"{ts} >= {r.param(plan.start)}", f"{ts} < {r.param(plan.end)}"]
    if trace_ids is not None:
        where.append(r.in_list(r.not_null(tid), r.list_param(trace_ids)))
    return where


def _span_times(r: SpanRender) -> list[str]:
    """A span's trace (``_tid``), start and end (``_s``, ``_e``, µs)."""
    start, ifnull = r.micros(r.ident("timestamp")), r.NAMES["ifnull"]
    end = f"{start} + {r.to_int64(f'{ifnull}(duration_ms, 0) * 1000')}"
    return [f"{r.not_null(r.ident('trace.trace_id'))} AS _tid", f"{start} AS _s", f"{end} AS _e"]


class TraceSearchSQL:
    """The trace search's statements, rendered by one store's `SpanRender`."""

    def __init__(self, render: type[SpanRender], name: str) -> None:
        self.render = render
        self.name = name

    def search(self, plan: TraceSearchPlan) -> Compiled:
        r = self.render()
        where = span_rows(r, plan, plan.trace_ids)
        flags = [f"{r.flag(r.expr(c))} AS m{i}" for i, c in enumerate(plan.conditions)]
        per_trace = ["_tid", "min(_s) AS start_us", "max(_e) AS end_us"]
        per_trace += [f"{r.any_flag(f'm{i}')} AS h{i}" for i in range(len(plan.conditions))]
        judged = [render_match(plan.sql_match)]
        if plan.min_trace_ms is not None:
            judged.append(f"(end_us - start_us) / 1000.0 >= {r.number_param(plan.min_trace_ms)}")
        if plan.max_trace_ms is not None:
            judged.append(f"(end_us - start_us) / 1000.0 <= {r.number_param(plan.max_trace_ms)}")
        sql = (f"WITH s AS (SELECT {', '.join(_span_times(r) + flags)} FROM spans WHERE {' AND '.join(where)}), "
               f"t AS (SELECT {', '.join(per_trace)} FROM s GROUP BY _tid) ")
        if plan.exact_in_sql:
            order = "start_us DESC" if plan.order == "newest" else "end_us - start_us DESC"
            sql += (f"SELECT *, count(*) OVER () AS _matched FROM t WHERE {' AND '.join(judged)} "
                    f"ORDER BY {order}, _tid LIMIT {r.limit_param(plan.limit)}")
        else:
            sql += f"SELECT * FROM t WHERE {' AND '.join(judged)}"
        return Compiled(sql, r.params)

    def summaries(self, plan: TraceSearchPlan, trace_ids: Sequence[str]) -> Compiled:
        r = self.render()
        where = span_rows(r, plan, trace_ids)
        ifnull = r.NAMES["ifnull"]
        is_error = r.as_flag(f"{ifnull}({r.ident('error')}, false)")
        is_root = r.as_flag(f"{ifnull}({r.ident('trace.parent_id')}, '') = ''")
        cols = _span_times(r) + ["name AS _name", f"{r.ident('service.name')} AS _svc", f"{is_error} AS _err",
                                 f"{is_root} AS _root"]
        has_root, root = r.is_set(r.any_flag("_root")), r.is_set("_root")
        first = [f"CASE WHEN {has_root} THEN {r.agg_if(r.NAMES['arg_min'], f'{c}, _s', root)} "
                 f"ELSE {r.NAMES['arg_min']}({c}, _s) END AS {alias}" for c, alias in (("_name", "root_name"),
                                                                                      ("_svc", "root_service"))]
        per_trace = ["_tid", "min(_s) AS start_us", "max(_e) AS end_us", "count(*) AS spans",
                     f"{r.count_if(r.is_set('_err'))} AS errors", f"{r.any_flag('_root')} AS has_root", *first,
                     f"{r.distinct_list('_svc')} AS services"]
        return Compiled(f"SELECT {', '.join(per_trace)} FROM (SELECT {', '.join(cols)} FROM spans WHERE {' AND '.join(where)}) "
                        "GROUP BY _tid", r.params)

    def spans_of(self, plan: TraceSearchPlan, trace_ids: Sequence[str], conditions: Sequence[int]) -> Compiled:
        r = self.render()
        where = span_rows(r, plan, trace_ids)
        tid, sid = r.not_null(r.ident("trace.trace_id")), r.ident("trace.span_id")
        flags = [f"{r.flag(r.expr(plan.conditions[i]))} AS m{int(i)}" for i in conditions]
        cols = [f"{r.row_number(f'{tid}, {sid}')} AS _i", f"{tid} AS _tid", f"{sid} AS _sid",
                f"{r.ident('trace.parent_id')} AS _pid", *flags]
        # The parent's row number by a join here: matching (trace, span id) strings in Python took ~2 s for 500,000
        # spans on a loaded machine. The first row of a span id repeated within a trace is its parent.
        shown = ["s._i AS _i", "s._tid AS _tid", "f._p AS _p", *(f"s.m{int(i)} AS m{int(i)}" for i in conditions)]
        if not conditions:
            shown.append("NULL AS _none")
        rows = f"SELECT {', '.join(cols)} FROM spans WHERE {' AND '.join(where)}"
        return Compiled(f"WITH {r.reused('s', rows)}, "
                        "f AS (SELECT _tid, _sid, min(_i) AS _p FROM s GROUP BY _tid, _sid) "
                        f"SELECT {', '.join(shown)} FROM s LEFT JOIN f ON f._tid = s._tid AND f._sid = s._pid"
                        f"{r.JOIN_SETTINGS}", r.params)


def trace_dialect_for(name: str) -> TraceDialect:
    if name == "duckdb":
        from apiary.query.dialects.duckdb import DuckDBRender

        return TraceSearchSQL(DuckDBRender, name)
    if name == "clickhouse":
        from apiary.query.dialects.clickhouse import ClickHouseRender

        return TraceSearchSQL(ClickHouseRender, name)
    raise ValueError(f"no SQL dialect {name!r}")
