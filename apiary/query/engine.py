"""Run a query spec against a store and shape the answer as Honeycomb's Query Result.

The engine plans, asks the dialect for SQL and hands that SQL to
``store.query`` -- it never opens a connection itself. Result shape
(Honeycomb's, plus what a UI needs to jump to traces)::

    {"series":  [{"time": ISO, "data": {<breakdowns>, <calculations>}}],   # every bucket x result group
     "results": [{"data": {<breakdowns>, <calculations>}, "examples": [trace ids]}],
     "heatmaps": {"HEATMAP(col)": {"buckets": [{"lower", "upper"}], "cells": [{"time", "bucket", "count", "trace_id", <breakdowns>}]}},
     "granularity": s, "start_time": unix s, "end_time": unix s}

In ``series`` and ``results`` a HEATMAP's value is its list of counts, one per value bucket.
``series`` is a ``Series``: columns that read as those point dicts and write
their own JSON (``result_json.dumps`` sends a result).
"""

from __future__ import annotations

import contextvars
import gc
import math
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Iterator, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from apiary.query.dialects import Dialect, dialect_for
from apiary.query.histograms import bucket_quantile
from apiary.query.plan import SEPARATE_KINDS, SpanQuery, filter_reads_overflow, weighted_percentiles
from apiary.query.planner import Catalogue, build_plan
from apiary.query.series import Series
from apiary.query.spec import QuerySpec, TimeWindow
from apiary.store.base import Store

ALL_DATASETS = "__all__"
#: Result groups that get a time series (each one point per bucket).
MAX_SERIES_GROUPS = 100
#: A log-scale heatmap spans at most this ratio (six decades: 1 µs to 1 s, 1 ms to 17 minutes).
LOG_HEATMAP_DECADES = 1e6


class DatasetNotFound(LookupError):
    pass


@dataclass
class QueryOutcome:
    data: dict[str, Any]
    window: TimeWindow
    elapsed_ms: float
    sql: list[str]


def plan_query(store: Store, env: str, dataset: str, spec: QuerySpec, now: float | None = None) -> tuple[SpanQuery, TimeWindow]:
    window = spec.window(now)
    datasets, catalogue = catalogue_for(store, env, dataset)
    return build_plan(spec, catalogue, env, datasets, window), window


def catalogue_for(store: Store, env: str, dataset: str) -> tuple[tuple[str, ...] | None, Catalogue]:
    """The datasets a query reads (None: all of the environment) and their columns; DatasetNotFound if unknown."""
    if dataset == ALL_DATASETS:
        return None, Catalogue(store.columns(env, None), f"environment {env!r}")
    if dataset not in {d.name for d in store.datasets(env)}:
        raise DatasetNotFound(f"dataset {dataset!r} not found in environment {env!r}")
    return (dataset,), Catalogue(store.columns(env, dataset), f"dataset {dataset!r}")


def run_query(store: Store, env: str, dataset: str, spec: QuerySpec, now: float | None = None,
              dialect: Dialect | None = None, disable_series: bool = False) -> QueryOutcome:
    """``disable_series`` (as Honeycomb's API offers) skips the time series: one scan fewer."""
    started = time.perf_counter()
    q, window = plan_query(store, env, dataset, spec, now)
    runner = _Runner(store, dialect or dialect_for(store.dialect), q, disable_series)
    with _paused_gc():  # a heatmap's cells are tens of thousands of small dicts, with no cycles among them to collect
        data = runner.run()
    data.update(granularity=window.granularity, start_time=window.start, end_time=window.end)
    return QueryOutcome(data, window, (time.perf_counter() - started) * 1000, runner.statements)


class _Runner:
    def __init__(self, store: Store, dialect: Dialect, q: SpanQuery, disable_series: bool = False) -> None:
        self.store, self.dialect, self.q, self.disable_series = store, dialect, q, disable_series
        self.statements: list[str] = []
        self.group_labels = [g.label for g in q.groups]
        self.sql_aggs = [(j, a) for j, a in enumerate(q.aggregates) if a.kind not in SEPARATE_KINDS]
        self._times: list[str] | None = None

    def _run(self, compiled: Any) -> pa.Table:
        self.statements.append(compiled.sql)
        return self.store.query(compiled.sql, compiled.params)

    def run(self) -> dict[str, Any]:
        q = self.q
        n_groups = len(q.groups)
        heatmap_only = n_groups == 0 and all(a.kind == "heatmap" for a in q.aggregates)
        one_scan = (not heatmap_only and not n_groups and not q.having and not self.disable_series and bool(self.sql_aggs)
                    and filter_reads_overflow(q) and not weighted_percentiles(q))
        series_table: pa.Table | None = None
        if heatmap_only:  # the heatmap's own statements give the totals: skip a scan
            totals = [{"_examples": []}]
        elif one_scan:
            both = self._run(self.dialect.totals_and_series(q))
            is_total = pc.equal(both.column("_total"), 1)
            totals = [r for r in _rows(both.filter(is_total)) if r["_rows"]]
            series_table = both.filter(pc.invert(is_total))
        elif not n_groups and not self.disable_series and self.sql_aggs and self.store.parallel_reads:
            # Without breakdowns the series does not wait on the totals: both statements run at once.
            # Each ends in single-threaded work (an exact percentile's selection), so together they
            # keep both cores busy. P90 per 90 s over 10 M spans: 561 and 580 ms, against 640-680 ms
            # for the two statements run one after the other.
            with ThreadPoolExecutor(1) as pool:
                # In this request's context, so the store knows whose rows the read waits for (``read_scope``).
                pending = pool.submit(contextvars.copy_context().run, self._run, self.dialect.series(q, None))
                totals = [r for r in _rows(self._run(self.dialect.summary(q))) if r["_rows"]]
                series_table = pending.result()
        else:
            totals = [r for r in _rows(self._run(self.dialect.summary(q))) if r["_rows"]]
        keys = [tuple(r[f"g{i}"] for i in range(n_groups)) for r in totals]
        series_keys = [] if self.disable_series else keys[:MAX_SERIES_GROUPS]
        series = Series(self._bucket_times() if series_keys else [], series_keys, self.group_labels)
        if series_keys and self.sql_aggs:
            if series_table is None:
                series_table = self._run(self.dialect.series(q, series_keys if n_groups else None))
            self._series_columns(series_table, series)

        results = []
        for key, r in zip(keys, totals):
            row = dict(zip(self.group_labels, key))
            for j, a in self.sql_aggs:
                row[a.label] = _clean(r[f"c{j}"])
            examples = []
            for t in r.get("_examples") or []:
                if t is not None and t not in examples:
                    examples.append(t)
            results.append({"data": row, "examples": examples})

        heatmaps: dict[str, Any] = {}
        group_filter = keys if n_groups else None
        for j, a in enumerate(q.aggregates):
            if a.kind == "heatmap" and keys:
                heatmaps[a.label] = self._heatmap(j, group_filter, results, series, keys)
            elif a.kind == "concurrency" and keys:
                self._concurrency(j, group_filter, results, series, keys)
            elif a.kind == "histogram_quantile" and keys:
                self._histogram_quantile(j, group_filter, results, series, keys)
        if heatmap_only:
            hm = next(iter(heatmaps.values()), None)
            if hm is None or not hm["cells"]:
                return {"series": [], "results": [], "heatmaps": heatmaps}
            slowest = sorted(hm["cells"], key=lambda c: -c["bucket"])
            results[0]["examples"] = list(dict.fromkeys(c["trace_id"] for c in slowest if c["trace_id"]))[:q.examples]
        return {"series": series, "results": results, "heatmaps": heatmaps}

    def _bucket_times(self) -> list[str]:
        """Each time bucket's start, as the result writes it."""
        if self._times is None:
            q = self.q
            step = timedelta(seconds=q.granularity_s)
            if q.start.microsecond or step.microseconds:  # rare: keep the fraction isoformat writes
                self._times = [_iso(q.start + b * step) for b in range(q.buckets)]
            else:  # numpy writes a day's ~1,000 stamps in a fraction of isoformat's time
                stamps = np.datetime64(q.start, "s") + np.arange(q.buckets) * np.timedelta64(int(step.total_seconds()), "s")
                self._times = [t + "Z" for t in np.datetime_as_string(stamps, unit="s").tolist()]
        return self._times

    def _series_columns(self, table: pa.Table, series: Series) -> None:
        """Series rows -> one column per calculation, in point order; a point without a row is empty.

        Arrow works out each row's point (hashing each row's group in Python cost more than the SQL)
        and scatters the values with one ``take``: no Python object per point.
        """
        positions = _positions(table, series.keys)
        inside = (positions >= 0) & (positions < len(series))
        source = np.full(len(series), -1, np.int64)
        source[positions[inside]] = np.nonzero(inside)[0]
        picks = pa.array(source, mask=source < 0)
        for j, a in self.sql_aggs:
            column = table.column(f"c{j}").take(picks).combine_chunks()
            if a.kind in ("count", "count_distinct"):
                column = pc.fill_null(column, 0)
            series.set(a.label, column)

    def _heatmap(self, j: int, groups: Sequence[tuple[Any, ...]] | None, results: list[dict[str, Any]],
                 series: Series, keys: list[tuple[Any, ...]]) -> dict[str, Any]:
        q, label, n = self.q, self.q.aggregates[j].label, self.q.heatmap_buckets
        lo, hi = self._run(self.dialect.bounds(q, j, groups)).to_pylist()[0].values()
        if lo is None:
            for r in results:
                r["data"][label] = [0] * n
            series.set(label, [[0] * n for _ in range(len(series))])
            return {"buckets": [], "cells": []}
        lo, hi = float(lo), float(hi)
        if q.heatmap_log and hi > 0:
            # Buckets even in log(value) from the smallest positive value, or a millionth of the largest, whichever
            # is larger: zero and negative values, and anything below, land in the first bucket.
            floor = max(lo, hi / LOG_HEATMAP_DECADES)
            log_lo, log_hi = math.log(floor), math.log(hi)
            width = (log_hi - log_lo) / n if log_hi > log_lo else 1.0
            table = self._run(self.dialect.heatmap(q, j, groups, log_lo, width, log_floor=floor))
            edges = [floor if i == 0 else math.exp(log_lo + i * width) for i in range(n)] + [hi]
            buckets = [{"lower": edges[i] if i else lo, "upper": edges[i + 1]} for i in range(n)]
        else:
            width = (hi - lo) / n if hi > lo else 1.0
            table = self._run(self.dialect.heatmap(q, j, groups, lo, width))
            buckets = [{"lower": lo + i * width, "upper": lo + (i + 1) * width if i < n - 1 else hi} for i in range(n)]
        # Counts per result group and per series point, added up column-wise by numpy.
        cell_no = table.column("_cell").to_numpy(zero_copy_only=False).astype(np.int64)
        count = table.column("n").to_numpy(zero_copy_only=False).astype(np.int64)
        position = _positions(table, keys)
        known = position >= 0
        bucket, group = np.divmod(np.where(known, position, 0), len(keys))
        per_group = np.zeros((len(keys), n), np.int64)
        np.add.at(per_group, (group[known], cell_no[known]), count[known])
        for r, counts in zip(results, per_group.tolist()):
            r["data"][label] = counts
        if len(series):
            width_s = len(series.keys)
            in_series = known & (group < width_s) & (bucket < len(series.times))
            per_point = np.zeros((len(series), n), np.int64)
            np.add.at(per_point, (bucket[in_series] * width_s + group[in_series], cell_no[in_series]), count[in_series])
            series.set(label, per_point.tolist())
        # Cells in time order, then value bucket (a stable sort: groups keep the order the SQL gave).
        table = table.take(pc.sort_indices(table, [("_bucket", "ascending"), ("_cell", "ascending")]))
        fields = {"time": pa.array(self._bucket_times(), pa.string()).take(table.column("_bucket")), "bucket": table.column("_cell"),
                  "count": table.column("n"), "trace_id": table.column("_example")}
        for i, name in enumerate(self.group_labels):  # a breakdown named like a cell field replaces it, as a later dict key would
            fields[name] = table.column(f"g{i}")
        cells = pa.StructArray.from_arrays([_one_chunk(f) for f in fields.values()], names=list(fields)).to_pylist()
        return {"buckets": buckets, "cells": cells}

    def _concurrency(self, j: int, groups: Sequence[tuple[Any, ...]] | None, results: list[dict[str, Any]],
                     series: Series, keys: list[tuple[Any, ...]]) -> None:
        q, label = self.q, self.q.aggregates[j].label
        n_groups = len(q.groups)
        per_point: dict[tuple[int, tuple[Any, ...]], int] = {}
        for r in _rows(self._run(self.dialect.concurrency(q, groups))):
            per_point[(r["_bucket"], tuple(r[f"g{i}"] for i in range(n_groups)))] = int(r["v"])
        for key, r in zip(keys, results):
            r["data"][label] = max((v for (b, k), v in per_point.items() if k == key), default=0)
        series.set(label, pa.array([per_point.get(slot, 0) for slot in series.slots()], pa.int64()))

    def _histogram_quantile(self, j: int, groups: Sequence[tuple[Any, ...]] | None, results: list[dict[str, Any]],
                            series: Series, keys: list[tuple[Any, ...]]) -> None:
        """Bucket increases from SQL; merged per result group and per series point, then interpolated."""
        a = self.q.aggregates[j]
        table = self._run(self.dialect.histogram_buckets(self.q, j, groups))
        position = _positions(table, keys)
        per_group: list[list[tuple[float, float, float]]] = [[] for _ in keys]
        per_point: dict[int, list[tuple[float, float, float]]] = {}
        width_s = len(series.keys)
        for pos, lo, hi, n in zip(position.tolist(), table.column("_lo").to_pylist(), table.column("_hi").to_pylist(),
                                  table.column("n").to_pylist()):
            if pos < 0 or lo is None or hi is None:
                continue
            bucket, group = divmod(pos, len(keys))
            per_group[group].append((lo, hi, n))
            if group < width_s and bucket < len(series.times):
                per_point.setdefault(bucket * width_s + group, []).append((lo, hi, n))
        for r, buckets in zip(results, per_group):
            r["data"][a.label] = bucket_quantile(buckets, a.q or 0.0)
        if len(series):
            series.set(a.label, pa.array([bucket_quantile(per_point.get(i, ()), a.q or 0.0) for i in range(len(series))],
                                         pa.float64()))


def _positions(table: pa.Table, keys: list[tuple[Any, ...]]) -> np.ndarray:
    """Each series row's slot, ``_bucket * len(keys) + its group's index in keys``; -1 for a group not in keys.

    Every group column is coded by ``index_in`` (nulls match nulls) against that column's values
    among the keys. Codes are combined column by column and renumbered by the keys' own codes after
    each one, so they stay below ``len(keys) ** 2`` however many columns the breakdown has.
    """
    buckets = table.column("_bucket").to_numpy(zero_copy_only=False).astype(np.int64)
    n_groups = len(keys[0]) if keys else 0
    if not n_groups:
        return buckets
    rows = np.zeros(table.num_rows, np.int64)
    key_codes = np.zeros(len(keys), np.int64)
    missing = np.zeros(table.num_rows, bool)
    for i in range(n_groups):
        column = table.column(f"g{i}")
        values = list(dict.fromkeys(k[i] for k in keys))
        where = {v: n for n, v in enumerate(values)}
        index = pc.index_in(column, value_set=pa.array(values, column.type), skip_nulls=False)
        missing |= index.is_null().to_numpy(zero_copy_only=False)
        rows = rows * len(values) + pc.fill_null(index, 0).to_numpy(zero_copy_only=False).astype(np.int64)
        key_codes = key_codes * len(values) + np.array([where[k[i]] for k in keys], np.int64)
        known, key_codes = np.unique(key_codes, return_inverse=True)
        at = np.minimum(np.searchsorted(known, rows), len(known) - 1)
        missing |= known[at] != rows
        rows = at
    slot = np.empty(len(keys), np.int64)
    slot[key_codes] = np.arange(len(keys))  # distinct keys: their final codes are 0 .. len(keys) - 1
    return np.where(missing, -1, buckets * len(keys) + slot[rows])


@contextmanager
def _paused_gc() -> Iterator[None]:
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _one_chunk(column: pa.Array | pa.ChunkedArray) -> pa.Array:
    return column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column


def _rows(table: pa.Table) -> list[dict[str, Any]]:
    """Row dicts, built column by column (several times faster than ``Table.to_pylist``)."""
    names = table.column_names
    columns = [table.column(i).to_pylist() for i in range(table.num_columns)]
    return [dict(zip(names, values)) for values in zip(*columns)]


def _clean(value: Any) -> Any:
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    if isinstance(value, Decimal):  # DuckDB sums integers to a 128-bit integer, which Arrow hands over as a Decimal
        whole = value == value.to_integral_value()
        return int(value) if whole and -_INT64 <= value < _INT64 else float(value)
    return value


_INT64 = 1 << 63  # orjson writes integers up to 64 bits


def _iso(naive_utc: datetime) -> str:
    return naive_utc.replace(tzinfo=timezone.utc).isoformat().replace("+00:00", "Z")
