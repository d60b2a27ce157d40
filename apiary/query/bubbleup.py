"""BubbleUp: which columns set a selection of a query's rows apart from the rest of them.

A *selection* (a rectangle drawn on a heatmap -- a time range and a value range
of one column --, chart points -- a time range and breakdown values as filters
--, or any filter list) splits the rows a query reads (its datasets, time range
and WHERE) into the selection and the *baseline*: every other row of the query.
For each column the two sides get a distribution: counts of each value for
strings, booleans and numbers with few values; a histogram over the same
buckets on both sides for other numbers; present / missing for columns with
more distinct values than are worth listing, or a value of their own on most
rows (ids). Missing values are counted on every column, so an attribute that
only the selection has stands out.

The score of a column is the largest difference in share between the two sides
of any one of its values (or buckets, or the missing value): 0 when the shares
match, 1 when a value is on every row of one side and on none of the other. It
stays low for a column of many values that differ by chance: 427 selected
spans spread over 1,000 random user ids scored 0.66 as a total variation
distance, 0.008 this way (bench/query.py's 1 M spans). Columns are ranked by it,
highest first. The columns the selection is defined by differ by construction
and are left out.

Three statements answer it, whatever the number of columns: the rows on each
side (two plain counts), a profile (non-null counts, distinct estimates,
numeric ranges) and the compared rows' values, counted per column and side
here (or, past ``ARROW_COUNT_ROWS`` rows, in SQL, one grouping set per column).
Past ``BASELINE_SAMPLE`` baseline rows the last two read every selected row but
only the baseline's in ``SAMPLE_SLICES`` short slices of time spread over the
window, as many rows as ``BASELINE_SAMPLE`` in all; the answer says how many
baseline rows were compared (``baseline_compared``), and the baseline's counts
are counts of that sample.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from apiary.query.dialects import Dialect, dialect_for
from apiary.query.engine import ALL_DATASETS, catalogue_for
from apiary.query.plan import (
    BOOLEAN, FLOAT, NUMERIC, TIMESTAMP, BubbleUp, Call, Column, Expr, Facet, Literal, columns_of,
)
from apiary.query.planner import DATASET_PSEUDO_COLUMN, build_plan, planner_for
from apiary.query.spec import MAX_ITEMS, Filter, QuerySpec, SpecError, describe, parse_spec
from apiary.store.base import Store

#: Histogram buckets of a numeric column (a number with at most this many distinct values is counted by value).
HISTOGRAM_BINS = 20
#: Past this many distinct values (estimated) a column is compared by presence only: listing ids says nothing.
MAX_VALUES = 10_000
#: Past this many, a column whose values repeat on fewer than 20 rows each on average is compared by presence too.
FEW_VALUES = 1_000
#: Values listed per side; both sides list the union of each side's most frequent ones.
TOP_VALUES = 10
#: Past this many baseline rows, the baseline is compared through a sample of about this many (the selection never
#: is): a share measured on 100,000 rows is within 0.32 % of the whole's (two standard errors). Its rows are
#: counted here, so the cost follows the sample: 1.4 s against 2.0 s with 250,000 (10 M spans, load ~25).
BASELINE_SAMPLE = 100_000
#: Baseline rows the profile reads (past ``BASELINE_SAMPLE``): it only sorts the columns (values, histogram, ids)
#: and sets histogram edges, and judges ids by distinct values per row -- on this many, as ever.
PROFILE_SAMPLE = 25_000
#: Slices of time the baseline sample is read from: over a day at 10 M spans, 4.5 minutes every 3 hours. Each slice
#: is a scan of its own: with 24 the counting statement took 4.8-6.1 s against 1.9-2.5 s with 8 (10 M spans, busy
#: machine), and 5.8 against 2.7 s on ClickHouse (chdb, 1 M spans).
SAMPLE_SLICES = 8
#: Up to this many compared rows (every selected one and the baseline's sample), the rows are fetched and each
#: column's values counted here rather than by a grouping set per column in SQL: on 10 M spans (a 1 h x 500-2000 ms
#: rectangle, 254,188 rows, 19 columns counted) 1.1 s against 2.1 s for DuckDB's GROUPING SETS, on a machine with
#: load ~15. Past it (a selection of millions of spans) the rows stay in the database.
ARROW_COUNT_ROWS = 500_000


class Selection(BaseModel):
    """The selected rows, as the parts given, all of which must hold."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start_time: float | None = Field(default=None, ge=0)
    end_time: float | None = Field(default=None, ge=0)
    column: str | None = None
    min: float | None = None
    max: float | None = None
    filters: list[Filter] = Field(default_factory=list, max_length=MAX_ITEMS)

    @model_validator(mode="after")
    def _parts(self) -> "Selection":
        if self.start_time is not None and self.end_time is not None and self.end_time <= self.start_time:
            raise ValueError(f"end_time ({self.end_time:g}) must be after start_time ({self.start_time:g})")
        if self.column is None and (self.min is not None or self.max is not None):
            raise ValueError("min and max need the column they bound")
        if self.column is not None and self.min is None and self.max is None:
            raise ValueError(f"give min, max or both for column {self.column!r}")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min:g}) is greater than max ({self.max:g})")
        if self.column is None and self.start_time is None and self.end_time is None and not self.filters:
            raise ValueError("select rows by a time range, a column's value range or filters")
        return self


@dataclass
class BubbleUpOutcome:
    data: dict[str, Any]
    elapsed_ms: float
    sql: list[str]


def parse_selection(doc: Any) -> Selection:
    if not isinstance(doc, dict):
        raise SpecError('selection: give {"start_time", "end_time", "column", "min", "max"} or {"filters": [...]}')
    try:
        return Selection.model_validate(doc)
    except ValidationError as exc:
        raise SpecError("selection: " + describe(exc)) from None


def plan_bubbleup(store: Store, env: str, dataset: str, spec: QuerySpec, selection: Selection,
                  now: float | None = None) -> BubbleUp:
    """The query's rows, the selection as a predicate, the columns to compare; SpecError names what is wrong."""
    window = spec.window(now)
    datasets, catalogue = catalogue_for(store, env, dataset)
    q = build_plan(spec, catalogue, env, datasets, window)
    rows = replace(q, groups=(), aggregates=(), having=(), order=())
    p = planner_for(spec, catalogue)
    parts: list[Expr] = []
    timestamp = catalogue.column("timestamp")
    if selection.start_time is not None:
        parts.append(Call("ge", (timestamp, Literal(_naive_us(selection.start_time), TIMESTAMP)), BOOLEAN))
    if selection.end_time is not None:
        parts.append(Call("lt", (timestamp, Literal(_naive_us(selection.end_time), TIMESTAMP)), BOOLEAN))
    if selection.column is not None:
        value = p.operand(selection.column, None, "selection.column")
        if value.type not in NUMERIC:
            raise SpecError(f"selection.column: {selection.column!r} is a {value.type} column; a value range needs a numeric one")
        if selection.min is not None:
            parts.append(Call("ge", (value, Literal(float(selection.min), FLOAT)), BOOLEAN))
        if selection.max is not None:
            parts.append(Call("le", (value, Literal(float(selection.max), FLOAT)), BOOLEAN))
    for i, f in enumerate(selection.filters):
        parts.append(p.filter(f.column, f.op, f.value, f"selection.filters[{i}]"))
    predicate = parts[0] if len(parts) == 1 else Call("and", tuple(parts), BOOLEAN)
    own = {c.name for c in columns_of(predicate)}
    names = [n for n in sorted(catalogue.sources) if n not in own and n != DATASET_PSEUDO_COLUMN]
    if dataset == ALL_DATASETS:
        names.append(DATASET_PSEUDO_COLUMN)
    columns = tuple(c for c in (catalogue.column(n) for n in names) if c.type != TIMESTAMP)
    return BubbleUp(rows, predicate, columns)


def _naive_us(unix_s: float) -> datetime:
    """Naive UTC, as the plan keeps times, to the microsecond (a heatmap's cell edges need not be whole seconds)."""
    return datetime.fromtimestamp(unix_s, timezone.utc).replace(tzinfo=None)


def run_bubbleup(store: Store, env: str, dataset: str, spec: QuerySpec, selection: Selection,
                 now: float | None = None, dialect: Dialect | None = None) -> BubbleUpOutcome:
    started = time.perf_counter()
    b = plan_bubbleup(store, env, dataset, spec, selection, now)
    dialect = dialect or dialect_for(store.dialect)
    statements: list[str] = []

    def run(compiled: Any) -> pa.Table:
        statements.append(compiled.sql)
        return store.query(compiled.sql, compiled.params)

    whole = run(dialect.bubbleup_sides(b)).to_pylist()[0]
    n_sel = int(whole["n_sel"] or 0)
    n_base = int(whole["n"] or 0) - n_sel
    if not n_sel or not n_base:  # one side is empty: nothing to compare it with
        data = {"selection_count": n_sel, "baseline_count": n_base, "baseline_compared": n_base, "columns": []}
        return BubbleUpOutcome(data, (time.perf_counter() - started) * 1000, statements)
    profiled = b
    if n_base > BASELINE_SAMPLE:
        # The profile's sample is smaller (values beyond its range fall in the first or last bucket).
        # Slices over the query's first to last span, not the whole window: a week's query over a day of
        # spans would otherwise read most of its slices from empty days.
        first, last = _naive_utc(whole["t0"]), _naive_utc(whole["t1"]) + timedelta(microseconds=1)
        b = replace(b, baseline_slices=baseline_slices(first, last, BASELINE_SAMPLE / n_base))
        profiled = replace(b, baseline_slices=baseline_slices(first, last, min(PROFILE_SAMPLE, BASELINE_SAMPLE) / n_base))
    profile = _profile(run(dialect.bubbleup_profile(profiled)), b.columns)
    facets: list[tuple[int, Facet, str]] = []  # (column index, facet, kind)
    for i, c in enumerate(b.columns):
        present = sum(profile[f"s{i}"])
        if not present:
            continue  # never set in these rows: nothing to compare
        distinct, lo, hi = profile[f"d{i}"], profile.get(f"lo{i}"), profile.get(f"hi{i}")
        if c.type in NUMERIC and distinct > HISTOGRAM_BINS and hi > lo:
            facets.append((i, Facet(c, float(lo), (float(hi) - float(lo)) / HISTOGRAM_BINS, HISTOGRAM_BINS), "histogram"))
        elif distinct > MAX_VALUES or (c.type not in NUMERIC and _id_like(distinct, present)):
            # ids: a value of their own on most rows, which says nothing about either side
            facets.append((i, Facet(c, presence=True), "presence"))
        else:
            facets.append((i, Facet(c), "values"))
    out: list[dict[str, Any]] = []
    n_compared = profile["n"][1]
    if facets:
        chosen = [f for _, f, _ in facets]
        if n_sel + min(n_base, BASELINE_SAMPLE) <= ARROW_COUNT_ROWS:
            keys = run(dialect.bubbleup_keys(b, chosen))
            n_compared = keys.num_rows - n_sel
            sides = _arrow_counts(keys, len(facets))
        else:
            counts = run(dialect.bubbleup_counts(b, chosen))
            n_compared = _compared(counts)
            sides = [_counts(counts, k) for k in range(len(facets))]
        for (i, facet, kind), (sel, base) in zip(facets, sides):
            out.append(_compare(b.columns[i], kind, facet, sel, base, profile[f"d{i}"], n_sel, n_compared))
    out.sort(key=lambda c: (-c["score"], c["column"]))
    data = {"selection_count": n_sel, "baseline_count": n_base, "baseline_compared": n_compared, "columns": out}
    return BubbleUpOutcome(data, (time.perf_counter() - started) * 1000, statements)


def _id_like(distinct: int, present: int) -> bool:
    """Most rows have a value of their own (span ids), or one in a few (parent ids): too many values to count.

    Judged on the profile's rows, which may be fewer than those counted: 3,000 parent ids in a profile of 25,000
    spans are 12,000 in the 100,000 counted, where 1,000 user ids stay 1,000.
    """
    return (distinct > HISTOGRAM_BINS and 2 * distinct > present) or (distinct > FEW_VALUES and 20 * distinct > present)


def baseline_slices(start: datetime, end: datetime, fraction: float) -> tuple[tuple[datetime, datetime], ...]:
    """``SAMPLE_SLICES`` slices of time spread evenly over the window, ``fraction`` of it in all.

    A sample by time range is read from the row groups of those times only (the store keeps spans in time order):
    a row-by-row sample reads every row group, and the scan was most of the cost -- 5.0 of 7.3 s for the profile
    of 10 M spans on a busy machine, for a hash-of-the-start-time sample of 10 %.
    """
    step = (end - start) / SAMPLE_SLICES
    width = max(step * fraction, timedelta(microseconds=1))
    return tuple((start + step * j, start + step * j + width) for j in range(SAMPLE_SLICES))


def _profile(table: pa.Table, columns: tuple[Column, ...]) -> dict[str, Any]:
    """The profile's two rows (selection, baseline) as one: counts as (selection, baseline) pairs, distinct values
    as the larger side's estimate (a lower bound of the whole), ranges over both sides."""
    rows = {bool(r["_sel"]): r for r in table.to_pylist()}
    sides = [rows.get(True, {}), rows.get(False, {})]
    out: dict[str, Any] = {"n": tuple(int(r.get("n") or 0) for r in sides)}
    for i, c in enumerate(columns):
        out[f"s{i}"] = tuple(int(r.get(f"s{i}") or 0) for r in sides)
        out[f"d{i}"] = max(int(r.get(f"d{i}") or 0) for r in sides)
        if c.type in NUMERIC:
            los = [r[f"lo{i}"] for r in sides if r.get(f"lo{i}") is not None]
            his = [r[f"hi{i}"] for r in sides if r.get(f"hi{i}") is not None]
            out[f"lo{i}"], out[f"hi{i}"] = (min(los), max(his)) if los else (None, None)
    return out


def _naive_utc(value: Any) -> Any:
    """A store's timestamp as the plan's naive UTC (DuckDB hands back naive UTC, ClickHouse an aware one)."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(timezone.utc).replace(tzinfo=None)
    return value


def _compared(table: pa.Table) -> int:
    """Baseline rows counted: the rows of the first facet's grouping set on the baseline side."""
    mine = table.filter(pc.and_(pc.equal(table.column("g0"), 0), pc.invert(table.column("_sel").cast(pa.bool_()))))
    return int(pc.sum(mine.column("n")).as_py() or 0)


def _arrow_counts(keys: pa.Table, facets: int) -> list[tuple[dict[Any, int], dict[Any, int]]]:
    """Each facet's keys (None: missing) -> rows, in the selection and in the baseline, counted from the rows.

    Each column is counted whole and over the selected rows alone, the baseline being the difference: the selection
    is the small side (4,432 of 104,327 rows at 10 M spans), and a plain value count of a column costs less than a
    grouping by side and value (an Acero plan per column). The columns are counted on as many threads as the
    statements run on (Arrow lets go of the GIL while it counts): on one thread the counting ran at a fraction of
    the database's speed on a busy machine, a thread's share of the cores against the database's two.
    """
    selected = keys.filter(keys.column("_sel").cast(pa.bool_()))  # ClickHouse hands back a UInt8

    def sides(k: int) -> tuple[dict[Any, int], dict[Any, int]]:
        whole, sel = _value_counts(keys.column(f"k{k}")), _value_counts(selected.column(f"k{k}"))
        return sel, {key: n - sel.get(key, 0) for key, n in whole.items() if n > sel.get(key, 0)}

    with ThreadPoolExecutor(max(1, min(facets, os.cpu_count() or 1))) as pool:
        return list(pool.map(sides, range(facets)))


def _value_counts(values: pa.ChunkedArray) -> dict[Any, int]:
    """Value (None: missing) -> rows holding it."""
    counted = pc.value_counts(values)
    out = dict(zip(counted.field("values").to_pylist(), counted.field("counts").to_pylist()))
    out.pop(None, None)  # counted from the null count: whether the kernel lists nulls has changed across versions
    if values.null_count:
        out[None] = values.null_count
    return out


def _counts(table: pa.Table, k: int) -> tuple[dict[Any, int], dict[Any, int]]:
    """Facet ``k``'s keys (None: missing) -> rows, in the selection and in the baseline."""
    mine = table.filter(pc.equal(table.column(f"g{k}"), 0))
    sel: dict[Any, int] = {}
    base: dict[Any, int] = {}
    for side, key, n in zip(mine.column("_sel").to_pylist(), mine.column(f"k{k}").to_pylist(), mine.column("n").to_pylist()):
        (sel if side else base)[key] = int(n)
    return sel, base


def _compare(column: Column, kind: str, facet: Facet, sel: dict[Any, int], base: dict[Any, int], distinct: int,
             n_sel: int, n_base: int) -> dict[str, Any]:
    score = max(abs(sel.get(v, 0) / n_sel - base.get(v, 0) / n_base) for v in set(sel) | set(base))
    missing_sel, missing_base = sel.pop(None, 0), base.pop(None, 0)

    def share(n: int, total: int) -> float:
        return n / total if total else 0.0

    if kind == "histogram":
        edges = [(facet.lo + j * facet.width, facet.lo + (j + 1) * facet.width) for j in range(facet.bins)]
        edges[-1] = (edges[-1][0], facet.lo + facet.width * facet.bins)
        shown: list[Any] = list(range(facet.bins))
    elif kind == "values":
        top = sorted(sel, key=lambda v: (-sel[v], str(v)))[:TOP_VALUES] + sorted(base, key=lambda v: (-base[v], str(v)))[:TOP_VALUES]
        shown = sorted(set(top), key=lambda v: (-sel.get(v, 0), -base.get(v, 0), str(v)))
    else:
        shown = [True]

    def side(counts: dict[Any, int], missing: int, total: int) -> list[dict[str, Any]]:
        entries = []
        for v in shown:
            n = counts.get(v, 0)
            if kind == "histogram":
                entries.append({"lower": edges[v][0], "upper": edges[v][1], "count": n, "share": share(n, total)})
            elif kind == "values":
                entries.append({"value": v, "count": n, "share": share(n, total)})
            else:
                entries.append({"present": True, "count": n, "share": share(n, total)})
        if missing_sel or missing_base:
            entries.append({"value": None, "count": missing, "share": share(missing, total)})
        return entries

    doc: dict[str, Any] = {"column": column.name, "type": column.type, "kind": kind, "score": round(score, 6),
                           "distinct": distinct,
                           "selection": side(sel, missing_sel, n_sel), "baseline": side(base, missing_base, n_base)}
    if kind == "values":
        doc["other_values"] = {"selection": sum(sel.values()) - sum(sel.get(v, 0) for v in shown),
                               "baseline": sum(base.values()) - sum(base.get(v, 0) for v in shown)}
    return doc


def parse_request(doc: Any) -> tuple[str, QuerySpec, Selection]:
    """``{"dataset", "query", "selection"}`` -> its parts; SpecError names the field to fix."""
    if not isinstance(doc, dict):
        raise SpecError('give {"dataset": ..., "query": {...}, "selection": {...}}')
    unknown = set(doc) - {"dataset", "query", "selection"}
    if unknown:
        raise SpecError(f"{sorted(unknown)[0]}: unknown field")
    dataset = doc.get("dataset", ALL_DATASETS)
    if not isinstance(dataset, str) or not dataset:
        raise SpecError("dataset: give the dataset (or __all__)")
    try:
        spec = parse_spec(doc.get("query", {}))
    except SpecError as exc:
        raise SpecError(f"query: {exc}") from None
    return dataset, spec, parse_selection(doc.get("selection"))
