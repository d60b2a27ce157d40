"""Logs Insights functions against hand-written SQL on the same events, in the same run, on DuckDB and ClickHouse.

    python bench/insights.py --events 2000000                 # both stores
    python bench/insights.py --events 10000000 --stores duckdb --only strcontains --runs 3

Fills each store's ``logs`` table with N synthetic events over the last day, straight in SQL (two in
three JSON lines with level, latency, ip and a nested user.id; one in three plain text lines whose OTel
attribute ``user.id`` has a dot in its key), then times each Insights query -- compiled by
``apiary.query.insights`` and run by the store, as GetQueryResults does, minus HTTP -- beside the SQL a
developer would write for the same answer, in alternation (`interleaved_wall_and_cpu_ms`). The ratio is
Insights over hand-written SQL; the goal is at most 1.2. Each row also checks that the two gave the same answer
(`ANSWERS`), so that the ratio compares like with like, and gives the ratio of the process's CPU time too (both
databases run in the process): on a loaded machine the wall times move by half between rounds. ``--baseline DIR`` (an earlier Apiary's source tree)
also times the statement that tree compiles for the same query, in the same rounds: "now / before".

    python bench/insights.py --events 2000000 --stores clickhouse --only isIpv4InSubnet,dedup --baseline ../apiary-before

``--keep DIR`` fills each store in DIR once and reuses it in later runs (a 10 M fill takes minutes), so that a
row can be measured again, or another row, at the same data; ``--show-sql`` prints the two statements of each row.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from apiary.query import insights  # noqa: E402
from apiary.store.lookup_tables import LookupTable, parse_csv  # noqa: E402
from bench.timing import interleaved_wall_and_cpu_ms  # noqa: E402

ENV, GROUP = "bench", "app"
DAY_S = 86_400

#: The three octets after ``10.`` of a valid IPv4 address, as a regular expression.
_OCTETS = "([.](25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){{3}}"
_TOKEN = "[A-Za-z0-9_.:+-]*[0-9][A-Za-z0-9_.:+-]*"
#: `pattern @message | anomaly` by hand, for the same anomalies (apiary/query/insights_anomaly.py's rules; the
#: shapes one word apart are not merged, as in the `pattern` row): each line masked and its number-bearing tokens
#: listed, one row per token position, each value counted in both windows, then each position's statistics and
#: the first anomaly among them per pattern, with its description.
_ANOMALY_VERDICT = (
    "CASE WHEN k = 0 OR b = 0 OR w = 0 THEN NULL WHEN hh = 1 AND MATCH(p, '(?i)(http|status)') THEN "
    "CASE WHEN e0 * b - e1 * w >= 0.1 * w * b AND e0 > 0 THEN concat('1', lpad(TEXT(k), 3, '0'), 'token ', "
    "TEXT(k), ' (an HTTP status code) was 4xx or 5xx in ', TEXT(e0), ' of ', TEXT(w), ' lines in the query''s "
    "time range, against ', TEXT(e1), ' of ', TEXT(b), ' in the baseline') END "
    "WHEN bt = 0 THEN CASE WHEN b >= 5 AND bd < b AND (hi > bhi AND hi - sx / b > 3 * SD OR lo < blo AND sx / b - lo > "
    "3 * SD) THEN concat('2', lpad(TEXT(k), 3, '0'), 'token ', TEXT(k), ' ranged from ', NUM(lo), ' to ', "
    "NUM(hi), ' in the query''s time range, beyond 3 standard deviations of the baseline''s ', TEXT(b), "
    "' values (mean ', FIXED(sx / b), ', standard deviation ', FIXED(SD), ')') END "
    "WHEN bd <= 10 AND nv > 0 THEN concat('3', lpad(TEXT(k), 3, '0'), 'token ', TEXT(k), ' took ', TEXT(nv), "
    "' value(s) the baseline never had, such as ', nv1, ', where the baseline had ', TEXT(bd), ' distinct "
    "value(s)') END")


def _spelled(template: str, words: dict[str, str]) -> str:
    """``template`` with its placeholder words (``TEXT(``, ``SD``, ...) spelled for one dialect."""
    for word, spelling in words.items():
        template = template.replace(word, spelling)
    return template


_ANOMALY_KIND = (
    "CASE WHEN sum(n1) OVER () = 0 THEN NULL WHEN n1 = 0 THEN 'New pattern' WHEN tv LIKE '1%' THEN 'HTTP error code' "
    "WHEN tv LIKE '2%' THEN 'Numerical token' WHEN tv LIKE '3%' THEN 'Token variation' "
    "WHEN n0 >= 3 * n1 OR 3 * n0 <= n1 THEN 'Pattern frequency' END")
#: A pattern's description: its token anomaly's, else its two counts (the wording of apiary/query/insights_anomaly.py).
_ANOMALY_DESCRIPTION = (
    "CASE WHEN n1 > 0 AND tv IS NOT NULL THEN substring(tv, 5) ELSE concat('seen ', TEXT(n0), ' times in the "
    "query''s time range, ', TEXT(n1), ' times in the baseline just before it') END")
_ANOMALY_DUCKDB = (
    "WITH e AS (SELECT regexp_replace(message, '" + _TOKEN + "', '<*>', 'g') AS p, {now} AS cur, "
    "regexp_extract_all(message, '" + _TOKEN + "') AS t FROM logs WHERE {where_both}), "
    "u AS (SELECT p, cur, unnest(CASE WHEN len(t) = 0 THEN [0] ELSE range(1, least(len(t), 10) + 1) END) AS k, "
    "unnest(CASE WHEN len(t) = 0 THEN [''] ELSE t[1:10] END) AS v FROM e), "
    "vals AS (SELECT p, k, v, count(*) FILTER (WHERE cur) AS n0, count(*) FILTER (WHERE NOT cur) AS n1, "
    "CASE WHEN regexp_matches(v, '^[+-]?[0-9]+([.][0-9]+)?$') THEN TRY_CAST(v AS DOUBLE) END AS x, "
    "CASE WHEN regexp_matches(v, '^[1-5][0-9][0-9]$') THEN 1 ELSE 0 END AS h FROM u GROUP BY p, k, v), "
    "pos AS (SELECT p, k, sum(n0) AS w, sum(n1) AS b, count(*) FILTER (WHERE n1 > 0) AS bd, "
    "count(*) FILTER (WHERE n1 > 0 AND x IS NULL) AS bt, min(h) AS hh, sum(n0) FILTER (WHERE h = 1 AND x >= 400) AS e0, "
    "coalesce(sum(n1) FILTER (WHERE h = 1 AND x >= 400), 0) AS e1, sum(n1 * x) AS sx, sum(n1 * x * x) AS sxx, "
    "min(x) FILTER (WHERE n1 > 0) AS blo, max(x) FILTER (WHERE n1 > 0) AS bhi, min(x) FILTER (WHERE n0 > 0) AS lo, "
    "max(x) FILTER (WHERE n0 > 0) AS hi, count(*) FILTER (WHERE n0 > 0 AND n1 = 0) AS nv, "
    "min(v) FILTER (WHERE n0 > 0 AND n1 = 0) AS nv1 "
    "FROM vals GROUP BY p, k), "
    "verdicts AS (SELECT p, k, w, b, " + _spelled(_ANOMALY_VERDICT, {
        "MATCH(": "regexp_matches(", "TEXT(": "format('{{}}', ", "NUM(": "printf('%g', ",
        "SD": "sqrt(greatest(sxx / b - (sx / b) ** 2, 0))", "FIXED(": "printf('%.2f', "}) + " AS tv FROM pos), "
    "shapes AS (SELECT p, sum(w) FILTER (WHERE k <= 1) AS n0, sum(b) FILTER (WHERE k <= 1) AS n1, min(tv) AS tv "
    "FROM verdicts GROUP BY p) "
    "SELECT p, n0, n1, " + _ANOMALY_KIND + " AS kind, " + _spelled(_ANOMALY_DESCRIPTION, {"TEXT(": "format('{{}}', "})
    + " AS description FROM shapes ORDER BY n0 DESC")
_ANOMALY_CLICKHOUSE = (
    "WITH e AS (SELECT replaceRegexpAll(message, '" + _TOKEN + "', '<*>') AS p, {now} AS cur, "
    "extractAll(message, '" + _TOKEN + "') AS t FROM logs WHERE {where_both}), "
    "u AS (SELECT p, cur, kv.1 AS k, kv.2 AS v FROM e ARRAY JOIN arrayZip(if(empty(t), [0], range(1, "
    "least(length(t), 10) + 1)), if(empty(t), [''], arraySlice(t, 1, 10))) AS kv), "
    "vals AS (SELECT p, k, v, countIf(cur) AS n0, countIf(NOT cur) AS n1, "
    "if(match(v, '^[+-]?[0-9]+([.][0-9]+)?$'), toFloat64OrNull(v), NULL) AS x, "
    "if(match(v, '^[1-5][0-9][0-9]$'), 1, 0) AS h FROM u GROUP BY p, k, v), "
    "pos AS (SELECT p, k, sum(n0) AS w, sum(n1) AS b, countIf(n1 > 0) AS bd, countIf(n1 > 0 AND x IS NULL) AS bt, "
    "min(h) AS hh, sumIf(n0, h = 1 AND x >= 400) AS e0, sumIf(n1, h = 1 AND x >= 400) AS e1, sum(n1 * x) AS sx, "
    "sum(n1 * x * x) AS sxx, minIf(x, n1 > 0) AS blo, maxIf(x, n1 > 0) AS bhi, minIf(x, n0 > 0) AS lo, "
    "maxIf(x, n0 > 0) AS hi, countIf(n0 > 0 AND n1 = 0) AS nv, minIf(v, n0 > 0 AND n1 = 0) AS nv1 "
    "FROM vals GROUP BY p, k), "
    "verdicts AS (SELECT p, k, w, b, " + _spelled(_ANOMALY_VERDICT, {
        "MATCH(": "match(", "TEXT(": "toString(", "NUM(": "toString(",
        "SD": "sqrt(greatest(sxx / b - pow(sx / b, 2), 0))",
        "FIXED(": "printf('%.2f', "}) + " AS tv FROM pos), "
    "shapes AS (SELECT p, sumIf(w, k <= 1) AS n0, sumIf(b, k <= 1) AS n1, min(tv) AS tv FROM verdicts GROUP BY p) "
    "SELECT p, n0, n1, " + _ANOMALY_KIND + " AS kind, " + _spelled(_ANOMALY_DESCRIPTION, {"TEXT(": "toString("})
    + " AS description FROM shapes ORDER BY n0 DESC")


#: name -> (Insights query, DuckDB SQL, ClickHouse SQL); ``{where}`` is the same window and group for all.
#: The SQL gives the same answer as the query on any events, not only on these (the "JSON-only" rows excepted,
#: see `_FIELD`): the subnet test checks the address is one; dedup keeps the latest event's @timestamp, @message
#: and @ptr per level.
QUERIES: dict[str, tuple[str, str, str]] = {
    "strcontains": (
        'filter strcontains(@message, "ERROR") | stats count(*) as n',
        "SELECT count(*) FROM logs WHERE {where} AND contains(message, 'ERROR')",
        "SELECT count(*) FROM logs WHERE {where} AND position(message, 'ERROR') > 0"),
    "dotted key": (
        'filter user.id = "u7" | stats count(*) as n',
        "SELECT count(*) FROM logs WHERE {where} AND coalesce(CASE WHEN starts_with(message, '{{') AND "
        "json_valid(message) THEN json_extract_string(message, '$.user.id') END, "
        "json_extract_string(attributes, '$.\"user.id\"')) = 'u7'",
        "SELECT count(*) FROM logs WHERE {where} AND coalesce(nullIf(JSON_VALUE(message, '$.user.id'), ''), "
        "nullIf(JSON_VALUE(attributes, '$.\"user.id\"'), '')) = 'u7'"),
    "isIpv4InSubnet": (
        'filter isIpv4InSubnet(ip, "10.0.0.0/8") | stats count(*) as n by level',
        "SELECT level, count(*) FROM (SELECT {duck_level} AS level, {duck_ip} AS ip FROM logs WHERE {where}) "
        f"WHERE regexp_full_match(ip, '10{_OCTETS}') GROUP BY 1 ORDER BY 1",
        "SELECT level, count(*) FROM (SELECT {ch_level} AS level, {ch_ip} AS ip FROM logs WHERE {where}) "
        "WHERE isIPv4String(ip) AND isIPAddressInRange(ip, '10.0.0.0/8') GROUP BY 1 ORDER BY 1"),
    "datefloor": (
        "stats count(*) as n by datefloor(@timestamp, 1h)",
        "SELECT time_bucket(INTERVAL 1 hour, \"timestamp\") AS h, count(*) FROM logs WHERE {where} GROUP BY 1 ORDER BY 1",
        "SELECT toStartOfHour(`timestamp`) AS h, count(*) FROM logs WHERE {where} GROUP BY 1 ORDER BY 1"),
    "dedup": (
        "filter ispresent(level) | sort @timestamp desc | dedup level | limit 10",
        "SELECT max(ts) AS latest, arg_max(message, ts), arg_max(seq, ts) FROM (SELECT \"timestamp\" AS ts, message, seq, "
        "{duck_level} AS level FROM logs WHERE {where}) WHERE level IS NOT NULL GROUP BY level ORDER BY latest DESC LIMIT 10",
        "SELECT max(ts) AS latest, argMax(message, ts), argMax(seq, ts) FROM (SELECT `timestamp` AS ts, message, seq, "
        "{ch_level} AS level FROM logs WHERE {where}) WHERE level IS NOT NULL GROUP BY level ORDER BY latest DESC LIMIT 10"),
    "isIpv4InSubnet JSON-only": (
        'filter isIpv4InSubnet(ip, "10.0.0.0/8") | stats count(*) as n by level',
        "SELECT json_extract_string(message, '$.level') AS level, count(*) FROM logs WHERE {where} AND "
        "starts_with(message, '{{') AND json_valid(message) AND "
        f"regexp_full_match(json_extract_string(message, '$.ip'), '10{_OCTETS}') GROUP BY 1 ORDER BY 1",
        "SELECT JSON_VALUE(message, '$.level') AS level, count(*) FROM logs WHERE {where} AND "
        "isIPv4String(JSON_VALUE(message, '$.ip')) AND "
        "isIPAddressInRange(JSON_VALUE(message, '$.ip'), '10.0.0.0/8') GROUP BY 1 ORDER BY 1"),
    "dedup JSON-only": (
        "filter ispresent(level) | sort @timestamp desc | dedup level | limit 10",
        "SELECT max(\"timestamp\") AS ts, arg_max(message, \"timestamp\"), arg_max(seq, \"timestamp\") FROM logs "
        "WHERE {where} AND starts_with(message, '{{') AND json_valid(message) AND "
        "json_extract_string(message, '$.level') IS NOT NULL GROUP BY json_extract_string(message, '$.level') "
        "ORDER BY ts DESC LIMIT 10",
        "SELECT max(`timestamp`) AS ts, argMax(message, `timestamp`), argMax(seq, `timestamp`) FROM logs "
        "WHERE {where} AND JSON_VALUE(message, '$.level') != '' GROUP BY JSON_VALUE(message, '$.level') "
        "ORDER BY ts DESC LIMIT 10"),
    "lookup": (
        "lookup users id as user.id OUTPUT team | stats count(*) as n by team",
        "SELECT u.team, count(*) FROM (SELECT coalesce(CASE WHEN starts_with(message, '{{') AND json_valid(message) "
        "THEN json_extract_string(message, '$.user.id') END, json_extract_string(attributes, '$.\"user.id\"')) AS k "
        "FROM logs WHERE {where}) AS l LEFT JOIN (SELECT json_extract_string(row, '$.id') AS id, "
        "json_extract_string(row, '$.team') AS team FROM lookup_rows WHERE _env = 'bench' AND lookup_table = 'users') "
        "AS u ON l.k = u.id GROUP BY 1 ORDER BY 1",
        "SELECT u.team, count(*) FROM (SELECT coalesce(nullIf(JSON_VALUE(message, '$.user.id'), ''), "
        "nullIf(JSON_VALUE(attributes, '$.\"user.id\"'), '')) AS k FROM logs WHERE {where}) AS l LEFT JOIN "
        "(SELECT JSON_VALUE(row, '$.id') AS id, JSON_VALUE(row, '$.team') AS team FROM lookup_rows "
        "WHERE _env = 'bench' AND lookup_table = 'users') AS u ON l.k = u.id GROUP BY 1 ORDER BY 1"),
    # CWL_QuerySyntax-Subqueries: the events of the users who had a slow ERROR (u46..u49), counted per level
    "subquery": (
        'filter user.id in (SOURCE \'app\' | filter level = "ERROR" and latency > 995 | fields user.id) '
        "| stats count(*) as n by level",
        "SELECT level, count(*) FROM (SELECT {duck_level} AS level, {duck_user} AS u FROM logs WHERE {where}) "
        "WHERE u IN (SELECT u FROM (SELECT {duck_user} AS u, {duck_level} AS level, TRY_CAST({duck_latency} AS DOUBLE) "
        "AS latency FROM logs WHERE {where}) WHERE level = 'ERROR' AND latency > 995) GROUP BY 1 ORDER BY 1",
        "SELECT level, count(*) FROM (SELECT {ch_level} AS level, {ch_user} AS u FROM logs WHERE {where}) "
        "WHERE u IN (SELECT u FROM (SELECT {ch_user} AS u, {ch_level} AS level, accurateCastOrNull({ch_latency}, "
        "'Float64') AS latency FROM logs WHERE {where}) WHERE level = 'ERROR' AND latency > 995) GROUP BY 1 ORDER BY 1"),
    # CWL_QuerySyntax-Join: every event with its user's count of ERRORs (a query on the right), events per count
    "join": (
        "join left=e right=u where e.user.id=u.user.id (SOURCE 'app' | filter level = \"ERROR\" "
        "| stats count(*) as errors by user.id) | stats count(*) as n by u.errors",
        "SELECT r.errors, count(*) FROM (SELECT {duck_user} AS u FROM logs WHERE {where}) AS l JOIN "
        "(SELECT u, count(*) AS errors FROM (SELECT {duck_user} AS u, {duck_level} AS level FROM logs WHERE {where}) "
        "WHERE level = 'ERROR' GROUP BY u) AS r ON l.u = r.u GROUP BY 1 ORDER BY 1",
        "SELECT r.errors, count(*) FROM (SELECT {ch_user} AS u FROM logs WHERE {where}) AS l JOIN "
        "(SELECT u, count(*) AS errors FROM (SELECT {ch_user} AS u, {ch_level} AS level FROM logs WHERE {where}) "
        "WHERE level = 'ERROR' GROUP BY u) AS r ON l.u = r.u GROUP BY 1 ORDER BY 1"),
    "anomaly": ("pattern @message | anomaly", _ANOMALY_DUCKDB, _ANOMALY_CLICKHOUSE),
    # the hand-written SQL of `anomaly` before token anomalies: the counts per masked message in both windows only
    "anomaly counts only": (
        "pattern @message | anomaly",
        "SELECT regexp_replace(message, '[A-Za-z0-9_.:+-]*[0-9][A-Za-z0-9_.:+-]*', '<*>', 'g') AS p, "
        "count(*) FILTER (WHERE {now}) AS n0, count(*) FILTER (WHERE NOT ({now})) AS n1 "
        "FROM logs WHERE {where_both} GROUP BY 1 ORDER BY 2 DESC",
        "SELECT replaceRegexpAll(message, '[A-Za-z0-9_.:+-]*[0-9][A-Za-z0-9_.:+-]*', '<*>') AS p, "
        "countIf({now}) AS n0, countIf(NOT ({now})) AS n1 "
        "FROM logs WHERE {where_both} GROUP BY 1 ORDER BY 2 DESC"),
    "pattern": (
        "pattern @message",
        "SELECT regexp_replace(message, '[A-Za-z0-9_.:+-]*[0-9][A-Za-z0-9_.:+-]*', '<*>', 'g') AS p, count(*) "
        "FROM logs WHERE {where} GROUP BY 1 ORDER BY 2 DESC",
        "SELECT replaceRegexpAll(message, '[A-Za-z0-9_.:+-]*[0-9][A-Za-z0-9_.:+-]*', '<*>') AS p, count(*) "
        "FROM logs WHERE {where} GROUP BY 1 ORDER BY 2 DESC"),
}

#: name -> the Insights result's columns that answer the hand SQL's columns, in its order: the bench checks that the two
#: give the same rows before it compares their times (a faster SQL with another answer is no baseline).
ANSWERS: dict[str, tuple[str, ...]] = {
    "strcontains": ("n",), "dotted key": ("n",), "isIpv4InSubnet": ("level", "n"),
    "datefloor": ("datefloor(@timestamp, 1h)", "n"), "dedup": ("@timestamp", "@message", "@ptr"),
    "isIpv4InSubnet JSON-only": ("level", "n"), "dedup JSON-only": ("@timestamp", "@message", "@ptr"),
    "lookup": ("team", "n"),
    "anomaly": ("@pattern", "@sampleCount", "@baselineSampleCount", "@anomalyType", "@description"),
    "anomaly counts only": ("@pattern", "@sampleCount", "@baselineSampleCount"),
    "pattern": ("@pattern", "@sampleCount"),
    "subquery": ("level", "n"), "join": ("u.errors", "n"),
}


def _plain(value: Any) -> Any:
    """One value in a form both stores' results share: a time as seconds since the epoch (ClickHouse's
    ``toStartOfHour`` comes back as a number), numbers as floats, and text that is a number (``@ptr``) as one."""
    if isinstance(value, datetime):
        return round((value if value.tzinfo else value.replace(tzinfo=timezone.utc)).timestamp(), 6)
    if isinstance(value, (int, float, Decimal)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def same_answer(name: str, engine: Any, hand: Any) -> bool:
    """Whether the Insights result (an Arrow table) holds the hand SQL's rows, in any order."""
    picked = engine.select(list(ANSWERS[name])).to_pylist()
    def rows(table: list[dict[str, Any]]) -> list[tuple[str, ...]]:
        return sorted(tuple(repr(_plain(v)) for v in row.values()) for row in table)
    return rows(picked) == rows(hand.to_pylist())


#: A field as Insights discovers it: the line's JSON key, else the OTel attribute of that name (the SQL reads
#: both for the same answer on any events; the "JSON-only" rows, the earlier SQL, read the line alone). On
#: ClickHouse the attributes are read only where the line lacks the key, as ``multiIf`` does (``coalesce``
#: computes both: the slower spelling).
_FIELD = {
    "duckdb": ("coalesce(CASE WHEN starts_with(message, '{{') AND json_valid(message) THEN "
               "json_extract_string(message, '$.{key}') END, json_extract_string(attributes, '$.{key}'))"),
    "clickhouse": ("if(JSON_VALUE(message, '$.{key}') != '', JSON_VALUE(message, '$.{key}'), "
                   "nullIf(JSON_VALUE(attributes, '$.{key}'), ''))"),
}


#: ``user.id``: the nested key of a JSON line, else the OTel attribute with a dot in its key
_USER = {
    "duckdb": ("coalesce(CASE WHEN starts_with(message, '{') AND json_valid(message) THEN "
               "json_extract_string(message, '$.user.id') END, json_extract_string(attributes, '$.\"user.id\"'))"),
    "clickhouse": ("if(JSON_VALUE(message, '$.user.id') != '', JSON_VALUE(message, '$.user.id'), "
                   "nullIf(JSON_VALUE(attributes, '$.\"user.id\"'), ''))"),
}


def hand_sql(name: str, store: str, where: str, **windows: str) -> str:
    """The hand-written SQL of query ``name`` on ``store`` for the window and group ``where`` (``anomaly``'s two
    windows in ``windows``)."""
    _, duck, ch = QUERIES[name]
    fields = {f"{prefix}_{key}": _FIELD[kind].format(key=key)
              for prefix, kind in (("duck", "duckdb"), ("ch", "clickhouse")) for key in ("level", "ip", "latency")}
    fields.update(duck_user=_USER["duckdb"], ch_user=_USER["clickhouse"])
    return (duck if store == "duckdb" else ch).format(where=where, **windows, **fields)


_MESSAGE = {
    "duckdb": ("CASE WHEN i % 3 < 2 THEN '{{\"level\": \"' || (CASE WHEN i % 7 = 0 THEN 'ERROR' ELSE 'INFO' END) "
               "|| '\", \"latency\": ' || (i % 1000) || ', \"ip\": \"' || (CASE WHEN i % 2 = 0 THEN '10' ELSE '192' END) "
               "|| '.0.' || (i % 256) || '.' || (i % 200) || '\", \"user\": {{\"id\": \"u' || (i % 50) || '\"}}}}' "
               "ELSE (CASE WHEN i % 11 = 0 THEN 'ERROR' ELSE 'INFO' END) || ' handled request ' || i END"),
    "clickhouse": ("if(i % 3 < 2, concat('{{\"level\": \"', if(i % 7 = 0, 'ERROR', 'INFO'), '\", \"latency\": ', "
                   "toString(i % 1000), ', \"ip\": \"', if(i % 2 = 0, '10', '192'), '.0.', toString(i % 256), '.', "
                   "toString(i % 200), '\", \"user\": {{\"id\": \"u', toString(i % 50), '\"}}}}'), "
                   "concat(if(i % 11 = 0, 'ERROR', 'INFO'), ' handled request ', toString(i)))"),
}
_ATTRIBUTES = {
    "duckdb": "CASE WHEN i % 3 = 2 THEN '{{\"user.id\": \"u' || (i % 50) || '\"}}' END",
    "clickhouse": "if(i % 3 = 2, concat('{{\"user.id\": \"u', toString(i % 50), '\"}}'), NULL)",
}


def fill_duckdb(tmp: Path, n: int, start_us: int, fill: bool = True
                ) -> tuple[Any, Callable[[str], Any], Callable[[], None]]:
    """The DuckDB store in ``tmp``, its ``logs`` filled with ``n`` events from ``start_us`` unless ``fill`` is false
    (a store kept by an earlier run), a runner of raw SQL, and its closer."""
    from apiary.store.duckdb import DuckDBLogStore, DuckDBStore

    spans = DuckDBStore(tmp / "bench.duckdb")
    store = DuckDBLogStore(spans)
    step = DAY_S * 1_000_000 // n
    cur = spans.cursor()
    if fill:
        cur.execute(f"""INSERT INTO logs (_env, seq, "timestamp", ingestion_time, log_group, log_stream, message, attributes,
                    source) SELECT '{ENV}', i, make_timestamp({start_us} + i * {step}), make_timestamp({start_us}),
                    '{GROUP}', 's' || (i % 4), {_MESSAGE['duckdb'].format()}, {_ATTRIBUTES['duckdb'].format()},
                    'cloudwatch' FROM range({n}) t(i)""")

    def raw(sql: str) -> Any:
        return spans.cursor().execute(sql).to_arrow_table()

    def close() -> None:
        asyncio.run(store.close())
        spans.close_sync()
    return store, raw, close


def fill_clickhouse(tmp: Path, n: int, start_us: int, fill: bool = True
                    ) -> tuple[Any, Callable[[str], Any], Callable[[], None]]:
    """`fill_duckdb` for ClickHouse (chdb)."""
    from apiary.store.clickhouse import ClickHouseLogStore, connect

    client = connect(f"chdb://{tmp / 'chdb'}")
    store = ClickHouseLogStore(client, fsync=False)
    step = DAY_S * 1_000_000 // n
    if fill:
        client.command(f"""INSERT INTO logs (_env, seq, `timestamp`, ingestion_time, log_group, log_stream, message, attributes,
                       source) SELECT '{ENV}', i, fromUnixTimestamp64Micro(toInt64({start_us} + i * {step}), 'UTC'),
                       fromUnixTimestamp64Micro(toInt64({start_us}), 'UTC'), '{GROUP}', concat('s', toString(i % 4)),
                       {_MESSAGE['clickhouse'].format()}, {_ATTRIBUTES['clickhouse'].format()}, 'cloudwatch'
                       FROM (SELECT number AS i FROM numbers({n}))""")

    def raw(sql: str) -> Any:
        return client.query_arrow(sql)

    def close() -> None:
        asyncio.run(store.close())
        client.close()
    return store, raw, close


#: The lookup table of the `lookup` query: each of the 50 user ids of the events, one team per five of them.
USERS_CSV = "id,team\n" + "".join(f"u{i},team{i // 5}\n" for i in range(50))


def add_lookup_table(store: Any) -> None:
    """``users`` in the bench environment, through the store's own write path (as CreateLookupTable does)."""
    parsed = parse_csv(USERS_CSV)
    table = LookupTable("users", "", parsed.fields, len(parsed.rows), parsed.size_bytes, 0)
    asyncio.run(store.put_lookup_table(ENV, table, USERS_CSV, parsed))


#: Run in a child process with an earlier tree first on the path: that tree's statement for a query, as JSON (the
#: bench's lookup table's fields given, as the store would give them).
_COMPILE_THERE = """
import json, sys
sys.path.insert(0, sys.argv[1])
from apiary.query import insights
tables = json.loads(sys.argv[8])
c = insights.compile_query(sys.argv[2], None, sys.argv[3], lambda name: tables.get(name))
sql, params, _, _ = insights.to_sql(c, sys.argv[4], [sys.argv[5]], int(sys.argv[6]), int(sys.argv[7]))
print(json.dumps([sql, params]))
"""


def compiled_in(tree: Path, text: str, dialect: str, start_s: int, end_s: int) -> tuple[str, list[Any]]:
    """The SQL and parameters an earlier tree's ``apiary`` compiles ``text`` to (in a child process)."""
    out = subprocess.run([sys.executable, "-c", _COMPILE_THERE, str(tree.resolve()), text, dialect, ENV, GROUP,
                          str(start_s), str(end_s), json.dumps({"users": list(parse_csv(USERS_CSV).fields)})],
                         capture_output=True, text=True, check=True).stdout
    sql, params = json.loads(out)
    return sql, params


def _kept_window(folder: Path, events: int, start_s: int) -> tuple[int, int]:
    """The day the stores kept in ``folder`` hold (their events' times are fixed at the fill), as (start, end) in
    seconds; a folder filled with another number of events is refused rather than read as this one."""
    marker = folder / "window.json"
    if marker.exists():
        kept = json.loads(marker.read_text())
        if kept["events"] != events:
            sys.exit(f"{folder} holds {kept['events']:,} events, not {events:,}: give another --keep folder")
        start_s = kept["start_s"]
    else:
        marker.write_text(json.dumps({"events": events, "start_s": start_s}))
    return start_s, start_s + DAY_S


def _keeping(last: list[Any], i: int, fn: Callable[[], Any]) -> Callable[[], Any]:
    """``fn``, keeping its latest result in ``last[i]`` (the answers are compared after the timing, not run again)."""
    def call() -> Any:
        last[i] = fn()
        return last[i]
    return call


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=5, help="timed rounds (median reported)")
    ap.add_argument("--stores", default="duckdb,clickhouse")
    ap.add_argument("--only", default="", help="comma-separated query names (default: all), to stay within a minute")
    ap.add_argument("--baseline", type=Path, help="an earlier Apiary source tree: its statements timed in the same rounds")
    ap.add_argument("--keep", type=Path, help="a folder to fill each store in once and reuse in later runs with the "
                    "same --events (a 10 M fill takes minutes), instead of a temporary one")
    ap.add_argument("--show-sql", action="store_true", help="print each row's compiled statement and hand SQL")
    args = ap.parse_args()
    end_s = int(time.time())
    start_s = end_s - DAY_S
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        start_s, end_s = _kept_window(args.keep, args.events, start_s)
    print(f"N = {args.events:,} events over 24 h; median of {args.runs} interleaved rounds; "
          "ratio = Insights / hand-written SQL (goal <= 1.2)")
    differ = 0
    for name in args.stores.split(","):
        with tempfile.TemporaryDirectory() as tmp_name:
            t = time.perf_counter()
            fill = fill_duckdb if name == "duckdb" else fill_clickhouse
            folder = args.keep / name if args.keep else Path(tmp_name)
            filled = folder / "filled"
            folder.mkdir(exist_ok=True)
            store, raw, close = fill(folder, args.events, start_s * 1_000_000, not filled.exists())
            if filled.exists():
                print(f"\n{name}: kept in {folder}")
            else:
                add_lookup_table(store)
                filled.touch()
                print(f"\n{name}: filled in {time.perf_counter() - t:.1f} s")
            ts = '"timestamp"' if name == "duckdb" else "`timestamp`"

            def at(us: int) -> str:
                return (f"make_timestamp({us})" if name == "duckdb" else
                        f"fromUnixTimestamp64Micro(toInt64({us}), 'UTC')")
            def windows(first_s: int) -> dict[str, str]:
                """The hand SQL's conditions for a query from ``first_s`` to ``end_s``: ``where`` its window, and
                for `anomaly`, ``where_both`` with the baseline window before it and ``now`` the query's own."""
                before_s = first_s - (end_s - first_s + 1)

                def between(lo_s: int) -> str:
                    return (f"_env = '{ENV}' AND log_group = '{GROUP}' AND {ts} >= {at(lo_s * 1_000_000)} "
                            f"AND {ts} <= {at(end_s * 1_000_000 + 999_999)}")
                return {"where": between(first_s), "where_both": between(before_s),
                        "now": f"{ts} >= {at(first_s * 1_000_000)}"}
            before_head = f"{'before ms':>11}{'ratio':>8}{'now/before':>11}" if args.baseline else ""
            cpu_head = f"{'CPU ratio':>10}" + (f"{'now/before':>11}" if args.baseline else "")
            print(f"{'query':26}{'Insights ms':>13}{'SQL ms':>10}{'ratio':>8}{before_head}{cpu_head}  answer"
                  f"{'/before' if args.baseline else ''}")
            try:
                for label, (text, _, _) in QUERIES.items():
                    if args.only and label not in args.only.split(","):
                        continue
                    # `anomaly` looks at the last 12 h against the 12 h before (its baseline), both full of events
                    first_s = end_s - DAY_S // 2 + 1 if label.startswith("anomaly") else start_s

                    def via_insights(text: str = text, first_s: int = first_s) -> Any:
                        compiled = insights.compile_query(text, None, store.dialect,
                                                          insights.fields_of_lookup_tables(store, ENV))
                        sql, params, _, _ = insights.to_sql(compiled, ENV, [GROUP], first_s, end_s)
                        return store.query(sql, params)
                    hand = hand_sql(label, name, **windows(first_s))
                    if args.show_sql:
                        compiled = insights.compile_query(text, None, store.dialect,
                                                          insights.fields_of_lookup_tables(store, ENV))
                        print(f"-- {label}, Insights:\n{insights.to_sql(compiled, ENV, [GROUP], first_s, end_s)[0]}\n"
                              f"-- {label}, hand SQL:\n{hand}", flush=True)
                    fns = [via_insights, lambda hand=hand: raw(hand)]
                    if args.baseline:
                        then = compiled_in(args.baseline, text, store.dialect, first_s, end_s)
                        fns.append(lambda then=then: store.query(*then))
                    last: list[Any] = [None] * len(fns)
                    (mine, theirs, *before), cpu = interleaved_wall_and_cpu_ms(
                        [_keeping(last, i, fn) for i, fn in enumerate(fns)], args.runs)
                    answers = ["same" if same_answer(label, got, last[1]) else "DIFFERS" for got in last[::2]]
                    differ += answers.count("DIFFERS")
                    tail = f"{before[0]:11.1f}{before[0] / theirs:7.2f}x{mine / before[0]:10.2f}x" if before else ""
                    cpu_tail = f"{cpu[0] / cpu[1]:7.2f}x" + (f"{cpu[0] / cpu[2]:10.2f}x" if before else "")
                    print(f"{label:26}{mine:13.1f}{theirs:10.1f}{mine / theirs:7.2f}x{tail}{cpu_tail}  "
                          f"{'/'.join(answers)}", flush=True)
            finally:
                close()
    if differ:
        sys.exit(f"{differ} statement(s) gave another answer than the hand-written SQL: their ratio compares nothing")


if __name__ == "__main__":
    main()
