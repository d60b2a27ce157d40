"""What a trace search asks of a SQL dialect, and which one a store gets.

Kept apart from ``Dialect`` (spans grouped by columns) because a trace search
groups by trace and judges each trace by flags over its spans. Each trace's
start, end and shown columns (root, services, counts) come from the trace
summary kept at ingest (``apiary.store.trace_summary``), not from grouping
the spans; span conditions still read the spans. The search statement
computes only the flags and the times; the rows shown are worked out
afterwards for the traces returned alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, Sequence

from apiary.query.dialects import Compiled
from apiary.query.dialects.base import SpanRender
from apiary.query.plan import TraceRows
from apiary.query.trace_search import Const, Has, Logic, Match, TraceSearchPlan, evaluate


#: How many parents up SQL follows each chain for ``a under b`` on DuckDB, where the spans of the candidate
#: traces are kept for the statement (a WITH item it reads once per level); the chains left open are walked in
#: arrays from `TraceDialect.candidate_spans`, for their traces alone. ClickHouse reads a WITH item again at each
#: use, so it walks every chain in arrays.
UNDER_LEVELS = 4


@dataclass(frozen=True)
class Cuts:
    """The traces an edge of the search window cuts (some summary row of theirs straddles it): judged from their
    spans, read only in ``ranges`` (disjoint, inside the window), which hold every span of theirs that starts there."""

    trace_ids: tuple[str, ...] = ()
    ranges: tuple[tuple[datetime, datetime], ...] = ()


class TraceDialect(Protocol):
    def cuts(self, plan: TraceSearchPlan) -> Compiled:
        """The traces a window edge cuts: ``_tid``, ``lo``, ``hi`` (the first and last start of their summary
        rows that overlap the window)."""

    def search(self, plan: TraceSearchPlan, cuts: Cuts) -> Compiled:
        """One row per trace: ``_tid``, ``start_us``, ``end_us``, ``h0..hN`` (some span matched condition i). When
        the plan's match is exact in SQL, only the matching traces, ordered and limited, each with ``_matched``
        (all that matched); otherwise every trace the relaxed match keeps."""

    def summaries(self, plan: TraceSearchPlan, trace_ids: Sequence[str], cuts: Cuts) -> Compiled:
        """For the traces listed: ``_tid``, ``start_us``, ``end_us``, ``spans``, ``errors``, ``has_root``,
        ``root_name``, ``root_service`` (the root's, else the earliest span's), ``services``."""

    def candidate_spans(self, plan: TraceSearchPlan) -> Compiled:
        """For a plan with span conditions, every span of the traces `search` would keep (the relaxed match): ``_i``
        (its row number, 0..n-1), ``_tid``, ``_p`` (its parent's row number, NULL without one), ``_s``, ``_e``
        (start and end, µs) and ``m<i>`` (the span matches condition i), for every condition."""

    def under_levels(self, plan: TraceSearchPlan, pairs: Sequence[tuple[int, int]]) -> Compiled | None:
        """For a plan with span conditions, one row per trace `search` would keep (the relaxed match): ``_tid``,
        ``start_us``, ``end_us``, ``h<i>`` and, for the k-th ``(inner, outer)`` of ``pairs``, ``u<k>`` (a span
        matching inner has an ancestor matching outer, found within `UNDER_LEVELS` parents) and ``o<k>`` (some
        such span's chain was left open: deeper, or through a span id repeated in the trace); None where the
        store walks every chain from `candidate_spans` instead."""


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
    # Rounded to the microsecond, as the trace summary rounds it (a cast would round in DuckDB, truncate in ClickHouse).
    end = f"{start} + {r.to_int64(f'round({ifnull}(duration_ms, 0) * 1000)')}"
    return [f"{r.not_null(r.ident('trace.trace_id'))} AS _tid", f"{start} AS _s", f"{end} AS _e"]


class TraceSearchSQL:
    """The trace search's statements, rendered by one store's `SpanRender`.

    Without span conditions, each trace's start and end come from the trace summary
    (``apiary.store.trace_summary``) instead of grouping the spans by trace; so do the shown columns of the
    traces returned. A summary row stands for a trace's spans in a window when it does not straddle an edge;
    the few traces an edge cuts (`Cuts`) are grouped from their spans, read in narrow time ranges.

    Span conditions group every span of the window by trace, as before the summary: grouping only the spans
    that match a condition and joining the summary's times took 1.15-1.42 x as long on 10 M spans (DuckDB,
    the same rounds; ``bench/investigate.py``'s cross-span and absence searches), the grouping of the 543,069
    traces that matched one costing about what grouping all 1.25 M traces' spans did.
    """

    def __init__(self, render: type[SpanRender], name: str, under_levels: int = 0) -> None:
        self.render = render
        self.name = name
        self.under_levels_walked = under_levels

    def cuts(self, plan: TraceSearchPlan) -> Compiled:
        r = self.render()
        assert plan.start is not None and plan.end is not None
        env, lo, hi = r.param(plan.env), r.param(plan.start), r.param(plan.end)
        edge = f"(ts_min < {lo} AND ts_max >= {lo}) OR (ts_min < {hi} AND ts_max >= {hi})"
        if r.SUMMARY_MERGED:  # a trace's one row straddles the edge: no grouping (it took ~0.6 s over 1.25 M traces)
            return Compiled(f"SELECT trace_id AS _tid, {r.micros('ts_min')} AS lo, {r.micros('ts_max')} AS hi "
                            f"FROM trace_summary WHERE _env = {env} AND ({edge})", r.params)
        return Compiled(f"SELECT trace_id AS _tid, {r.micros('min(ts_min)')} AS lo, {r.micros('max(ts_max)')} AS hi "
                        f"FROM trace_summary WHERE _env = {env} AND ts_min < {hi} AND ts_max >= {lo} AND trace_id IN "
                        f"(SELECT trace_id FROM trace_summary WHERE _env = {env} AND ({edge})) GROUP BY trace_id", r.params)

    def search(self, plan: TraceSearchPlan, cuts: Cuts) -> Compiled:
        r = self.render()
        judged = _judged(r, plan)
        n = len(plan.conditions)
        if n:
            sql = f"WITH {_flagged_traces(r, plan)} "
        else:  # every trace: read twice below (count, and top rows) rather than kept
            sql = f"WITH {r.inlined('t', self._traces(r, plan, plan.trace_ids, cuts, shown=False))} "
        if plan.exact_in_sql:
            order = "start_us DESC" if plan.order == "newest" else "end_us - start_us DESC"
            kept = " AND ".join(judged)
            # A window count keeps every row it counts (630 of 700 ms for 1.25 M traces from the summary on DuckDB);
            # a subquery reads them again instead, which only the summary's rows are cheap enough for (ClickHouse
            # runs a CTE once per read, and its window is cheap).
            by_window = n or r.COUNT_BY_WINDOW
            matched = "count(*) OVER ()" if by_window else f"(SELECT count(*) FROM t WHERE {kept})"
            sql += (f"SELECT *, {matched} AS _matched FROM t WHERE {kept} "
                    f"ORDER BY {order}, _tid LIMIT {r.limit_param(plan.limit)}")
        else:
            sql += f"SELECT * FROM t WHERE {' AND '.join(judged)}"
        return Compiled(sql, r.params)

    def summaries(self, plan: TraceSearchPlan, trace_ids: Sequence[str], cuts: Cuts) -> Compiled:
        r = self.render()
        return Compiled(self._traces(r, plan, trace_ids, cuts), r.params)

    def _traces(self, r: SpanRender, plan: TraceSearchPlan, trace_ids: Sequence[str] | None, cuts: Cuts,
                shown: bool = True) -> str:
        """One row per trace of the window (or of ``trace_ids``): ``_tid``, ``start_us``, ``end_us`` and, ``shown``,
        the other columns `summaries` lists; from the summary, and from the spans for the traces an edge cuts."""
        where = [f"_env = {r.param(plan.env)}"]
        if trace_ids is not None:
            where.append(r.in_list("trace_id", r.list_param(trace_ids)))
        edge = None
        if plan.start is not None and plan.end is not None:
            lo, hi = r.param(plan.start), r.param(plan.end)
            where += [f"ts_min < {hi}", f"ts_max >= {lo}"]
            edge = f"ts_min < {lo} OR ts_max >= {hi}"
        root, arg_min = "root_us IS NOT NULL", r.NAMES["arg_min"]
        pairs = (("root_name", "first_name"), ("root_service", "first_service"))
        if r.SUMMARY_MERGED:  # one row per trace already
            if edge is not None:
                where.append(f"NOT ({edge})")
            cols = ["trace_id AS _tid", f"{r.micros('ts_min')} AS start_us", "end_us"]
            if shown:
                cols += ["spans", "errors", f"{r.as_flag(root)} AS has_root",
                         *(f"CASE WHEN {root} THEN {c} ELSE {f} END AS {c}" for c, f in pairs),
                         f"{r.distinct_union_row('services')} AS services"]
            sql = f"SELECT {', '.join(cols)} FROM trace_summary WHERE {' AND '.join(where)}"
        else:  # partial rows, merged here
            has_root = r.is_set(r.any_flag(r.as_flag(root)))
            cols = ["trace_id AS _tid", f"{r.micros('min(ts_min)')} AS start_us", "max(end_us) AS end_us"]
            if shown:
                cols += [f"{r.to_int64('sum(spans)')} AS spans", f"{r.to_int64('sum(errors)')} AS errors",
                         f"{r.any_flag(r.as_flag(root))} AS has_root",
                         *(f"CASE WHEN {has_root} THEN {r.agg_if(arg_min, f'{c}, root_us', root)} "
                           f"ELSE {arg_min}({f}, ts_min) END AS {c}" for c, f in pairs),
                         f"{r.distinct_union('services')} AS services"]
            cut_here = "" if edge is None else f" HAVING NOT ({r.is_set(r.any_flag(r.as_flag(edge)))})"
            sql = f"SELECT {', '.join(cols)} FROM trace_summary WHERE {' AND '.join(where)} GROUP BY trace_id{cut_here}"
        wanted = None if trace_ids is None else set(trace_ids)
        ids = [t for t in cuts.trace_ids if wanted is None or t in wanted]
        if plan.start is not None and ids and cuts.ranges:
            sql += " UNION ALL " + self._from_spans(r, plan, ids, cuts.ranges, shown)
        return sql

    def _from_spans(self, r: SpanRender, plan: TraceSearchPlan, trace_ids: Sequence[str],
                    ranges: Sequence[tuple[datetime, datetime]], shown: bool) -> str:
        """`_traces`'s columns for ``trace_ids`` from their spans in the window, read in ``ranges`` only."""
        ifnull = r.NAMES["ifnull"]
        is_error = r.as_flag(f"{ifnull}({r.ident('error')}, false)")
        is_root = r.as_flag(f"{ifnull}({r.ident('trace.parent_id')}, '') = ''")
        cols = _span_times(r) + ["name AS _name", f"{r.ident('service.name')} AS _svc", f"{is_error} AS _err",
                                 f"{is_root} AS _root"]
        where = span_rows(r, plan, trace_ids)
        ts = r.ident("timestamp")
        pieces = [f"SELECT {', '.join(cols)} FROM spans WHERE {' AND '.join(where)} AND {ts} >= {r.param(lo)} "
                  f"AND {ts} <= {r.param(hi)}" for lo, hi in ranges]
        has_root, root = r.is_set(r.any_flag("_root")), r.is_set("_root")
        first = [f"CASE WHEN {has_root} THEN {r.agg_if(r.NAMES['arg_min'], f'{c}, _s', root)} "
                 f"ELSE {r.NAMES['arg_min']}({c}, _s) END AS {alias}" for c, alias in (("_name", "root_name"),
                                                                                      ("_svc", "root_service"))]
        per_trace = ["_tid", "min(_s) AS start_us", "max(_e) AS end_us"]
        if shown:
            per_trace += [f"{r.to_int64('count(*)')} AS spans", f"{r.to_int64(r.count_if(r.is_set('_err')))} AS errors",
                          f"{r.any_flag('_root')} AS has_root", *first, f"{r.distinct_list('_svc')} AS services"]
        return f"SELECT {', '.join(per_trace)} FROM ({' UNION ALL '.join(pieces)}) GROUP BY _tid"

    def candidate_spans(self, plan: TraceSearchPlan) -> Compiled:
        r = self.render()
        # The candidates stay inside the statement (the search's per-trace flags, read once): listing them as a
        # parameter took ~130 ms of binding for 62,714 traces, and grouping them in a separate statement read the
        # window's spans once more than this does (bench/investigate.py's descendant search, 10 M spans).
        traces = _flagged_traces(r, plan)
        tid, sid = r.not_null(r.ident("trace.trace_id")), r.ident("trace.span_id")
        n = len(plan.conditions)
        flags = [f"{r.flag(r.expr(c))} AS m{i}" for i, c in enumerate(plan.conditions)]
        cols = [f"{r.row_number(f'{tid}, {sid}')} AS _i", *_span_times(r), f"{sid} AS _sid",
                f"{r.ident('trace.parent_id')} AS _pid", *flags]
        where = span_rows(r, plan, plan.trace_ids) + [f"{tid} IN (SELECT _tid FROM t WHERE {' AND '.join(_judged(r, plan))})"]
        rows = f"SELECT {', '.join(cols)} FROM spans WHERE {' AND '.join(where)}"
        # The parent's row number by a join here: matching (trace, span id) strings in Python took ~2 s for 500,000
        # spans on a loaded machine. The first row of a span id repeated within a trace is its parent.
        shown = ["c._i AS _i", "c._tid AS _tid", "f._p AS _p", "c._s AS _s", "c._e AS _e",
                 *(f"c.m{i} AS m{i}" for i in range(n))]
        return Compiled(f"WITH {traces}, {r.reused('c', rows)}, "
                        "f AS (SELECT _tid, _sid, min(_i) AS _p FROM c GROUP BY _tid, _sid) "
                        f"SELECT {', '.join(shown)} FROM c LEFT JOIN f ON f._tid = c._tid AND f._sid = c._pid"
                        f"{r.JOIN_SETTINGS}", r.params)

    def under_levels(self, plan: TraceSearchPlan, pairs: Sequence[tuple[int, int]]) -> Compiled | None:
        if not self.under_levels_walked:
            return None
        r = self.render()
        tid, sid = r.not_null(r.ident("trace.trace_id")), r.ident("trace.span_id")
        n = len(plan.conditions)
        flags = [f"{r.flag(r.expr(c))} AS m{i}" for i, c in enumerate(plan.conditions)]
        where = span_rows(r, plan, plan.trace_ids)
        kept = " AND ".join(_judged(r, plan))
        span_cols = [f"{sid} AS _sid", f"{r.ident('trace.parent_id')} AS _pid", *flags]
        if evaluate(plan.sql_match, [False] * n, {}):  # a trace with no span matching a condition can be kept
            items = [_flagged_traces(r, plan), f"k AS (SELECT * FROM t WHERE {kept})"]
            span_cols.insert(0, f"{tid} AS _tid")
            candidates = "k"
        else:
            # Only the traces with a span matching some condition can be kept: their flags come from grouping
            # those spans alone (688,684 of 10 M spans for "an error under route3"), their times from their spans
            # read below, instead of grouping every span of the window by trace.
            per_trace = ", ".join(["_tid", *(f"{r.any_flag(f'm{i}')} AS h{i}" for i in range(n))])
            some = " OR ".join(r.is_set(f"m{i}") for i in range(n))
            items = [_window_spans(r, plan),
                     f"f AS (SELECT * FROM (SELECT {per_trace} FROM s WHERE {some} GROUP BY _tid) "
                     f"WHERE {render_match(plan.sql_match)})"]
            span_cols[:0] = _span_times(r)
            candidates = "f"
        items.append(r.reused("c", f"SELECT {', '.join(span_cols)} FROM spans WHERE {' AND '.join(where)} "
                                   f"AND {tid} IN (SELECT _tid FROM {candidates})"))
        if candidates == "f":
            items.append("k AS (SELECT f.*, x.start_us, x.end_us FROM f JOIN (SELECT _tid, min(_s) AS start_us, "
                         f"max(_e) AS end_us FROM c GROUP BY _tid) x ON x._tid = f._tid WHERE {kept})")
        any_value, ifnull, no = r.NAMES["any"], r.NAMES["ifnull"], r.as_flag("false")
        cols, joins = ["k.*"], []
        for pair, (inner, outer) in enumerate(pairs):
            # A step of a chain is (its trace, the span stepped from, that span's parent id); steps that are the same
            # are taken once. The parent is the one span of that id: none ends the chain, and so does the span
            # itself; more than one leaves the chain open (the walk in arrays decides which copy is the parent).
            w = f"w{pair}_"
            items.append(f"{w}0 AS (SELECT DISTINCT _tid, _sid AS _from, _pid AS _up FROM c "
                         f"WHERE {r.is_set(f'm{inner}')} AND _pid IS NOT NULL)")
            steps = []
            for level in range(1, self.under_levels_walked + 1):
                step = f"l{pair}_{level}"
                items.append(f"{step} AS (SELECT w._tid, w._from, w._up, count(*) AS _n, "
                             f"{r.any_flag(f'p.m{outer}')} AS _hit, {any_value}(p._pid) AS _next FROM {w}{level - 1} w "
                             f"JOIN c p ON p._tid = w._tid AND p._sid = w._up GROUP BY w._tid, w._from, w._up)")
                items.append(f"{w}{level} AS (SELECT _tid, _up AS _from, _next AS _up FROM {step} WHERE _n = 1 "
                             f"AND _up <> _from AND NOT ({r.is_set('_hit')}) AND _next IS NOT NULL)")
                found = r.as_flag(f"_n = 1 AND _up <> _from AND {r.is_set('_hit')}")
                steps.append(f"SELECT _tid, {found} AS _found, {r.as_flag('_n > 1')} AS _open FROM {step}")
            steps.append(f"SELECT _tid, {no} AS _found, {r.as_flag('true')} AS _open FROM {w}{self.under_levels_walked}")
            items.append(f"u{pair} AS (SELECT _tid, {r.any_flag('_found')} AS _found, {r.any_flag('_open')} AS _open "
                         f"FROM ({' UNION ALL '.join(steps)}) GROUP BY _tid)")
            cols += [f"{ifnull}(u{pair}._found, {no}) AS u{pair}", f"{ifnull}(u{pair}._open, {no}) AS o{pair}"]
            joins.append(f"LEFT JOIN u{pair} ON u{pair}._tid = k._tid")
        return Compiled(f"WITH {', '.join(items)} SELECT {', '.join(cols)} FROM k {' '.join(joins)}", r.params)


def _judged(r: SpanRender, plan: TraceSearchPlan) -> list[str]:
    """What a trace must satisfy in SQL: the relaxed match over ``h<i>``, and the trace's duration bounds."""
    judged = [render_match(plan.sql_match)]
    if plan.min_trace_ms is not None:
        judged.append(f"(end_us - start_us) / 1000.0 >= {r.number_param(plan.min_trace_ms)}")
    if plan.max_trace_ms is not None:
        judged.append(f"(end_us - start_us) / 1000.0 <= {r.number_param(plan.max_trace_ms)}")
    return judged


def _window_spans(r: SpanRender, plan: TraceSearchPlan) -> str:
    """The WITH item ``s``: the window's spans (``_tid``, ``_s``, ``_e``, ``m<i>``), for plans with span conditions."""
    where = span_rows(r, plan, plan.trace_ids)
    flags = [f"{r.flag(r.expr(c))} AS m{i}" for i, c in enumerate(plan.conditions)]
    return f"s AS (SELECT {', '.join(_span_times(r) + flags)} FROM spans WHERE {' AND '.join(where)})"


def _flagged_traces(r: SpanRender, plan: TraceSearchPlan) -> str:
    """WITH items ``s`` (`_window_spans`) and ``t`` (per trace: ``_tid``, ``start_us``, ``end_us``, ``h<i>``), for
    plans with span conditions."""
    per_trace = ["_tid", "min(_s) AS start_us", "max(_e) AS end_us"]
    per_trace += [f"{r.any_flag(f'm{i}')} AS h{i}" for i in range(len(plan.conditions))]
    return f"{_window_spans(r, plan)}, t AS (SELECT {', '.join(per_trace)} FROM s GROUP BY _tid)"


def trace_dialect_for(name: str) -> TraceDialect:
    if name == "duckdb":
        from apiary.query.dialects.duckdb import DuckDBRender

        return TraceSearchSQL(DuckDBRender, name, UNDER_LEVELS)
    if name == "clickhouse":
        from apiary.query.dialects.clickhouse import ClickHouseRender

        return TraceSearchSQL(ClickHouseRender, name)
    raise ValueError(f"no SQL dialect {name!r}")
