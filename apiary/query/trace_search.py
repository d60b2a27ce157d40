"""Trace search: Jaeger's search over Honeycomb's columns, as one request -> one plan -> SQL per dialect.

A request names span conditions and says how a trace must combine them::

    {"time_range": 3600,                           # or start_time / end_time (unix s), as a query spec
     "spans": {"checkout": {"service": "backend-flask", "name": "POST /checkout"},
               "db":       {"name": "db-query", "min_duration_ms": 100,
                            "where": [{"column": "db.rows", "op": ">", "value": 5}]},
               "failed":   {"error": true}},
     "match": "db under checkout and not failed",  # default: every condition, ANDed
     "min_trace_duration_ms": 500,                 # the trace: first span's start to last span's end
     "order": "slowest",                           # or "newest" (the default)
     "limit": 20}

Each named condition is matched by *any* span of a trace (its fields are ANDed
on that one span); ``match`` combines them with ``and``, ``or``, ``not`` and
``a under b`` (a span matching ``a`` is a descendant of one matching ``b``).
``min_duration_ms`` / ``max_duration_ms`` in a condition are a *span's*
``duration_ms``; ``min_trace_duration_ms`` / ``max_trace_duration_ms`` are the
trace's. ``trace_id`` (or ``trace_ids``) finds traces by id whatever the time
range. A trace is judged by its spans that start inside the time range.

The answer lists each trace's root span (or, without one, its earliest span,
flagged ``root_missing``), start, duration, span and error counts and services,
with ``matched``: how many traces matched in all, counted exactly, never
capped by ``limit``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any, Sequence, Union

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from lark import Lark, Token, Tree
from lark.exceptions import LarkError

from apiary.model.ids import normalise_trace_id
from apiary.query.plan import BOOLEAN, Call, Expr, Literal
from apiary.query.planner import Catalogue, _Planner
from apiary.query.spec import SpecError, parse_spec
from apiary.store.base import Store

MAX_CONDITIONS = 16
MAX_TRACE_IDS = 1000
DEFAULT_LIMIT = 20
MAX_LIMIT = 1000
ORDERS = ("newest", "slowest")
_CONDITION_FIELDS = {"service", "name", "where", "min_duration_ms", "max_duration_ms", "error"}
_REQUEST_FIELDS = {"time_range", "start_time", "end_time", "trace_id", "trace_ids", "spans", "match",
                   "min_trace_duration_ms", "max_trace_duration_ms", "order", "limit"}


# -- the match expression ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Has:
    """Some span of the trace matches condition ``index``."""

    index: int


@dataclass(frozen=True)
class Under:
    """Some span matching ``inner`` has an ancestor matching ``outer``."""

    inner: int
    outer: int


@dataclass(frozen=True)
class Logic:
    op: str  # "and" | "or" | "not"
    args: tuple["Match", ...]


@dataclass(frozen=True)
class Const:
    value: bool


Match = Union[Has, Under, Logic, Const]


@lru_cache(maxsize=1)
def _parser() -> Lark:
    return Lark(Path(__file__).with_name("trace_match.lark").read_text(), parser="lalr")


def parse_match(text: str, names: Sequence[str]) -> Match:
    """``a and not (b under c)`` -> a match tree over the indexes of ``names``."""
    try:
        tree = _parser().parse(text)
    except LarkError as exc:
        raise SpecError(f"match: cannot read {text!r}: {str(exc).splitlines()[0]}") from None

    def index(tok: Token) -> int:
        if str(tok) not in names:
            known = ", ".join(names) or "none"
            raise SpecError(f"match: {str(tok)!r} is not a span condition of this search (conditions: {known})")
        return list(names).index(str(tok))

    def build(node: Tree | Token) -> Match:
        assert isinstance(node, Tree)
        kind = node.data if isinstance(node.data, str) else node.data.value
        if kind == "condition":
            return Has(index(node.children[0]))  # type: ignore[arg-type]
        if kind == "under":
            return Under(index(node.children[0]), index(node.children[1]))  # type: ignore[arg-type]
        if kind == "negate":
            return Logic("not", (build(node.children[0]),))
        return Logic("and" if kind == "conj" else "or", tuple(build(c) for c in node.children))

    return build(tree)


def relax(m: Match, positive: bool = True) -> Match:
    """The match with every ``under`` replaced by what SQL over per-trace flags can say: a superset of the traces.

    Where it counts for the trace (positive), ``a under b`` becomes ``a and b``; under a ``not``, it becomes
    false (so ``not (a under b)`` keeps every trace). Only the traces this keeps are then checked exactly.
    """
    if isinstance(m, Under):
        return Logic("and", (Has(m.inner), Has(m.outer))) if positive else Const(False)
    if isinstance(m, Logic):
        flip = m.op == "not"
        return Logic(m.op, tuple(relax(a, positive != flip) for a in m.args))
    return m


def has_under(m: Match) -> bool:
    if isinstance(m, Under):
        return True
    return isinstance(m, Logic) and any(has_under(a) for a in m.args)


def evaluate(m: Match, has: Sequence[Any], under: dict[tuple[int, int], Any]) -> Any:
    """The match's truth from each condition's and each ``under``'s: bools, or numpy arrays of them (one per trace)."""
    if isinstance(m, Has):
        return has[m.index]
    if isinstance(m, Under):
        return under[(m.inner, m.outer)]
    if isinstance(m, Const):
        return m.value
    if m.op == "not":
        return np.logical_not(evaluate(m.args[0], has, under))
    values = [evaluate(a, has, under) for a in m.args]
    if not values:
        return m.op == "and"
    return np.logical_and.reduce(values) if m.op == "and" else np.logical_or.reduce(values)


def unders(m: Match) -> list[tuple[int, int]]:
    if isinstance(m, Under):
        return [(m.inner, m.outer)]
    if isinstance(m, Logic):
        return [u for a in m.args for u in unders(a)]
    return []


# -- the plan ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TraceSearchPlan:
    env: str
    start: datetime | None  # naive UTC; None with trace ids: any time
    end: datetime | None
    trace_ids: tuple[str, ...] | None
    conditions: tuple[Expr, ...]  # one boolean expression per named condition, over one span's columns
    names: tuple[str, ...]
    match: Match  # as given (may hold ``Under``)
    min_trace_ms: float | None
    max_trace_ms: float | None
    order: str
    limit: int

    @property
    def sql_match(self) -> Match:
        return relax(self.match)

    @property
    def exact_in_sql(self) -> bool:
        return not has_under(self.match)


def _number(value: Any, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SpecError(f"{where}: give a number of milliseconds")
    return float(value)


def build_search_plan(store: Store, env: str, doc: Any, now: float | None = None) -> TraceSearchPlan:
    """Validate a search request against the environment's columns; SpecError names the field to fix."""
    if not isinstance(doc, dict):
        raise SpecError("a trace search is a JSON object")
    unknown = set(doc) - _REQUEST_FIELDS
    if unknown:
        raise SpecError(f"unknown field {sorted(unknown)[0]!r}; a search takes {', '.join(sorted(_REQUEST_FIELDS))}")
    window_doc = {k: doc[k] for k in ("time_range", "start_time", "end_time") if doc.get(k) is not None}
    window = parse_spec(window_doc).window(now)
    ids: list[str] = []
    if doc.get("trace_id") is not None:
        ids.append(doc["trace_id"])
    raw_ids = doc.get("trace_ids")
    if raw_ids is not None:
        if not isinstance(raw_ids, list) or len(raw_ids) > MAX_TRACE_IDS:
            raise SpecError(f"trace_ids: give a list of at most {MAX_TRACE_IDS} trace ids")
        ids.extend(raw_ids)
    try:
        trace_ids = tuple(dict.fromkeys(normalise_trace_id(str(t)) for t in ids)) if ids else None
    except ValueError as exc:
        raise SpecError(f"trace_id: {exc}") from None
    if (raw_ids is not None or doc.get("trace_id") is not None) and not trace_ids:
        raise SpecError("trace_ids: the list is empty")

    spans = doc.get("spans") or {}
    if not isinstance(spans, dict):
        raise SpecError('spans: give named conditions, e.g. {"a": {"service": "api", "name": "GET /"}}')
    if len(spans) > MAX_CONDITIONS:
        raise SpecError(f"spans: at most {MAX_CONDITIONS} conditions")
    catalogue = Catalogue(store.columns(env, None), f"environment {env!r}")
    planner = _Planner(parse_spec({}), catalogue)
    names, conditions = [], []
    for name, cond in spans.items():
        if not isinstance(name, str) or not _parser_name_ok(name):
            raise SpecError(f"spans: {name!r} is not a usable name (letters, digits, _; not and/or/not/under)")
        conditions.append(_condition(planner, cond, f"spans.{name}"))
        names.append(name)
    text = doc.get("match")
    if text is None or (isinstance(text, str) and not text.strip()):
        match: Match = Logic("and", tuple(Has(i) for i in range(len(names)))) if names else Const(True)
    elif not isinstance(text, str):
        raise SpecError('match: give an expression such as "a and not b"')
    else:
        match = parse_match(text, names)

    order = doc.get("order", "newest")
    if order not in ORDERS:
        raise SpecError(f"order: one of {', '.join(ORDERS)}")
    limit = doc.get("limit", DEFAULT_LIMIT)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise SpecError(f"limit: a whole number from 1 to {MAX_LIMIT}")
    start = end = None
    if trace_ids is None:
        start, end = _naive(window.start), _naive(window.end)
    return TraceSearchPlan(env, start, end, trace_ids, tuple(conditions), tuple(names), match,
                           _number(doc.get("min_trace_duration_ms"), "min_trace_duration_ms"),
                           _number(doc.get("max_trace_duration_ms"), "max_trace_duration_ms"), order, limit)


_KEYWORDS = {"and", "or", "not", "under"}


def _parser_name_ok(name: str) -> bool:
    return bool(name) and (name[0].isalpha() or name[0] == "_") and all(c.isalnum() or c == "_" for c in name) \
        and name.isascii() and name.lower() not in _KEYWORDS


def _condition(planner: _Planner, cond: Any, where: str) -> Expr:
    """One span condition's fields, ANDed, as one boolean expression over a span's columns."""
    if not isinstance(cond, dict):
        raise SpecError(f"{where}: give an object with any of {', '.join(sorted(_CONDITION_FIELDS))}")
    unknown = set(cond) - _CONDITION_FIELDS
    if unknown:
        raise SpecError(f"{where}: unknown field {sorted(unknown)[0]!r}; a condition takes "
                        f"{', '.join(sorted(_CONDITION_FIELDS))}")
    filters: list[dict[str, Any]] = []
    for field, column in (("service", "service.name"), ("name", "name")):
        if cond.get(field) is not None:
            filters.append({"column": column, "op": "=", "value": cond[field]})
    for field, op in (("min_duration_ms", ">="), ("max_duration_ms", "<=")):
        if cond.get(field) is not None:
            filters.append({"column": "duration_ms", "op": op, "value": _number(cond[field], f"{where}.{field}")})
    if cond.get("error") is not None:
        if not isinstance(cond["error"], bool):
            raise SpecError(f"{where}.error: true or false")
        filters.append({"column": "error", "op": "=", "value": cond["error"]})
    extra = cond.get("where") or []
    if not isinstance(extra, list):
        raise SpecError(f'{where}.where: a list of filters, e.g. [{{"column": "http.status_code", "op": ">=", "value": 500}}]')
    try:
        spec = parse_spec({"filters": filters + extra})
    except SpecError as exc:
        raise SpecError(f"{where}: {exc}") from None
    exprs = []
    for i, f in enumerate(spec.filters):
        label = f"{where}.where[{i - len(filters)}]" if i >= len(filters) else f"{where}"
        expr = planner.filter(f.column, f.op, f.value, label)
        if f.column == "error" and f.value is False:  # a span without the flag did not fail
            expr = Call("not", (Call("coalesce", (_column(planner, "error"), Literal(False, BOOLEAN)), BOOLEAN),), BOOLEAN)
        exprs.append(expr)
    if not exprs:
        return Literal(True, BOOLEAN)
    return exprs[0] if len(exprs) == 1 else Call("and", tuple(exprs), BOOLEAN)


def _column(planner: _Planner, name: str) -> Expr:
    return planner.operand(name, None, name)


def _naive(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, timezone.utc).replace(tzinfo=None)


# -- running it ------------------------------------------------------------------------------------------


@dataclass
class TraceSearchOutcome:
    data: dict[str, Any]
    sql: list[str]


def search_traces(store: Store, env: str, doc: Any, now: float | None = None) -> TraceSearchOutcome:
    """Plan, run the dialect's SQL, check ``under`` exactly where asked, and shape the answer."""
    from apiary.query.dialects.traces import Cuts, trace_dialect_for

    started = time.perf_counter()
    plan = build_search_plan(store, env, doc, now)
    dialect = trace_dialect_for(store.dialect)
    statements: list[str] = []
    cuts = Cuts()
    if plan.start is not None and plan.end is not None:
        compiled = dialect.cuts(plan)
        statements.append(compiled.sql)
        cuts = window_cuts(store.query(compiled.sql, compiled.params), plan.start, plan.end)
    if plan.exact_in_sql:
        compiled = dialect.search(plan, cuts)
        statements.append(compiled.sql)
        rows = _rows(store.query(compiled.sql, compiled.params))
        matched = int(rows[0]["_matched"]) if rows else 0
    else:
        kept = _judged_under(plan, _under_traces(store, dialect, plan, statements))
        matched = kept.num_rows
        rows = _rows(kept.slice(0, plan.limit))
    traces: list[dict[str, Any]] = []
    if rows:  # the shown columns, for the returned traces only
        compiled = dialect.summaries(plan, [r["_tid"] for r in rows], cuts)
        statements.append(compiled.sql)
        shown = {r["_tid"]: r for r in _rows(store.query(compiled.sql, compiled.params))}
        traces = [_trace_row(shown[r["_tid"]]) for r in rows if r["_tid"] in shown]
    data = {"traces": traces, "matched": matched, "returned": len(traces),
            "elapsed_ms": round((time.perf_counter() - started) * 1000, 3)}
    if plan.start is not None and plan.end is not None:
        data["start_time"] = _iso(plan.start)
        data["end_time"] = _iso(plan.end)
    return TraceSearchOutcome(data, statements)


#: At most this many time ranges are read for the traces a window edge cuts (nearby ranges are joined).
MAX_CUT_RANGES = 8


def window_cuts(found: pa.Table, start: datetime, end: datetime) -> Any:
    """The traces a window edge cuts (``TraceDialect.cuts``' rows) and the few time ranges inside the window that
    hold their spans there: their summary rows' ranges, clipped to the window, overlapping ones joined, then the
    closest joined until at most `MAX_CUT_RANGES` remain (each range becomes one read of the spans)."""
    from apiary.query.dialects.traces import Cuts

    if not found.num_rows:
        return Cuts()
    lo_us, hi_us = _micros(start), _micros(end) - 1
    spans = sorted((max(lo, lo_us), min(hi, hi_us)) for lo, hi in zip(found.column("lo").to_pylist(),
                                                                        found.column("hi").to_pylist()))
    ranges: list[list[int]] = []
    for lo, hi in spans:
        if ranges and lo <= ranges[-1][1]:
            ranges[-1][1] = max(ranges[-1][1], hi)
        else:
            ranges.append([lo, hi])
    while len(ranges) > MAX_CUT_RANGES:
        i = min(range(len(ranges) - 1), key=lambda k: ranges[k + 1][0] - ranges[k][1])
        ranges[i:i + 2] = [[ranges[i][0], ranges[i + 1][1]]]
    return Cuts(tuple(found.column("_tid").to_pylist()), tuple((_from_micros(lo), _from_micros(hi)) for lo, hi in ranges))


def _micros(naive: datetime) -> int:
    return (naive - datetime(1970, 1, 1)) // timedelta(microseconds=1)


def _from_micros(us: int) -> datetime:
    return datetime(1970, 1, 1) + timedelta(microseconds=us)


def _under_traces(store: Store, dialect: Any, plan: TraceSearchPlan, statements: list[str]) -> pa.Table:
    """The traces the relaxed match keeps, each with ``_tid``, ``start_us``, ``end_us``, ``h<i>`` and ``u<k>``: the
    truth of the k-th ``a under b`` of the plan (`unders`, sorted).

    Where the dialect can (`TraceDialect.under_levels`), SQL follows each chain of parents a few levels up and
    answers the traces whose chains all ended there; only the traces with a chain left open have their spans
    fetched and walked in arrays (`_walked`). Fetching every candidate's spans with its parent's row number
    cost ~0.6 s of the ~1.2 s descendant search on 10 M spans (62,714 candidates, 501,712 spans; DuckDB).
    """
    pairs = sorted(set(unders(plan.match)))
    compiled = dialect.under_levels(plan, pairs)
    if compiled is None:
        compiled = dialect.candidate_spans(plan)
        statements.append(compiled.sql)
        return _walked(plan, pairs, store.query(compiled.sql, compiled.params))
    statements.append(compiled.sql)
    found = store.query(compiled.sql, compiled.params)
    ids = found.column("_tid").to_numpy(zero_copy_only=False)
    truth = [_bools(found.column(f"u{k}")) for k in range(len(pairs))]
    undecided = np.logical_or.reduce([_bools(found.column(f"o{k}")) & ~truth[k] for k in range(len(pairs))])
    if undecided.any():
        narrowed = replace(plan, trace_ids=tuple(ids[undecided].tolist()))
        compiled = dialect.candidate_spans(narrowed)
        statements.append(compiled.sql)
        walked = _walked(narrowed, pairs, store.query(compiled.sql, compiled.params))
        at = pc.index_in(walked.column("_tid"), pa.array(ids)).to_numpy(zero_copy_only=False)
        for k in range(len(pairs)):
            truth[k][at] = _bools(walked.column(f"u{k}"))
    columns = {name: found.column(name) for name in ("_tid", "start_us", "end_us")}
    columns.update({f"h{i}": pa.array(_bools(found.column(f"h{i}"))) for i in range(len(plan.conditions))})
    columns.update({f"u{k}": pa.array(truth[k]) for k in range(len(pairs))})
    return pa.table(columns)


def _bools(column: Any) -> np.ndarray:
    return np.asarray(column.to_numpy(zero_copy_only=False), dtype=bool).copy()


def _judged_under(plan: TraceSearchPlan, traces: pa.Table) -> pa.Table:
    """`_under_traces`' rows that match exactly, in the plan's order (``_tid``, ``start_us``, ``end_us``, ``h<i>``)."""
    pairs = sorted(set(unders(plan.match)))
    has = [traces.column(f"h{i}").to_numpy(zero_copy_only=False) for i in range(len(plan.conditions))]
    truth = {pair: traces.column(f"u{k}").to_numpy(zero_copy_only=False) for k, pair in enumerate(pairs)}
    kept = traces.filter(pa.array(np.broadcast_to(evaluate(plan.match, has, truth), traces.num_rows)))
    kept = kept.select(["_tid", "start_us", "end_us", *(f"h{i}" for i in range(len(has)))])
    if plan.order == "slowest":
        kept = kept.append_column("_d", pc.subtract(kept.column("end_us"), kept.column("start_us")))
        order = [("_d", "descending"), ("_tid", "ascending")]
    else:
        order = [("start_us", "descending"), ("_tid", "ascending")]
    return kept.sort_by(order)


def _walked(plan: TraceSearchPlan, pairs: Sequence[tuple[int, int]], table: pa.Table) -> pa.Table:
    """`_under_traces`' rows from the spans of the candidate traces (`TraceDialect.candidate_spans`): each
    ``a under b`` from the parent links, the rest from per-trace flags gathered here from the same spans.

    Array work, not a loop per span or trace: each span's parent row comes from SQL, "has an ancestor
    matching b" is spread down the trees by pointer jumping (the cost grows with the spans fetched, times
    the log of the trees' depth), and the match is judged on whole columns (62,714 candidates judged one by
    one took ~0.8 s of a loaded machine's Python).
    """
    n = table.num_rows
    row = table.column("_i").to_numpy().astype(np.int64)  # rows come back in any order: put span i at i
    parent = np.full(n, -1, np.int64)
    parent[row] = pc.fill_null(table.column("_p"), -1).to_numpy().astype(np.int64)
    parent[parent == np.arange(n)] = -1
    encoded = pc.dictionary_encode(table.column("_tid").combine_chunks().cast(pa.string()))
    ids = encoded.dictionary
    trace_no = np.zeros(n, np.int64)
    trace_no[row] = encoded.indices.to_numpy().astype(np.int64)
    traces = len(ids)
    start = np.full(traces, np.iinfo(np.int64).max, np.int64)
    end = np.full(traces, np.iinfo(np.int64).min, np.int64)
    np.minimum.at(start, trace_no[row], table.column("_s").to_numpy().astype(np.int64))
    np.maximum.at(end, trace_no[row], table.column("_e").to_numpy().astype(np.int64))
    flags, has = [], []
    for i in range(len(plan.conditions)):
        flags.append(np.zeros(n, bool))
        flags[i][row] = table.column(f"m{i}").to_numpy(zero_copy_only=False).astype(bool)
        has.append(np.zeros(traces, bool))
        has[i][trace_no[flags[i]]] = True
    truth = []
    for inner, outer in pairs:
        per_trace = np.zeros(traces, bool)
        per_trace[trace_no[flags[inner] & _below(parent, flags[outer])]] = True
        truth.append(per_trace)
    return pa.table({"_tid": ids, "start_us": start, "end_us": end, **{f"h{i}": has[i] for i in range(len(has))},
                     **{f"u{k}": truth[k] for k in range(len(truth))}})


def _below(parent: np.ndarray, flagged: np.ndarray) -> np.ndarray:
    """Per span: does some ancestor have the flag? (An OR along each chain of parents, by pointer jumping.)"""
    seen = np.where(parent >= 0, flagged[np.maximum(parent, 0)], False)
    up = parent.copy()
    for _ in range(64):  # doubling: 64 rounds reach any depth; stops once every chain has reached its top
        live = up >= 0
        if not live.any():
            break
        at = np.where(live, up, 0)
        seen = seen | (live & seen[at])
        up = np.where(live, up[at], -1)
    return seen


def _rows(table: Any) -> list[dict[str, Any]]:
    names = table.column_names
    columns = [table.column(i).to_pylist() for i in range(table.num_columns)]
    return [dict(zip(names, values)) for values in zip(*columns)]


def _trace_row(r: dict[str, Any]) -> dict[str, Any]:
    start = datetime.fromtimestamp(r["start_us"] / 1e6, timezone.utc)
    return {"trace_id": r["_tid"], "root_name": r["root_name"], "root_service": r["root_service"],
            "root_missing": not bool(r["has_root"]), "start": start.isoformat().replace("+00:00", "Z"),
            "duration_ms": (r["end_us"] - r["start_us"]) / 1000.0, "spans": int(r["spans"]), "errors": int(r["errors"]),
            "services": [s for s in (r["services"] or []) if s is not None]}


def _iso(naive: datetime) -> str:
    return naive.replace(tzinfo=timezone.utc).isoformat().replace("+00:00", "Z")

