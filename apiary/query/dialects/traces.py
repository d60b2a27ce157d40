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


def trace_dialect_for(name: str) -> TraceDialect:
    if name == "duckdb":
        from apiary.query.dialects.duckdb_traces import DuckDBTraces

        return DuckDBTraces()
    if name == "clickhouse":
        from apiary.query.dialects.clickhouse_traces import ClickHouseTraces

        return ClickHouseTraces()
    raise ValueError(f"no SQL dialect {name!r}")
