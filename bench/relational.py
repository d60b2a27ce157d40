"""Honeycomb's relational fields through the engine, beside the same answers in SQL written by hand, in one run.

Run through ``bench/query.py --relational`` (it loads the synthetic store: traces of 8 spans, each child's parent
the trace's root, 20 routes, 2 % errors, 3 % 404s). Each case runs through the engine (plan, SQL, shaping, no
series), as the statements the engine issued replayed on the store, and as the smallest hand-written SQL for the
same numbers; the ratios are engine / hand SQL and engine / its own SQL. With ``APIARY_BENCH_TREE=<an earlier
source tree>`` the engine is that tree's (its store must read this one's files): the cases it refuses say so.
"""

from __future__ import annotations

import argparse
from typing import Any, Callable

from apiary.query.engine import run_query
from apiary.query.spec import SpecError, parse_spec
from bench.timing import interleaved_medians_ms

ENV = "bench"
ROUTE = "/api/route3"


def _hand_sql(dialect: str, col: Callable[[str], str]) -> dict[str, str]:
    """Per case, the hand-written SQL for the engine's summary numbers (``{w}``: the window's condition)."""
    route, status = col("http.route"), col("http.status_code")
    if dialect == "duckdb":
        tid, sid, pid = '"trace.trace_id"', '"trace.span_id"', '"trace.parent_id"'
        return {
            "root": (f"SELECT r.route, count(*) n FROM spans s LEFT JOIN (SELECT {tid} t, any_value({route}) route FROM spans "
                     f"WHERE {{w}} AND coalesce({pid}, '') = '' GROUP BY 1) r ON s.{tid} = r.t WHERE {{w}} "
                     "GROUP BY 1 ORDER BY n DESC LIMIT 100"),
            "parent": (f"SELECT name, count(*) n FROM spans WHERE {{w}} AND ({tid}, {pid}) IN (SELECT {tid}, {sid} FROM spans "
                       f"WHERE {{w}} AND {route} = '{ROUTE}') GROUP BY 1 ORDER BY n DESC LIMIT 100"),
            "any_none": (f"SELECT count(*) FROM spans WHERE {{w}} AND {tid} IN (SELECT {tid} FROM spans WHERE {{w}} "
                         f"GROUP BY 1 HAVING bool_or(coalesce(error, false)) AND NOT bool_or(coalesce({status} = 404, false)))"),
            "any_group": (f"SELECT a.route, count(*) n FROM spans s JOIN (SELECT {tid} t, arg_min({route}, \"timestamp\") "
                          f"route FROM spans WHERE {{w}} AND error GROUP BY 1) a ON s.{tid} = a.t WHERE {{w}} "
                          "GROUP BY 1 ORDER BY n DESC LIMIT 100"),
        }
    tid, sid, pid = "`trace.trace_id`", "`trace.span_id`", "`trace.parent_id`"
    return {
        "root": (f"SELECT r.route, count() n FROM spans AS s LEFT JOIN (SELECT assumeNotNull({tid}) t, any({route}) route "
                 f"FROM spans WHERE {{w}} AND ifNull({pid}, '') = '' GROUP BY t) AS r ON s.{tid} = r.t WHERE {{w}} "
                 "GROUP BY r.route ORDER BY n DESC LIMIT 100"),
        "parent": (f"SELECT name, count() n FROM spans WHERE {{w}} AND ({tid}, {pid}) IN (SELECT {tid}, {sid} FROM spans "
                   f"WHERE {{w}} AND {route} = '{ROUTE}') GROUP BY name ORDER BY n DESC LIMIT 100"),
        "any_none": (f"SELECT count() FROM spans WHERE {{w}} AND {tid} IN (SELECT {tid} FROM spans WHERE {{w}} GROUP BY {tid} "
                     f"HAVING max(ifNull(error, false)) = 1 AND max(ifNull({status} = 404, false)) = 0)"),
        "any_group": (f"SELECT a.route, count() n FROM spans AS s INNER JOIN (SELECT assumeNotNull({tid}) t, "
                      f"argMin({route}, `timestamp`) route FROM spans WHERE {{w}} AND error GROUP BY t) AS a "
                      f"ON s.{tid} = a.t WHERE {{w}} GROUP BY a.route ORDER BY n DESC LIMIT 100"),
    }


def relational_main(args: argparse.Namespace, open_store: Callable[..., Any], replayed: Callable[..., Any],
                    day_window: Callable[[int], Any]) -> None:
    """``open_store``, ``replayed`` and ``day_window`` are ``bench/query.py``'s (its module runs as ``__main__``)."""
    store, start_us = open_store(args.store, args.data, args.spans, None)
    if args.load_only:
        store.close_sync()
        return
    window, naive = day_window(start_us)
    physical = {c.name: c.physical for c in store.columns(ENV, None)}
    if store.dialect == "duckdb":
        w = '_env = $1 AND "timestamp" >= $2 AND "timestamp" < $3'
        hand = _hand_sql("duckdb", lambda n: f'"{physical[n]}"')
    else:
        ts = "DateTime64(6, 'UTC')"
        w = f"_env = {{p1:String}} AND `timestamp` >= {{p2:{ts}}} AND `timestamp` < {{p3:{ts}}}"
        hand = _hand_sql("clickhouse", lambda n: f"`{physical[n]}`")

    def engine(spec: dict[str, Any]) -> Callable[[], Any]:
        parsed = parse_spec({**window, **spec})
        return lambda: run_query(store, ENV, "__all__", parsed, disable_series=True)

    def sql(case: str) -> Callable[[], Any]:
        text = hand[case].replace("{w}", w)
        return lambda: store.query(text, [ENV, *naive])

    count = [{"op": "COUNT"}]
    cases = [
        ("GROUP BY root.http.route", "root", {"calculations": count, "breakdowns": ["root.http.route"]}),
        (f"parent.http.route = {ROUTE}, by name", "parent",
         {"calculations": count, "breakdowns": ["name"],
          "filters": [{"column": "parent.http.route", "op": "=", "value": ROUTE}]}),
        ("any.error = true AND none.status_code = 404", "any_none",
         {"calculations": count, "filters": [{"column": "any.error", "op": "=", "value": True},
                                             {"column": "none.http.status_code", "op": "=", "value": 404}]}),
        ("any.error = true, GROUP BY any.http.route", "any_group",
         {"calculations": count, "breakdowns": ["any.http.route"],
          "filters": [{"column": "any.error", "op": "=", "value": True}]}),
    ]
    print(f"\n{store.count(ENV):,} spans, {store.dialect}, median of {args.runs} runs (ms), disable_series")
    print("engine: run_query (plan, SQL, shaping); its SQL: the engine's statements replayed; hand SQL: the same numbers")
    print(f"{'query':46} {'engine':>9} {'its SQL':>9} {'ratio':>6} {'hand SQL':>9} {'ratio':>6}")
    for label, case, spec in cases:
        eng = engine(spec)
        try:
            eng()
        except SpecError as exc:  # an earlier tree (APIARY_BENCH_TREE) without this relational field
            print(f"{label:46} refused: {str(exc)[:60]}")
            continue
        e, d, r = interleaved_medians_ms([eng, replayed(store, eng), sql(case)], args.runs)
        print(f"{label:46} {e:9.1f} {d:9.1f} {e / d:6.2f} {r:9.1f} {e / r:6.2f}")
    store.close_sync()
