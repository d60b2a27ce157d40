"""SQL dialects: each renders the one query plan (``apiary.query.plan``) for one store.

The statements are written once (``base.py``; the trace search's in ``traces.py``, X-Ray's in ``xray.py``);
``duckdb.py`` and ``clickhouse.py`` say only what their engine spells its own way.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol, Sequence

from apiary.query.plan import BubbleUp, Facet, SpanQuery


class Compiled(NamedTuple):
    sql: str
    params: list[Any]


class Dialect(Protocol):
    """What the engine asks of a dialect. Every statement's columns are named as documented per method."""

    name: str

    def summary(self, q: SpanQuery) -> Compiled:
        """One row per group: ``g0..gN``, ``c0..cM`` (SQL aggregates, by index), ``_rows``, ``_examples``;
        HAVING, ORDER BY and LIMIT applied."""

    def series(self, q: SpanQuery, groups: Sequence[tuple[Any, ...]] | None) -> Compiled:
        """``_bucket``, ``g0..gN``, ``c0..cM``, ``_rows`` per time bucket, for the listed groups only (all when None)."""

    def totals_and_series(self, q: SpanQuery) -> Compiled:
        """For a query without breakdowns or havings, ``summary`` and ``series`` in one scan: the columns of
        both, plus ``_total`` (1 on the one row of totals, whose ``_bucket`` is NULL)."""

    def bounds(self, q: SpanQuery, aggregate: int, groups: Sequence[tuple[Any, ...]] | None) -> Compiled:
        """``lo``, ``hi`` of a heatmap's values."""

    def heatmap(self, q: SpanQuery, aggregate: int, groups: Sequence[tuple[Any, ...]] | None,
                lo: float, width: float) -> Compiled:
        """``_bucket``, ``g0..gN``, ``_cell`` (value bucket), ``n``, ``_example``."""

    def histogram_buckets(self, q: SpanQuery, aggregate: int, groups: Sequence[tuple[Any, ...]] | None) -> Compiled:
        """``_bucket``, ``g0..gN``, ``_lo``, ``_hi``, ``n``: what each histogram bucket of the aggregate's metric
        grew by in each time bucket (cumulative points turned into increases, as for INCREASE)."""

    def concurrency(self, q: SpanQuery, groups: Sequence[tuple[Any, ...]] | None) -> Compiled:
        """``_bucket``, ``g0..gN``, ``v``: most spans in progress at once in each time bucket."""

    def bubbleup_sides(self, b: BubbleUp) -> Compiled:
        """One row: ``n_sel`` (selected rows), ``n`` (all the query's rows), ``t0``, ``t1`` (their first and last
        start time)."""

    def bubbleup_profile(self, b: BubbleUp) -> Compiled:
        """A row per side of the selection: ``_sel``, ``n`` (its rows) and per column ``i`` of ``b.columns``:
        ``s{i}`` (non-null values), ``d{i}`` (distinct values, estimated), and for numbers ``lo{i}``, ``hi{i}``."""

    def bubbleup_counts(self, b: BubbleUp, facets: Sequence[Facet]) -> Compiled:
        """One scan, one grouping set per facet ``i``: ``_sel``, ``k{i}`` (a value, a histogram bucket 0..bins-1, or
        true for any value; NULL for none), ``g{i}`` (0 on the rows of facet ``i``'s set, as SQL's GROUPING), ``n``."""

    def bubbleup_keys(self, b: BubbleUp, facets: Sequence[Facet]) -> Compiled:
        """The compared rows themselves, for counting outside the database: ``_sel`` and ``k{i}`` as in
        ``bubbleup_counts``, one row per selected or sampled span."""


def dialect_for(name: str) -> Dialect:
    if name == "duckdb":
        from apiary.query.dialects.duckdb import DuckDBDialect

        return DuckDBDialect()
    if name == "clickhouse":
        from apiary.query.dialects.clickhouse import ClickHouseDialect

        return ClickHouseDialect()
    raise ValueError(f"no SQL dialect {name!r}")
