"""Trace search rendered as ClickHouse SQL, answering as the DuckDB side does."""

from __future__ import annotations

from typing import Sequence

from apiary.query.dialects import Compiled
from apiary.query.dialects.clickhouse import TS, _Render
from apiary.query.dialects.traces import render_match
from apiary.query.trace_search import TraceSearchPlan

_TS = "`timestamp`"
_TID = "`trace.trace_id`"


def _span_rows(r: _Render, plan: TraceSearchPlan, trace_ids: Sequence[str] | None) -> list[str]:
    where = [f"_env = {r.param(plan.env, 'String')}", "`meta.annotation_type` IS NULL", f"{_TID} IS NOT NULL"]
    if plan.start is not None and plan.end is not None:
        where += [f"{_TS} >= {r.param(plan.start, TS)}", f"{_TS} < {r.param(plan.end, TS)}"]
    if trace_ids is not None:
        where.append(f"has({r.param(list(trace_ids), 'Array(String)')}, assumeNotNull({_TID}))")
    return where


def _flag(r: _Render, plan: TraceSearchPlan, i: int) -> str:
    return f"coalesce(toUInt8({r.expr(plan.conditions[i])}), 0) AS m{int(i)}"


class ClickHouseTraces:
    name = "clickhouse"

    def search(self, plan: TraceSearchPlan) -> Compiled:
        r = _Render()
        where = _span_rows(r, plan, plan.trace_ids)
        cols = [f"assumeNotNull({_TID}) AS _tid", f"toUnixTimestamp64Micro({_TS}) AS _s",
                f"toUnixTimestamp64Micro({_TS}) + toInt64(ifNull(duration_ms, 0) * 1000) AS _e",
                *(_flag(r, plan, i) for i in range(len(plan.conditions)))]
        per_trace = ["_tid", "min(_s) AS start_us", "max(_e) AS end_us"]
        per_trace += [f"max(m{i}) AS h{i}" for i in range(len(plan.conditions))]
        judged = [render_match(plan.sql_match)]
        if plan.min_trace_ms is not None:
            judged.append(f"(end_us - start_us) / 1000.0 >= {r.param(plan.min_trace_ms, 'Float64')}")
        if plan.max_trace_ms is not None:
            judged.append(f"(end_us - start_us) / 1000.0 <= {r.param(plan.max_trace_ms, 'Float64')}")
        sql = (f"WITH s AS (SELECT {', '.join(cols)} FROM spans WHERE {' AND '.join(where)}), "
               f"t AS (SELECT {', '.join(per_trace)} FROM s GROUP BY _tid) ")
        if plan.exact_in_sql:
            order = "start_us DESC" if plan.order == "newest" else "end_us - start_us DESC"
            sql += (f"SELECT *, count() OVER () AS _matched FROM t WHERE {' AND '.join(judged)} "
                    f"ORDER BY {order}, _tid LIMIT {r.param(int(plan.limit), 'UInt64')}")
        else:
            sql += f"SELECT * FROM t WHERE {' AND '.join(judged)}"
        return Compiled(sql, r.params)

    def summaries(self, plan: TraceSearchPlan, trace_ids: Sequence[str]) -> Compiled:
        r = _Render()
        where = _span_rows(r, plan, trace_ids)
        cols = [f"assumeNotNull({_TID}) AS _tid", f"toUnixTimestamp64Micro({_TS}) AS _s",
                f"toUnixTimestamp64Micro({_TS}) + toInt64(ifNull(duration_ms, 0) * 1000) AS _e",
                "name AS _name", "`service.name` AS _svc", "toUInt8(ifNull(`error`, false)) AS _err",
                "toUInt8(ifNull(`trace.parent_id`, '') = '') AS _root"]
        per_trace = ["_tid", "min(_s) AS start_us", "max(_e) AS end_us", "count() AS spans",
                     "countIf(_err = 1) AS errors", "max(_root) AS has_root",
                     "if(max(_root) = 1, argMinIf(_name, _s, _root = 1), argMin(_name, _s)) AS root_name",
                     "if(max(_root) = 1, argMinIf(_svc, _s, _root = 1), argMin(_svc, _s)) AS root_service",
                     "arraySort(groupUniqArray(_svc)) AS services"]
        return Compiled(f"SELECT {', '.join(per_trace)} FROM (SELECT {', '.join(cols)} FROM spans WHERE {' AND '.join(where)}) "
                        "GROUP BY _tid", r.params)

    def spans_of(self, plan: TraceSearchPlan, trace_ids: Sequence[str], conditions: Sequence[int]) -> Compiled:
        r = _Render()
        where = _span_rows(r, plan, trace_ids)
        # ClickHouse inlines a CTE at each use, so the row numbers must come out the same both times: ordered by
        # (trace, span id), rows of one span id repeated in a trace share their numbers whichever order they get.
        cols = [f"toInt64(row_number() OVER (ORDER BY assumeNotNull({_TID}), `trace.span_id`)) - 1 AS _i",
                f"assumeNotNull({_TID}) AS _tid",
                "`trace.span_id` AS _sid", "`trace.parent_id` AS _pid", *(_flag(r, plan, i) for i in conditions)]
        # As the DuckDB side: each span's parent row number by a join, not by matching strings in Python.
        return Compiled(f"WITH s AS (SELECT {', '.join(cols)} FROM spans WHERE {' AND '.join(where)}), "
                        "f AS (SELECT _tid, _sid, min(_i) AS _p FROM s GROUP BY _tid, _sid) "
                        f"SELECT s._i AS _i, s._tid AS _tid, f._p AS _p, "
                        f"{', '.join(f's.m{int(i)} AS m{int(i)}' for i in conditions) or 'NULL AS _none'} "
                        "FROM s LEFT JOIN f ON f._tid = s._tid AND f._sid = s._pid SETTINGS join_use_nulls = 1", r.params)

