"""Runs: telemetry tagged with the resource attribute ``apiary.run``, listed and compared two at a time.

A run is whatever the user names one: a test session (the pytest plugin sets
``OTEL_RESOURCE_ATTRIBUTES=apiary.run=<name>``), a benchmark, one ``apiary run
--name NAME -- COMMAND``. X-Ray SDKs take no resource attributes, and an X-Ray
annotation key may hold only letters, digits and ``_``, so a segment joins a
run through the annotation ``apiary_run`` (stored as ``annotation.apiary_run``;
only the annotated entity, not its subsegments); a span's run is the first of
the two it has.

Everything here is a Honeycomb query spec run by the query engine (or a
BubbleUp of one), so both stores answer it through their own dialect and no
SQL is written here:

* listing: spans with a run, broken down by run and ``service.name``: COUNT,
  first start and last end (calculated fields of ``EVENT_TIMESTAMP()``);
* comparing A and B: one query over the window both runs cover, broken down by
  run, ``service.name`` and ``name``: COUNT, errors (``SUM(IF($error, 1, 0))``),
  P50/P90/P99 of ``duration_ms``; then a BubbleUp with run B as the selection
  and run A as the baseline, which says per attribute column how its values'
  shares moved, and which columns one run has and the other never set.

Only spans count: span events, links and OTLP metric rows (no ``duration_ms``)
are left out, as the trace views leave them out.
"""

from __future__ import annotations

import contextvars
import math
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from typing import Any

from apiary.query.bubbleup import Selection, run_bubbleup
from apiary.query.engine import ALL_DATASETS, catalogue_for, run_query
from apiary.query.spec import Filter, SpecError, parse_spec
from apiary.store.base import Store

#: The resource attribute a run is named by (the pytest plugin and ``apiary run`` set it).
RUN_ATTRIBUTE = "apiary.run"
#: The X-Ray annotation that stands in for it (annotation keys allow ``[A-Za-z0-9_]`` only).
XRAY_ANNOTATION = "annotation.apiary_run"
#: How far back runs are looked for unless asked otherwise.
DEFAULT_LOOKBACK_S = 7 * 86400
PERCENTILES = ("p50", "p90", "p99")
#: Below this a latency change is judged against 1 ms, not its own size: a 0.02 -> 0.05 ms span is noise, not +150 %.
LATENCY_FLOOR_MS = 1.0
#: BubbleUp columns the answer lists (highest score first).
TOP_COLUMNS = 15
#: Columns two runs never share a value of, so their BubbleUp score says nothing about a change: ids of spans and
#: traces, and of the process (every run of an SDK gets a new ``service.instance.id``; it scored 1.0, the top of the
#: ranking, in every comparison of two runs of the same code).
NEVER_SHARED_COLUMNS = frozenset({"trace.trace_id", "trace.span_id", "trace.parent_id", "trace.link.trace_id",
                                  "trace.link.span_id", "service.instance.id", "process.pid", "process.parent_pid"})
#: Breakdown rows read per query; past it a comparison says it is partial.
MAX_GROUPS = 10_000

_RUN = "apiary.runs.run"  # calculated-field names: unlike any attribute a user sends
_START = "apiary.runs.start_s"
_END = "apiary.runs.end_s"
_ERR = "apiary.runs.error"
_SPANS_ONLY = [Filter(column="meta.annotation_type", op="does-not-exist"), Filter(column="duration_ms", op="exists")]


class RunNotFound(LookupError):
    pass


def _run_field(store: Store, env: str) -> dict[str, str] | None:
    """The calculated field that reads a span's run, from the columns this environment has; None: no run anywhere."""
    _, catalogue = catalogue_for(store, env, ALL_DATASETS)
    have = [c for c in (RUN_ATTRIBUTE, XRAY_ANNOTATION) if c in catalogue.sources]
    if not have:
        return None
    if len(have) == 1:
        return {"name": _RUN, "expression": f'$"{have[0]}"'}
    # Read as text: an annotation may have been sent as a number, and COALESCE takes one type.
    return {"name": _RUN, "expression": "COALESCE(" + ", ".join(f'STRING($"{c}")' for c in have) + ")"}


def _window(last_s: int, now: float | None) -> dict[str, int]:
    return {"time_range": max(1, int(last_s))} if now is None else {"end_time": int(now) + 1, "time_range": max(1, int(last_s))}


def _summaries(store: Store, env: str, run_field: dict[str, str], filters: list[dict[str, Any]],
               window: dict[str, int], now: float | None) -> dict[str, dict[str, Any]]:
    spec = parse_spec({
        "calculated_fields": [run_field, {"name": _START, "expression": "EVENT_TIMESTAMP()"},
                              {"name": _END, "expression": "SUM(EVENT_TIMESTAMP(), DIV($duration_ms, 1000))"}],
        "filters": [*filters, *(f.model_dump(exclude_none=True) for f in _SPANS_ONLY)],
        "breakdowns": [_RUN, "service.name"],
        "calculations": [{"op": "COUNT"}, {"op": "MIN", "column": _START}, {"op": "MAX", "column": _END}],
        "limit": MAX_GROUPS, **window})
    rows = run_query(store, env, ALL_DATASETS, spec, now, disable_series=True).data["results"]
    runs: dict[str, dict[str, Any]] = {}
    for r in rows:
        d = r["data"]
        run = runs.setdefault(d[_RUN], {"name": d[_RUN], "spans": 0, "services": [], "first": math.inf, "last": -math.inf})
        run["spans"] += int(d["COUNT"])
        if d["service.name"] is not None:
            run["services"].append(d["service.name"])
        run["first"] = min(run["first"], d[f"MIN({_START})"])
        run["last"] = max(run["last"], d[f"MAX({_END})"])
    return {name: _run_json(run) for name, run in runs.items()}


def _run_json(run: dict[str, Any]) -> dict[str, Any]:
    return {"name": run["name"], "first_seen": _iso(run["first"]), "last_seen": _iso(run["last"]),
            "duration_s": round(run["last"] - run["first"], 3), "spans": run["spans"], "services": sorted(run["services"]),
            "_first": run["first"], "_last": run["last"]}


def _iso(unix_s: float) -> str:
    return datetime.fromtimestamp(unix_s, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _public(run: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in run.items() if not k.startswith("_")}


def list_runs(store: Store, env: str, last_s: int = DEFAULT_LOOKBACK_S, now: float | None = None) -> list[dict[str, Any]]:
    """Every run with spans in the last ``last_s`` seconds, the latest first: name, first/last seen, spans, services."""
    run_field = _run_field(store, env)
    if run_field is None:
        return []
    runs = _summaries(store, env, run_field, [{"column": _RUN, "op": "exists"}], _window(last_s, now), now)
    return [_public(r) for r in sorted(runs.values(), key=lambda r: (-r["_last"], r["name"]))]


def compare_runs(store: Store, env: str, a: str, b: str, percentile: str = "p50", last_s: int = DEFAULT_LOOKBACK_S,
                 now: float | None = None) -> dict[str, Any]:
    """Run B against run A, per (service, span name), with a ranking of what changed most.

    Each span row's ``score`` is on BubbleUp's scale (0: no change, 1: the most a change can be) and is the
    largest of three changes:

    * latency: ``|B - A| / max(A, B, 1 ms)`` of the chosen percentile, weighted by ``n / (n + 1)`` where ``n`` is
      the smaller of the two counts (one span each way is half as sure as many). 1 ms -> 41 ms scores 0.98 x the
      weight, 2 -> 3 ms 0.33; a sub-millisecond wobble stays under 0.1, as the floor of 1 ms judges it;
    * errors: the change in the share of the span's rows that are errors (BubbleUp's difference in share);
    * volume: the change in the span's share of its run's spans (BubbleUp's difference in share again), which
      also scores span names one run has and the other does not.

    Rows are ordered by score, highest first; ``changed_columns`` is BubbleUp's ranking of attribute columns
    (run B the selection, run A the baseline), and ``only_in_a`` / ``only_in_b`` the columns one run never set.
    """
    if percentile not in PERCENTILES:
        raise SpecError(f"percentile: {percentile!r} is not one of {', '.join(PERCENTILES)}")
    if a == b:
        raise SpecError("compare two different runs (a and b are the same)")
    run_field = _run_field(store, env)
    if run_field is None:
        raise RunNotFound(f"run {a!r} not found in environment {env!r}: no span there has the resource attribute "
                          f"{RUN_ATTRIBUTE} (or the X-Ray annotation apiary_run)")
    runs = _summaries(store, env, run_field, [{"column": _RUN, "op": "in", "value": [a, b]}], _window(last_s, now), now)
    for name in (a, b):
        if name not in runs:
            raise RunNotFound(f"run {name!r} not found in environment {env!r} in the last {_span_text(last_s)}")
    # The window the two runs cover, whole seconds: every later statement reads only that.
    window = {"start_time": int(min(runs[a]["_first"], runs[b]["_first"])),
              "end_time": int(max(runs[a]["_last"], runs[b]["_last"])) + 1}
    both = [{"column": _RUN, "op": "in", "value": [a, b]}, *(f.model_dump(exclude_none=True) for f in _SPANS_ONLY)]
    spec = parse_spec({
        "calculated_fields": [run_field, {"name": _ERR, "expression": "IF($error, 1, 0)"}],
        "filters": both, "breakdowns": [_RUN, "service.name", "name"],
        "calculations": [{"op": "COUNT"}, {"op": "SUM", "column": _ERR},
                         *({"op": p.upper(), "column": "duration_ms"} for p in PERCENTILES)],
        "limit": MAX_GROUPS, **window})
    bubble_spec = parse_spec({"calculated_fields": [run_field], "filters": both, **window})
    selection = Selection(filters=[Filter(column=_RUN, op="=", value=b)])
    with ThreadPoolExecutor(1) as pool:
        # BubbleUp's counting scan is most of the cost (722 of 1,100 ms at 300,000 spans): where the store takes
        # concurrent reads it runs beside the span statistics rather than after them.
        pending = pool.submit(contextvars.copy_context().run, run_bubbleup, store, env, ALL_DATASETS, bubble_spec,
                              selection, now) \
            if store.parallel_reads else None
        found = run_query(store, env, ALL_DATASETS, spec, now, disable_series=True).data["results"]
        bubble = pending.result() if pending else run_bubbleup(store, env, ALL_DATASETS, bubble_spec, selection, now)
    stats: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
    for r in found:
        d = r["data"]
        side = "a" if d[_RUN] == a else "b"
        stats.setdefault((d["service.name"], d["name"]), {})[side] = {
            "count": int(d["COUNT"]), "errors": int(d[f"SUM({_ERR})"] or 0),
            **{p: d[f"{p.upper()}(duration_ms)"] for p in PERCENTILES}}
    totals = {"a": runs[a]["spans"], "b": runs[b]["spans"]}
    rows = [_row(service, name, sides, totals, percentile) for (service, name), sides in stats.items()]
    rows.sort(key=lambda r: (-r["score"], str(r["service"]), str(r["name"])))
    changed, only_a, only_b = _columns(bubble.data["columns"])
    return {"a": _public(runs[a]), "b": _public(runs[b]), "percentile": percentile, "spans": rows,
            "new_spans": [_name(r) for r in rows if r["in"] == "b"], "vanished_spans": [_name(r) for r in rows if r["in"] == "a"],
            "only_in_a": only_a, "only_in_b": only_b, "changed_columns": changed,
            "partial": len(found) >= MAX_GROUPS}


def _name(row: dict[str, Any]) -> dict[str, Any]:
    return {"service": row["service"], "name": row["name"]}


def _row(service: str, name: str, sides: dict[str, dict[str, Any]], totals: dict[str, int],
         percentile: str) -> dict[str, Any]:
    sa, sb = sides.get("a"), sides.get("b")
    where = "both" if sa and sb else "a" if sa else "b"
    share = {k: (s["count"] / totals[k] if s and totals[k] else 0.0) for k, s in (("a", sa), ("b", sb))}
    volume = abs(share["b"] - share["a"])
    change: dict[str, Any] = {"count": (sb or {}).get("count", 0) - (sa or {}).get("count", 0),
                              "errors": (sb or {}).get("errors", 0) - (sa or {}).get("errors", 0)}
    latency = errors = 0.0
    if sa and sb:
        for p in PERCENTILES:
            pa, pb = sa[p], sb[p]
            if pa is None or pb is None:
                change[f"{p}_ms"] = change[f"{p}_pct"] = None
                continue
            change[f"{p}_ms"] = round(pb - pa, 3)
            change[f"{p}_pct"] = round((pb - pa) / pa * 100, 1) if pa > 0 else None
        pa, pb = sa[percentile], sb[percentile]
        if pa is not None and pb is not None:
            n = min(sa["count"], sb["count"])
            latency = abs(pb - pa) / max(pa, pb, LATENCY_FLOOR_MS) * n / (n + 1)
        errors = abs(sb["errors"] / sb["count"] - sa["errors"] / sa["count"])
    score = max(latency, errors, volume)
    why = "latency" if score == latency and score > 0 else "errors" if score == errors and score > 0 else "volume"
    return {"service": service, "name": name, "in": where, "a": sa, "b": sb, "change": change,
            "score": round(score, 6), "why": why}


def _columns(columns: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str], list[str]]:
    """BubbleUp's columns -> (the most changed, compactly), columns run A alone has, columns run B alone has."""
    only_a, only_b, changed = [], [], []
    for c in columns:
        present = {side: 1.0 - sum(e["share"] for e in c[side] if "value" in e and e["value"] is None)
                   for side in ("selection", "baseline")}
        if present["selection"] <= 0 < present["baseline"]:
            only_a.append(c["column"])
        elif present["baseline"] <= 0 < present["selection"]:
            only_b.append(c["column"])
        if c["score"] > 0 and len(changed) < TOP_COLUMNS and c["column"] not in NEVER_SHARED_COLUMNS:
            changed.append({"column": c["column"], "kind": c["kind"], "score": c["score"],
                            "a": c["baseline"], "b": c["selection"]})
    return changed, sorted(only_a), sorted(only_b)


def _span_text(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def slowed_past(doc: dict[str, Any], percentile: str | None = None, threshold_ms: float | None = None,
                threshold_pct: float | None = None) -> list[dict[str, Any]]:
    """Span rows in both runs whose percentile slowed by more than every threshold given (for CI's exit status).

    With both thresholds a span must pass both: ``--threshold-pct`` alone flags a 0.02 -> 0.05 ms span, and
    adding ``--threshold-ms`` is how a user keeps such noise out.
    """
    p = percentile or doc["percentile"]
    out = []
    for r in doc["spans"]:
        if r["in"] != "both" or r["a"][p] is None or r["b"][p] is None:
            continue
        before, delta = r["a"][p], r["b"][p] - r["a"][p]
        if delta <= 0:
            continue
        if threshold_ms is not None and delta <= threshold_ms:
            continue
        if threshold_pct is not None and before > 0 and delta / before * 100 <= threshold_pct:
            continue
        out.append(r)
    return out
