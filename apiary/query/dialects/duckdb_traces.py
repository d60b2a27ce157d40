"""Trace search rendered as DuckDB SQL: spans flagged per condition, grouped by trace, judged per trace."""

from __future__ import annotations

from typing import Sequence

from apiary.query.dialects import Compiled
from apiary.query.dialects.duckdb import _Render
from apiary.query.dialects.traces import render_match
from apiary.query.trace_search import TraceSearchPlan

_TS = '"timestamp"'
_TID = '"trace.trace_id"'


def _span_rows(r: _Render, plan: TraceSearchPlan, trace_ids: Sequence[str] | None) -> list[str]:
    """WHERE terms for the spans (not events or links) a search looks at."""
    where = [f"_env = {r.param(plan.env)}", '"meta.annotation_type" IS NULL', f"{_TID} IS NOT NULL"]
    if plan.start is not None and plan.end is not None:
        where += [f"{_TS} >= {r.param(plan.start)}", f"{_TS} < {r.param(plan.end)}"]
    if trace_ids is not None:
        where.append(f"{_TID} IN (SELECT unnest(CAST({r.param(list(trace_ids))} AS VARCHAR[])))")
    return where


class DuckDBTraces:
    name = "duckdb"

    def search(self, plan: TraceSearchPlan) -> Compiled:
        r = _Render()
        where = _span_rows(r, plan, plan.trace_ids)
        flags = [f"coalesce({r.expr(c)}, false) AS m{i}" for i, c in enumerate(plan.conditions)]
        cols = [f"{_TID} AS _tid", f"epoch_us({_TS}) AS _s",
                f"epoch_us({_TS}) + CAST(coalesce(duration_ms, 0) * 1000 AS BIGINT) AS _e", *flags]
        per_trace = ["_tid", "min(_s) AS start_us", "max(_e) AS end_us"]
        per_trace += [f"bool_or(m{i}) AS h{i}" for i in range(len(plan.conditions))]
        judged = [render_match(plan.sql_match)]
        if plan.min_trace_ms is not None:
            judged.append(f"(end_us - start_us) / 1000.0 >= {r.param(plan.min_trace_ms)}")
        if plan.max_trace_ms is not None:
            judged.append(f"(end_us - start_us) / 1000.0 <= {r.param(plan.max_trace_ms)}")
        sql = (f"WITH s AS (SELECT {', '.join(cols)} FROM spans WHERE {' AND '.join(where)}), "
               f"t AS (SELECT {', '.join(per_trace)} FROM s GROUP BY _tid) ")
        if plan.exact_in_sql:
            order = "start_us DESC" if plan.order == "newest" else "end_us - start_us DESC"
            sql += (f"SELECT *, count(*) OVER () AS _matched FROM t WHERE {' AND '.join(judged)} "
                    f"ORDER BY {order}, _tid LIMIT {r.param(plan.limit)}")
        else:
            sql += f"SELECT * FROM t WHERE {' AND '.join(judged)}"
        return Compiled(sql, r.params)

    def summaries(self, plan: TraceSearchPlan, trace_ids: Sequence[str]) -> Compiled:
        r = _Render()
        where = _span_rows(r, plan, trace_ids)
        cols = [f"{_TID} AS _tid", f"epoch_us({_TS}) AS _s",
                f"epoch_us({_TS}) + CAST(coalesce(duration_ms, 0) * 1000 AS BIGINT) AS _e",
                "name AS _name", '"service.name" AS _svc', "coalesce(error, false) AS _err",
                "coalesce(\"trace.parent_id\", '') = '' AS _root"]
        per_trace = ["_tid", "min(_s) AS start_us", "max(_e) AS end_us", "count(*) AS spans",
                     "count(*) FILTER (WHERE _err) AS errors", "bool_or(_root) AS has_root",
                     "CASE WHEN bool_or(_root) THEN arg_min(_name, _s) FILTER (WHERE _root) ELSE arg_min(_name, _s) END AS root_name",
                     "CASE WHEN bool_or(_root) THEN arg_min(_svc, _s) FILTER (WHERE _root) ELSE arg_min(_svc, _s) END AS root_service",
                     "list_sort(list_distinct(list(_svc))) AS services"]
        return Compiled(f"SELECT {', '.join(per_trace)} FROM (SELECT {', '.join(cols)} FROM spans WHERE {' AND '.join(where)}) "
                        "GROUP BY _tid", r.params)

    def spans_of(self, plan: TraceSearchPlan, trace_ids: Sequence[str], conditions: Sequence[int]) -> Compiled:
        r = _Render()
        where = _span_rows(r, plan, trace_ids)
        flags = [f"coalesce({r.expr(plan.conditions[i])}, false) AS m{int(i)}" for i in conditions]
        cols = ["row_number() OVER () - 1 AS _i", f"{_TID} AS _tid", '"trace.span_id" AS _sid',
                '"trace.parent_id" AS _pid', *flags]
        # The parent's row number by a join here: matching (trace, span id) strings in Python took ~2 s for 500,000
        # spans on a loaded machine. The first row of a span id repeated within a trace is its parent.
        return Compiled(f"WITH s AS MATERIALIZED (SELECT {', '.join(cols)} FROM spans WHERE {' AND '.join(where)}), "
                        "f AS (SELECT _tid, _sid, min(_i) AS _p FROM s GROUP BY _tid, _sid) "
                        f"SELECT s._i, s._tid, f._p, {', '.join(f'm{int(i)}' for i in conditions) or 'NULL AS _none'} "
                        "FROM s LEFT JOIN f ON f._tid = s._tid AND f._sid = s._pid", r.params)

