"""Query engine latency against hand-written DuckDB SQL on the same data, in the same run.

    python bench/query.py --spans 1000000
    python bench/query.py --spans 10000000 --data /tmp/apiary-bench   # reuses the store when present
    python bench/query.py --spans 10000000 --store clickhouse         # the same on ClickHouse (chdb), side by side
    python bench/query.py --spans 10000000 --sampled [--store clickhouse]  # sample-rate-weighted queries, a calculated field
    python bench/query.py --spans 1000000 --relational [--store clickhouse]  # Honeycomb's relational fields
    git archive 19c0b83 | tar -x -C ../apiary-before                  # an earlier tree, then:
    python bench/query.py --spans 200000 --baseline ../apiary-before [--store clickhouse]
    python bench/query.py --spans 1000000 --sampled --baseline ../apiary-before   # the weighted cases, before and after

Loads N synthetic spans (3 services, 20 routes, log-normal durations, ~10
attributes, 24 h, traces of 8 spans) straight through ``DuckDBStore.append``
as Arrow batches. ``app.user_id`` is written past the column cap, so it lives
in the ``_attrs`` JSON column: the "non-promoted attribute" case. Each query
runs through the engine (``run_query``: plan, SQL, shaping -- no HTTP), then
also with the JSON body the Query Data API sends (``result_json.dumps``), and
as the equivalent SQL typed by hand; the ratio is the engine's overhead.

``--sampled`` loads a store of its own whose spans carry ``meta.sample_rate``
(1 for most, 10 and 100 for some, none for a few), in place of ``http.flavor``,
and times Honeycomb's weighted COUNT, AVG and P99 and a calculated field
against the weighted SQL written by hand for the same answer -- the number and
each result row's example trace (the slowest span's), which the engine's answer
carries -- and against the number alone (``--store clickhouse``: on both stores).

``--relational`` times Honeycomb's relational fields (``root.``, ``parent.``,
``any.``, ``none.``, as filters and breakdowns) through the engine beside the
same answer in SQL written by hand (a join to the roots, a semi-join on the
parent, a per-trace GROUP BY), on DuckDB, or with ``--store clickhouse`` on
ClickHouse (chdb) with ClickHouse's hand SQL.

``--baseline DIR`` (an earlier Apiary's source tree) loads the same spans into
that tree's store, in a worker process that imports that tree's ``apiary``, and
times the same engine queries there and here in turn within each round: the
"now / before" ratio is what the code between them changed, on each store.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pyarrow as pa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
#: Set in the ``--baseline`` worker: that tree's ``apiary`` is imported in place of this one's.
BASELINE_TREE = os.environ.get("APIARY_BENCH_TREE")
if BASELINE_TREE:
    sys.path.insert(0, BASELINE_TREE)

from apiary.model.span import CORE_FIELDS, DATASET_COLUMN, OVERFLOW_COLUMN, SpanBatch  # noqa: E402
from apiary.query.engine import run_query  # noqa: E402
from apiary.query.result_json import dumps  # noqa: E402
from apiary.query.spec import parse_spec  # noqa: E402
from apiary.store.duckdb import DuckDBStore  # noqa: E402
from bench.timing import interleaved_medians_ms, median_ms  # noqa: E402

ENV = "bench"
SERVICES = np.array(["backend-flask", "frontend-react-js", "worker"])
ROUTES = np.array([f"/api/route{i}" for i in range(20)])
AGENTS = np.array(["Mozilla/5.0 Firefox/120.0", "Mozilla/5.0 Chrome/119.0", "curl/8.5.0", "python-requests/2.31", "okhttp/4.12"])
CHUNK = 250_000
DAY_US = 86_400 * 1_000_000
#: Attribute columns the store promotes; app.user_id comes after the cap and overflows into JSON.
MAX_COLUMNS = 9


def _hex(values: np.ndarray, width: int) -> pa.Array:
    return pa.array([f"{v:0{width}x}" for v in values.tolist()], pa.string())


def make_chunk(rng: np.random.Generator, first: int, n: int, total: int, start_us: int, sampled: bool = False) -> pa.Table:
    idx = np.arange(first, first + n)
    ts = start_us + (idx * (DAY_US // total)) + rng.integers(0, 1000, n)
    trace_no = idx // 8
    trace_hi = (trace_no.astype(np.uint64) * np.uint64(2654435761)) % np.uint64(2**61 - 1)  # spread, stable per trace
    span_ids = rng.integers(1, 2**62, n)
    root = idx % 8 == 0
    parent = np.where(root, 0, span_ids[np.maximum(np.arange(n) - (idx % 8), 0)])
    service = SERVICES[(trace_no * 7) % 3]
    route_i = rng.integers(0, 20, n)
    status = np.where(rng.random(n) < 0.02, 500, np.where(rng.random(n) < 0.03, 404, 200))
    duration = np.round(rng.lognormal(np.log(40), 1.1, n), 3)
    cols: dict[str, pa.Array] = {}
    types = {f.name: f.type for f in CORE_FIELDS}
    for f in CORE_FIELDS:
        cols[f.name] = pa.nulls(n, f.type)
    cols["timestamp"] = pa.array(ts, pa.timestamp("us")).cast(types["timestamp"])
    cols["duration_ms"] = pa.array(duration)
    cols["trace.trace_id"] = pa.array([f"{a:016x}{b:016x}" for a, b in zip(trace_hi.tolist(), trace_no.tolist())], pa.string())
    cols["trace.span_id"] = _hex(span_ids, 16)
    cols["trace.parent_id"] = pa.array([None if r else f"{p:016x}" for r, p in zip(root.tolist(), parent.tolist())], pa.string())
    cols["name"] = pa.array(np.char.add("GET ", ROUTES[route_i]))
    cols["service.name"] = pa.array(service)
    cols["span.kind"] = pa.array(np.where(root, "server", "internal"))
    cols["error"] = pa.array(status == 500)
    cols["meta.signal_type"] = pa.array(np.full(n, "trace"))
    cols[DATASET_COLUMN] = cols["service.name"]
    user = rng.integers(0, 1000, n)
    cols[OVERFLOW_COLUMN] = pa.array(np.char.add(np.char.add('{"app.user_id":"user', user.astype(str)), '"}'))
    attrs = {
        "http.method": pa.array(np.where(route_i % 4 == 0, "POST", "GET")),
        "http.route": pa.array(ROUTES[route_i]),
        "http.status_code": pa.array(status.astype(np.int64)),
        "http.scheme": pa.array(np.full(n, "http")),
        "http.target": pa.array(ROUTES[route_i]),
        "net.peer.ip": pa.array(np.char.add("10.0.0.", (route_i % 7).astype(str))),
        "http.user_agent": pa.array(AGENTS[user % 5]),
        "app.result_length": pa.array(rng.integers(0, 500, n)),
        "http.flavor": pa.array(np.full(n, "1.1")),
    }
    if sampled:  # kept 1 in N: most spans 1 in 1, some 1 in 10 or 1 in 100, a few with no rate (read as 1)
        draw = rng.random(n)
        rate = np.where(draw < 0.6, 1, np.where(draw < 0.85, 10, 100))
        del attrs["http.flavor"]
        attrs["meta.sample_rate"] = pa.array(rate.astype(np.int64), mask=draw > 0.95)
    cols.update(attrs)
    return pa.table(cols)


def load(store: Any, total: int, start_us: int, sampled: bool = False) -> None:
    # One small batch per service through the normal path, so the catalogue knows app.user_id lives in JSON.
    seed = make_chunk(np.random.default_rng(1), 0, 24, total, start_us, sampled)
    for svc in SERVICES:
        part = seed.filter(pa.compute.equal(seed.column(DATASET_COLUMN), svc)).drop_columns([OVERFLOW_COLUMN])
        part = part.append_column(OVERFLOW_COLUMN, pa.nulls(part.num_rows, pa.string()))
        part = part.append_column("app.user_id", pa.array(["user0"] * part.num_rows))
        asyncio.run(store.append(ENV, SpanBatch(part)))
    rng = np.random.default_rng(42)
    started = time.perf_counter()
    for first in range(24, total, CHUNK):
        n = min(CHUNK, total - first)
        asyncio.run(store.append(ENV, SpanBatch(make_chunk(rng, first, n, total, start_us, sampled))))
        done = first + n
        rate = done / (time.perf_counter() - started)
        print(f"\r  loaded {done:,} spans ({rate:,.0f}/s)", end="", file=sys.stderr, flush=True)
    if store.dialect == "duckdb":
        store.query("CHECKPOINT")
    print(file=sys.stderr)


def engine_cases(store: Any, window: dict[str, int], tid: str, gran: int) -> list[tuple[str, Callable[[], Any]]]:
    """The issue's queries through the engine (plan, SQL, shaping), for any store."""

    def engine(spec: dict[str, Any], disable_series: bool = False) -> Callable[[], Any]:
        parsed = parse_spec({**window, "granularity": gran, **spec})
        return lambda: run_query(store, ENV, "__all__", parsed, disable_series=disable_series)

    p90 = {"calculations": [{"op": "COUNT"}, {"op": "P90", "column": "duration_ms"}]}
    breakdown = {"calculations": [{"op": "P99", "column": "duration_ms"}, {"op": "COUNT"}], "breakdowns": ["service.name", "name"],
                 "filters": [{"column": "http.status_code", "op": ">=", "value": 500}],
                 "orders": [{"op": "P99", "column": "duration_ms", "order": "descending"}]}
    distinct = {"calculations": [{"op": "COUNT_DISTINCT", "column": "trace.trace_id"}]}
    user = {"calculations": [{"op": "COUNT"}], "filters": [{"column": "app.user_id", "op": "=", "value": "user7"}]}
    return [
        (f"COUNT + P90(duration_ms) per {gran} s, 24 h", engine(p90)),
        ("HEATMAP(duration_ms), 24 h", engine({"calculations": [{"op": "HEATMAP", "column": "duration_ms"}]})),
        ("service.name, name WHERE status>=500 by P99", engine(breakdown)),
        ("  same, disable_series", engine(breakdown, True)),
        ("COUNT_DISTINCT(trace.trace_id), 24 h", engine(distinct)),
        ("  same, disable_series", engine(distinct, True)),
        ('app.user_id = "user7" (JSON attribute)', engine(user)),
        ("  same, disable_series", engine(user, True)),
        ("one trace by id (store.trace)", lambda: store.trace(ENV, tid)),
        ("trace id filter through the engine, 24 h",
         engine({"calculations": [{"op": "COUNT"}], "filters": [{"column": "trace.trace_id", "op": "=", "value": tid}]})),
    ]


def with_json(run: Callable[[], Any]) -> Callable[[], bytes]:
    """The engine run and the JSON body the Query Data API sends for its result."""
    return lambda: dumps(run().data)


def replayed(store: Any, run: Callable[[], Any]) -> Callable[[], Any]:
    """The statements one engine run sends to the store, replayed directly: what is left is the engine's own cost."""
    raw = store.query
    issued: list[tuple[str, Any]] = []

    def recording(text: str, params: Any = None) -> Any:
        issued.append((text, params))
        return raw(text, params)
    store.query = recording
    try:
        run()
    finally:
        del store.query  # back to the class's method
    return lambda: [raw(text, params) for text, params in issued]


def open_store(kind: str, data: Path, spans: int, start_us: int | None, sampled: bool = False) -> tuple[Any, int]:
    """The store for ``kind``, loaded with ``spans`` synthetic spans unless it already holds them; its start (us)."""
    suffix = "-sampled" if sampled else ""
    meta = data / f"{kind}-{spans}{suffix}.start"
    if kind == "duckdb":
        name = f"spans-{spans}{'-sampled' if sampled else ''}"
        path = data / f"{name}.duckdb"
        meta = data / f"{name}.start"  # the name earlier runs used
        fresh = not (path.exists() and meta.exists())
        if fresh and path.exists():
            path.unlink()
        store: Any = DuckDBStore(path, max_columns=MAX_COLUMNS, max_pending_rows=4 * CHUNK)
    else:
        from apiary.store.clickhouse.store import ClickHouseStore

        path = data / f"chdb-{spans}{suffix}"
        fresh = not (path.exists() and meta.exists())
        if fresh and path.exists():
            import shutil

            shutil.rmtree(path)
        store = ClickHouseStore(f"chdb://{path}", max_columns=MAX_COLUMNS, max_pending_rows=4 * CHUNK)
    if fresh:
        start_us = start_us or (int(time.time()) - 86_400) * 1_000_000
        print(f"loading {spans:,} spans into {path}", file=sys.stderr)
        t = time.perf_counter()
        load(store, spans, start_us, sampled)
        print(f"  load took {time.perf_counter() - t:.1f}s", file=sys.stderr)
        meta.write_text(str(start_us))
    return store, int(meta.read_text())


class Baseline:
    """The same engine cases in a worker process running an earlier tree's ``apiary`` on its own copy of the spans."""

    def __init__(self, tree: Path, kind: str, data: Path, spans: int, start_us: int, tid: str,
                 sampled: bool = False) -> None:
        env = {**os.environ, "APIARY_BENCH_TREE": str(tree.resolve())}
        argv = [sys.executable, str(Path(__file__).resolve()), "--spans", str(spans), "--data", str(data),
                "--store", kind, "--worker-start", str(start_us), "--worker-trace", tid, *(["--sampled"] if sampled else [])]
        self.proc = subprocess.Popen(argv, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        ready = self._line()
        if ready != "ready":
            raise SystemExit(f"the baseline worker did not start: {ready!r}")

    def _line(self) -> str:
        assert self.proc.stdout is not None
        return self.proc.stdout.readline().strip()

    def ms(self, case: int) -> float:
        """One run of engine case ``case`` in the earlier tree, timed there (no pipe in the figure)."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"{case}\n")
        self.proc.stdin.flush()
        return float(self._line())

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(60)


def worker(args: argparse.Namespace) -> None:
    """The baseline side: load (in this process's ``apiary``, the earlier tree's), then time cases asked on stdin."""
    kind = "duckdb" if args.store == "duckdb" else "clickhouse"
    sys.stdout, reply = sys.stderr, sys.stdout  # load progress to stderr; stdout carries only the replies
    store, start_us = open_store(kind, args.data, args.spans, args.worker_start, sampled=args.sampled)
    if start_us != args.worker_start:
        raise SystemExit(f"the baseline copy in {args.data} was loaded for another window: delete it and run again")
    window, _ = day_window(start_us)
    cases = (sampled_engine_cases(store, window) if args.sampled
             else engine_cases(store, window, args.worker_trace, 90))
    print("ready", file=reply, flush=True)
    for line in sys.stdin:
        fn = cases[int(line)][1]
        t = time.perf_counter()
        fn()
        print((time.perf_counter() - t) * 1000, file=reply, flush=True)
    store.close_sync()


def beside_baseline(args: argparse.Namespace, kind: str, cases: list[tuple[str, Callable[[], Any]]], start_us: int,
                    tid: str, title: str, sampled: bool = False) -> None:
    """``cases`` here and in ``--baseline``'s tree (a worker on its own copy of the spans), interleaved."""
    base = Baseline(args.baseline, kind, args.data / "baseline", args.spans, start_us, tid, sampled=sampled)
    try:
        before_and_after(cases, base, args.runs, title)
    finally:
        base.close()


def before_and_after(cases: list[tuple[str, Callable[[], Any]]], base: Baseline, runs: int, title: str) -> None:
    """Each engine case here and in the earlier tree, in turn within every round; medians and their ratio."""
    print(f"\n{title}, median of {runs} runs (ms), this tree and the --baseline tree in turn within each round")
    print(f"{'query':46} {'now':>9} {'before':>9} {'now/before':>10}")
    for i, (label, fn) in enumerate(cases):
        fn()
        base.ms(i)  # both warmed once, untimed
        now: list[float] = []
        before: list[float] = []
        for _ in range(runs):
            t = time.perf_counter()
            fn()
            now.append((time.perf_counter() - t) * 1000)
            before.append(base.ms(i))
        n, b = statistics.median(now), statistics.median(before)
        print(f"{label:46} {n:9.1f} {b:9.1f} {n / b:10.2f}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spans", type=int, default=10_000_000)
    ap.add_argument("--data", type=Path, default=Path("/tmp/apiary-bench-query"))
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--store", choices=["duckdb", "clickhouse"], default="duckdb",
                    help="clickhouse: also load the same spans into ClickHouse (chdb, in-process) and print both side by side")
    ap.add_argument("--load-only", action="store_true", help="build the store(s) and stop")
    ap.add_argument("--sampled", action="store_true", help="sample-rate-weighted queries and a calculated field (with --store clickhouse: on both stores)")
    ap.add_argument("--relational", action="store_true", help="relational fields against hand-written SQL")
    ap.add_argument("--baseline", type=Path, help="an earlier Apiary source tree: time the engine cases there too, interleaved")
    ap.add_argument("--worker-start", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--worker-trace", help=argparse.SUPPRESS)
    args = ap.parse_args()
    args.data.mkdir(parents=True, exist_ok=True)
    if args.worker_start is not None:
        return worker(args)
    if args.sampled:
        return sampled_main(args)
    if args.relational:
        from bench.relational import relational_main

        return relational_main(args, open_store, replayed, day_window)
    store, start_us = open_store("duckdb", args.data, args.spans, None)
    ch = None
    if args.store == "clickhouse":
        ch, ch_start = open_store("clickhouse", args.data, args.spans, start_us)
        if ch_start != start_us:
            raise SystemExit(f"the ClickHouse copy in {args.data} was loaded for another window: delete it and run again")
    if args.load_only:
        store.close_sync()
        if ch is not None:
            ch.close_sync()
        return
    count = store.count(ENV)
    tid = store.query('SELECT "trace.trace_id" FROM spans WHERE _env = ? LIMIT 1 OFFSET ?', [ENV, count // 2]).column(0)[0].as_py()
    window, naive = day_window(start_us)
    gran = 90

    def sql(text: str, params: list[Any]) -> Callable[[], Any]:
        return lambda: store.query(text, params)

    where = '_env = $1 AND "timestamp" >= $2 AND "timestamp" < $3'
    p = [ENV, *naive]
    status = store_column(store, "http.status_code")
    breakdown_sql = sql(f'SELECT "service.name", name, quantile_cont(duration_ms, 0.99) p, count(*) FROM spans WHERE {where} '
                        f'AND {status} >= 500 GROUP BY ALL ORDER BY p DESC LIMIT 100', p)
    distinct_sql = sql(f'SELECT approx_count_distinct("trace.trace_id") FROM spans WHERE {where}', p)
    user_sql = sql(f"SELECT count(*) FROM spans WHERE {where} AND json_extract_string(_attrs, '/app.user_id') = 'user7'", p)
    hand = [
        sql(f'SELECT (epoch_us("timestamp") - $4) // $5 AS b, count(*), quantile_cont(duration_ms, 0.9) FROM spans '
            f"WHERE {where} GROUP BY b", [*p, start_us, gran * 1_000_000]),
        sql(f'WITH r AS (SELECT min(duration_ms) lo, (max(duration_ms) - min(duration_ms)) / 40 w FROM spans WHERE {where}) '
            f'SELECT (epoch_us("timestamp") - $4) // $5 AS b, least(floor((duration_ms - lo) / w), 39) AS cell, count(*) '
            f"FROM spans, r WHERE {where} GROUP BY ALL", [*p, start_us, gran * 1_000_000]),
        breakdown_sql, breakdown_sql, distinct_sql, distinct_sql, user_sql, user_sql,
        sql('SELECT * FROM spans WHERE _env = $1 AND "trace.trace_id" = $2', [ENV, tid]),
        sql(f'SELECT count(*) FROM spans WHERE {where} AND "trace.trace_id" = $4', [*p, tid]),
    ]
    print(f"\n{count:,} spans, DuckDB, median of {args.runs} runs (ms)")
    print("engine: run_query (plan, SQL, shaping); +JSON: and the API's JSON body of the result;")
    print("its SQL: the statements the engine issued, replayed on the store (the ratios are engine / its SQL);")
    print("hand SQL: the smallest hand-written SQL for the headline number (no series, no example traces)")
    print(f"{'query':46} {'engine':>9} {'+JSON':>9} {'its SQL':>9} {'ratio':>6} {'+JSON':>6} {'hand SQL':>9} {'ratio':>6}")
    duck_ms: list[float] = []
    for (label, eng), hand_sql in zip(engine_cases(store, window, tid, gran), hand):
        if label.startswith("one trace by id"):  # store.trace is SQL already: nothing to replay
            e, r = interleaved_medians_ms([eng, hand_sql], args.runs)
            duck_ms.append(e)
            print(f"{label:46} {e:9.1f} {'':>9} {'':>9} {'':>6} {'':>6} {r:9.1f} {e / r:6.2f}")
            continue
        e, j, d, r = interleaved_medians_ms([eng, with_json(eng), replayed(store, eng), hand_sql], args.runs)
        duck_ms.append(e)
        print(f"{label:46} {e:9.1f} {j:9.1f} {d:9.1f} {e / d:6.2f} {j / d:6.2f} {r:9.1f} {e / r:6.2f}")
    exact = median_ms(sql(f'SELECT count(DISTINCT "trace.trace_id") FROM spans WHERE {where}', p), max(1, args.runs // 2))
    print(f"{'(reference) exact count(DISTINCT trace_id)':46} {'':9} {exact:9.1f}")
    if args.baseline:
        beside_baseline(args, "duckdb", engine_cases(store, window, tid, gran), start_us, tid, f"{count:,} spans, DuckDB")
    store.close_sync()
    if ch is None:
        return
    print(f"\n{ch.count(ENV):,} spans, ClickHouse (chdb, in-process), median of {args.runs} runs (ms), beside DuckDB's engine figure")
    print(f"{'query':46} {'engine':>9} {'its SQL':>9} {'ratio':>6} {'DuckDB':>9} {'CH/Duck':>7}")
    for (label, eng), duck in zip(engine_cases(ch, window, tid, gran), duck_ms):
        e = median_ms(eng, args.runs)
        d = e if label.startswith("one trace by id") else median_ms(replayed(ch, eng), args.runs)
        print(f"{label:46} {e:9.1f} {d:9.1f} {e / d:6.2f} {duck:9.1f} {e / duck:7.2f}")
    if args.baseline:
        beside_baseline(args, "clickhouse", engine_cases(ch, window, tid, gran), start_us, tid,
                        f"{count:,} spans, ClickHouse (chdb)")
    ch.close_sync()


def sampled_main(args: argparse.Namespace) -> None:
    """Weighted COUNT, AVG, P99 and a calculated field through the engine, beside the weighted SQL written by hand."""
    kinds = ["duckdb"] + (["clickhouse"] if args.store == "clickhouse" else [])
    start_us: int | None = None
    for kind in kinds:
        store, start_us = open_store(kind, args.data, args.spans, start_us, sampled=True)
        if not args.load_only:
            sampled_table(store, start_us, args.runs)
            if args.baseline and kind == "duckdb":
                beside_baseline(args, "duckdb", sampled_engine_cases(store, day_window(start_us)[0]), start_us, "-",
                                f"{store.count(ENV):,} spans with meta.sample_rate, DuckDB, disable_series", sampled=True)
        store.close_sync()


#: Per store: the window's WHERE (``{p1}``.. its parameters), a cast to a float, the slowest span's trace per
#: group (the ``examples`` every result row of the engine carries), and its spelling of a conditional sum.
_SAMPLED_SQL = {
    "duckdb": {"where": '_env = $1 AND "timestamp" >= $2 AND "timestamp" < $3', "float": "CAST({} AS DOUBLE)",
               "example": 'arg_max("trace.trace_id", duration_ms)', "min_if": "min({v}) FILTER (WHERE {c})",
               "if": "CASE WHEN {c} THEN 1 ELSE 0 END"},
    "clickhouse": {"where": "_env = {p1:String} AND `timestamp` >= {p2:DateTime64(6, 'UTC')} AND "
                            "`timestamp` < {p3:DateTime64(6, 'UTC')}", "float": "toFloat64({})",
                   "example": "argMax(`trace.trace_id`, duration_ms)", "min_if": "minIf({v}, {c})",
                   "if": "if({c}, 1, 0)"},
}


def sampled_cases(store: Any, start_us: int) -> tuple[list[tuple[str, Callable[[], Any], str]], list[Any]]:
    """(label, engine run, hand SQL of the headline number) per query, and the hand SQL's parameters."""
    window, naive = day_window(start_us)
    spell = _SAMPLED_SQL[store.dialect]
    where = spell["where"]
    rate = f"coalesce({spell['float'].format(store_column(store, 'meta.sample_rate'))}, 1.0)"
    # A weighted percentile by hand: each distinct duration's running share of the sample rates, in order.
    ranked = (f"SELECT duration_ms d, sum(sum({rate})) OVER (ORDER BY duration_ms ROWS BETWEEN UNBOUNDED PRECEDING AND "
              f"CURRENT ROW) c, sum(sum({rate})) OVER () t FROM spans WHERE {where} GROUP BY duration_ms")
    at = (lambda rank: spell["min_if"].format(v="d", c=f"c > {rank}((t - 1) * 0.99)"))
    p99 = f"SELECT {at('floor')} + ({at('ceil')} - {at('floor')}) * ((max(t) - 1) * 0.99 - floor((max(t) - 1) * 0.99)) "
    p99 += f"FROM ({ranked})"
    route = store_column(store, "http.route")
    hand = [
        f"SELECT sum({rate}) FROM spans WHERE {where}",
        f"SELECT sum(duration_ms * {rate}) / sum({rate}) FROM spans WHERE {where}",
        p99,
        f"SELECT {route}, sum({spell['if'].format(c='duration_ms >= 100')} * {rate}) / sum({rate}) FROM spans "
        f"WHERE {where} GROUP BY {route}",
    ]
    cases = [(label, eng, sql) for (label, eng), sql in zip(sampled_engine_cases(store, window), hand)]
    return cases, [ENV, *naive]


def with_example(store: Any, sql: str) -> str:
    """``sql`` (one SELECT over ``spans``) also giving the slowest span's trace of each row, as the engine's answer
    does (``results[].examples``): what a developer writes for the same answer. A percentile, read from a
    subquery of its own, takes it from a second scan joined on, as a developer would add it."""
    example = _SAMPLED_SQL[store.dialect]["example"]
    if " FROM (" in sql:  # the percentile
        where = _SAMPLED_SQL[store.dialect]["where"]
        return f"SELECT * FROM ({sql}) AS v CROSS JOIN (SELECT {example} FROM spans WHERE {where}) AS e"
    head, tail = sql.split(" FROM spans", 1)
    return f"{head}, {example} FROM spans{tail}"


def sampled_table(store: Any, start_us: int, runs: int) -> None:
    cases, params = sampled_cases(store, start_us)
    name = "DuckDB" if store.dialect == "duckdb" else "ClickHouse (chdb)"
    print(f"\n{store.count(ENV):,} spans with meta.sample_rate, {name}, median of {runs} runs (ms), disable_series")
    print("its SQL: the engine's statements replayed; hand SQL: the same answer by hand (the number and each row's")
    print("example trace); number only: the hand SQL without the example; unweighted: the engine's statement without")
    print("sample rates (what weighting costs)")
    print(f"{'query':46} {'engine':>8} {'its SQL':>8} {'ratio':>6} {'hand SQL':>8} {'ratio':>6} {'number':>8} {'ratio':>6} "
          f"{'unweighted':>10} {'ratio':>6}")
    for label, eng, hand in cases:
        same = with_example(store, hand)
        e, d, r, n, u = interleaved_medians_ms([eng, replayed(store, eng), lambda same=same: store.query(same, params),
                                                lambda hand=hand: store.query(hand, params), unweighted(store, eng)], runs)
        print(f"{label:46} {e:8.1f} {d:8.1f} {e / d:6.2f} {r:8.1f} {e / r:6.2f} {n:8.1f} {e / n:6.2f} {u:10.1f} {d / u:6.2f}",
              flush=True)


def sampled_engine_cases(store: Any, window: dict[str, int]) -> list[tuple[str, Callable[[], Any]]]:
    """Weighted COUNT, AVG, P99 and a calculated field through the engine (``--sampled``), for either tree."""

    def engine(spec: dict[str, Any]) -> Callable[[], Any]:
        parsed = parse_spec({**window, **spec})
        return lambda: run_query(store, ENV, "__all__", parsed, disable_series=True)

    slow = {"name": "slow", "expression": "IF(GTE($duration_ms, 100), 1, 0)"}
    return [
        ("COUNT (weighted), 24 h", engine({"calculations": [{"op": "COUNT"}]})),
        ("AVG(duration_ms) (weighted)", engine({"calculations": [{"op": "AVG", "column": "duration_ms"}]})),
        ("P99(duration_ms) (weighted)", engine({"calculations": [{"op": "P99", "column": "duration_ms"}]})),
        ("AVG(IF(GTE($duration_ms, 100), 1, 0)) by route",
         engine({"calculated_fields": [slow], "calculations": [{"op": "AVG", "column": "slow"}],
                 "breakdowns": ["http.route"]})),
    ]


def unweighted(store: Any, run: Callable[[], Any]) -> Callable[[], Any]:
    """The summary statement the engine would send for the same query were no sample rate stored."""
    import apiary.query.engine as engine_module
    from dataclasses import replace

    from apiary.query.dialects import dialect_for

    real, caught = engine_module.build_plan, []

    def catching(*a: Any, **k: Any) -> Any:  # the plan the engine builds, caught on its way to the dialect
        caught.append(real(*a, **k))
        return caught[-1]
    engine_module.build_plan = catching
    try:
        run()
    finally:
        engine_module.build_plan = real
    compiled = dialect_for(store.dialect).summary(replace(caught[-1], sample_rate=None))
    return lambda: store.query(compiled.sql, compiled.params)


def day_window(start_us: int) -> tuple[dict[str, int], list[Any]]:
    """The synthetic day as a spec's start_time / end_time, and as the naive UTC bounds hand SQL binds."""
    start, end = start_us // 1_000_000, start_us // 1_000_000 + 86_400 + 1
    naive = [np.datetime64(t, "s").astype("datetime64[us]").item() for t in (start, end)]
    return {"start_time": start, "end_time": end}, naive


def store_column(store: DuckDBStore, name: str) -> str:
    infos = [c for c in store.columns(ENV, None) if c.name == name]
    return '"' + infos[0].physical + '"'


if __name__ == "__main__":
    main()
