"""Why attributes are typed columns: the same filters on three physical layouts, in one run.

Layouts of the same N spans with ~10 attributes:
  columns -- one typed column per attribute key (what apiary/store/duckdb/store.py does)
  json    -- all attributes in one JSON text column
  map     -- all attributes in one MAP(VARCHAR, VARCHAR) column (values as text)
Printed: load time and median latency of a string-equality filter, a numeric range
filter and a GROUP BY on an attribute; the ratio to the typed-column layout is the figure.

    python bench/schema.py --rows 10000000
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import duckdb

GENERATE = """
SELECT
    TIMESTAMP '2026-01-01' + to_microseconds(i * 8640) AS ts,
    (random() * 500)::DOUBLE AS duration_ms,
    'user' || (i % 1000)::VARCHAR AS user_id,
    CASE WHEN i % 50 = 0 THEN 500 ELSE 200 END AS status,
    '/api/route' || (i % 20)::VARCHAR AS route,
    ['GET', 'POST'][1 + (i % 2)] AS method,
    (i % 37) AS result_length,
    'bench-host' AS host,
    'python' AS lang,
    '1.1' AS flavor,
    'http' AS scheme,
    '127.0.0.1' AS peer
FROM range({rows}) t(i)
"""

LAYOUTS = {
    "columns": "CREATE TABLE spans AS SELECT ts, duration_ms, user_id AS \"app.user_id\", status AS \"http.status_code\", "
               "route AS \"http.route\", method AS \"http.method\", result_length AS \"app.result_length\", host AS \"host.name\", "
               "lang AS \"telemetry.sdk.language\", flavor AS \"http.flavor\", scheme AS \"http.scheme\", peer AS \"net.peer.ip\" FROM gen",
    "json": "CREATE TABLE spans AS SELECT ts, duration_ms, json_object('app.user_id', user_id, 'http.status_code', status, "
            "'http.route', route, 'http.method', method, 'app.result_length', result_length, 'host.name', host, "
            "'telemetry.sdk.language', lang, 'http.flavor', flavor, 'http.scheme', scheme, 'net.peer.ip', peer)::VARCHAR AS attrs FROM gen",
    "map": "CREATE TABLE spans AS SELECT ts, duration_ms, MAP(['app.user_id', 'http.status_code', 'http.route', 'http.method', "
           "'app.result_length', 'host.name', 'telemetry.sdk.language', 'http.flavor', 'http.scheme', 'net.peer.ip'], "
           "[user_id, status::VARCHAR, route, method, result_length::VARCHAR, host, lang, flavor, scheme, peer]) AS attrs FROM gen",
}

QUERIES = {
    "string =": {
        "columns": "SELECT count(*) FROM spans WHERE \"app.user_id\" = 'user7'",
        "json": "SELECT count(*) FROM spans WHERE json_extract_string(attrs, '$.\"app.user_id\"') = 'user7'",
        "map": "SELECT count(*) FROM spans WHERE attrs['app.user_id'] = 'user7'",
    },
    "number >=": {
        "columns": "SELECT count(*) FROM spans WHERE \"http.status_code\" >= 500",
        "json": "SELECT count(*) FROM spans WHERE json_extract(attrs, '$.\"http.status_code\"')::BIGINT >= 500",
        "map": "SELECT count(*) FROM spans WHERE attrs['http.status_code']::BIGINT >= 500",
    },
    "group by": {
        "columns": "SELECT \"http.route\", quantile_cont(duration_ms, 0.9) FROM spans GROUP BY 1",
        "json": "SELECT json_extract_string(attrs, '$.\"http.route\"'), quantile_cont(duration_ms, 0.9) FROM spans GROUP BY 1",
        "map": "SELECT attrs['http.route'], quantile_cont(duration_ms, 0.9) FROM spans GROUP BY 1",
    },
}


def median_ms(con: duckdb.DuckDBPyConnection, sql: str, runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        con.execute(sql).fetchall()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for layout, ddl in LAYOUTS.items():
            con = duckdb.connect(str(Path(tmp) / f"{layout}.duckdb"))
            con.execute(f"CREATE TEMP VIEW gen AS {GENERATE.format(rows=args.rows)}")
            t0 = time.perf_counter()
            con.execute(ddl)
            con.execute("CHECKPOINT")
            results.setdefault("load (s)", {})[layout] = time.perf_counter() - t0
            for name, by_layout in QUERIES.items():
                results.setdefault(f"{name} (ms)", {})[layout] = median_ms(con, by_layout[layout], args.runs)
            con.close()
    print(f"{args.rows:,} spans, median of {args.runs} runs")
    print(f"{'':16}{'columns':>12}{'json':>12}{'map':>12}{'json/col':>10}{'map/col':>10}")
    for name, row in results.items():
        base = row["columns"]
        print(f"{name:16}{row['columns']:12.2f}{row['json']:12.2f}{row['map']:12.2f}{row['json'] / base:9.1f}x{row['map'] / base:9.1f}x")


if __name__ == "__main__":
    main()
