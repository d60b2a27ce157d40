"""Honeycomb queries over spans sent by the real OTel SDK: every answer checked against Python on the same spans."""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import numpy as np
import pytest

from tests.query.conftest import AGENTS, SQLISH, Loaded


def only(data: dict[str, Any]) -> dict[str, Any]:
    assert len(data["results"]) == 1, data["results"]
    return data["results"][0]["data"]


def count_where(loaded: Loaded, spec_filters: list[dict[str, Any]], combination: str = "AND") -> int:
    data = loaded.query({"calculations": [{"op": "COUNT"}], "filters": spec_filters, "filter_combination": combination})
    return data["results"][0]["data"]["COUNT"] if data["results"] else 0


def test_count_sum_min_max_avg_match_the_spans_sent(loaded: Loaded) -> None:
    mine = loaded.where(lambda s: True)
    durations = [s["duration_ms"] for s in mine]
    row = only(loaded.query({"calculations": [{"op": "COUNT"}, {"op": "SUM", "column": "duration_ms"},
                                              {"op": "MIN", "column": "duration_ms"}, {"op": "MAX", "column": "duration_ms"},
                                              {"op": "AVG", "column": "duration_ms"}]}))
    assert row["COUNT"] == len(mine) == 240
    assert row["SUM(duration_ms)"] == pytest.approx(sum(durations))
    assert row["MIN(duration_ms)"] == min(durations)
    assert row["MAX(duration_ms)"] == max(durations)
    assert row["AVG(duration_ms)"] == pytest.approx(sum(durations) / len(durations))
    every = only(loaded.query({"calculations": [{"op": "COUNT"}]}, dataset="__all__"))
    assert every["COUNT"] == len(loaded.spans) == 260


@pytest.mark.parametrize("op", ["P001", "P01", "P05", "P10", "P25", "P50", "P75", "P90", "P95", "P99", "P999"])
def test_percentiles_equal_numpy_linear_interpolation(loaded: Loaded, op: str) -> None:
    from apiary.query.spec import PERCENTILES

    durations = np.array([s["duration_ms"] for s in loaded.where(lambda s: True)])
    row = only(loaded.query({"calculations": [{"op": op, "column": "duration_ms"}]}))
    # DuckDB's quantile_cont interpolates linearly between closest ranks: numpy's default method="linear".
    assert row[f"{op}(duration_ms)"] == pytest.approx(np.percentile(durations, PERCENTILES[op] * 100, method="linear"))


def test_count_distinct_of_trace_ids(loaded: Loaded) -> None:
    traces = {s["trace.trace_id"] for s in loaded.where(lambda s: True)}
    row = only(loaded.query({"calculations": [{"op": "COUNT_DISTINCT", "column": "trace.trace_id"},
                                              {"op": "COUNT_DISTINCT", "column": "http.route"}]}))
    assert row["COUNT_DISTINCT(http.route)"] == 3
    # DuckDB's HyperLogLog: standard error ~3%, measured worst case ~7% (docs/query.md).
    assert abs(row["COUNT_DISTINCT(trace.trace_id)"] - len(traces)) <= 0.10 * len(traces)


def test_heatmap_buckets_add_up_to_count_per_time_bucket_and_overall(loaded: Loaded) -> None:
    data = loaded.query({"calculations": [{"op": "HEATMAP", "column": "duration_ms"}, {"op": "COUNT"},
                                          {"op": "P90", "column": "duration_ms"}], "granularity": 300})
    row = only(data)
    assert sum(row["HEATMAP(duration_ms)"]) == row["COUNT"] == 240
    for point in data["series"]:
        assert sum(point["data"]["HEATMAP(duration_ms)"]) == point["data"]["COUNT"]
    hm = data["heatmaps"]["HEATMAP(duration_ms)"]
    assert hm["buckets"][0]["lower"] == min(s["duration_ms"] for s in loaded.where(lambda s: True))
    assert hm["buckets"][-1]["upper"] == max(s["duration_ms"] for s in loaded.where(lambda s: True))
    assert sum(c["count"] for c in hm["cells"]) == 240
    ids = {s["trace.trace_id"] for s in loaded.spans}
    assert all(c["trace_id"] in ids for c in hm["cells"])  # each cell can jump to a trace


def test_heatmap_by_group_counts_every_cell_of_every_group_and_point(loaded: Loaded) -> None:
    data = loaded.query({"calculations": [{"op": "HEATMAP", "column": "duration_ms"}], "breakdowns": ["http.route"],
                         "granularity": 360})
    hm = data["heatmaps"]["HEATMAP(duration_ms)"]
    lo, n = hm["buckets"][0]["lower"], len(hm["buckets"])
    step = (hm["buckets"][-1]["upper"] - lo) / n

    def cell(d: float) -> int:
        return min(math.floor((d - lo) / step), n - 1)  # as the SQL does: floor of the divided value

    expected: Counter = Counter()
    for s in loaded.where(lambda s: True):
        expected[(int((s["timestamp"] - loaded.start) // 360), s.get("http.route"), cell(s["duration_ms"]))] += 1
    routes = [r["data"]["http.route"] for r in data["results"]]
    assert None in routes and len(routes) == len(set(routes)) >= 3
    for r in data["results"]:
        route = r["data"]["http.route"]
        assert r["data"]["HEATMAP(duration_ms)"] == [sum(v for (_, g, c), v in expected.items() if g == route and c == k)
                                                     for k in range(n)]
    assert len(data["series"]) == 10 * len(routes)
    for i, point in enumerate(data["series"]):
        bucket, g = divmod(i, len(routes))
        assert point["data"]["http.route"] == routes[g]
        assert point["data"]["HEATMAP(duration_ms)"] == [expected.get((bucket, routes[g], k), 0) for k in range(n)]
    cells = hm["cells"]
    assert [(c["time"], c["bucket"]) for c in cells] == sorted((c["time"], c["bucket"]) for c in cells)
    times = sorted({p["time"] for p in data["series"]})
    assert Counter({(times.index(c["time"]), c["http.route"], c["bucket"]): c["count"] for c in cells}) == expected


FILTER_CASES = [
    ({"column": "http.status_code", "op": "=", "value": 200}, lambda s: s.get("http.status_code") == 200),
    ({"column": "http.status_code", "op": "!=", "value": 200}, lambda s: s.get("http.status_code") not in (None, 200)),
    ({"column": "http.status_code", "op": ">", "value": 404}, lambda s: (s.get("http.status_code") or 0) > 404),
    ({"column": "http.status_code", "op": ">=", "value": 404}, lambda s: (s.get("http.status_code") or 0) >= 404),
    ({"column": "duration_ms", "op": "<", "value": 21}, lambda s: s["duration_ms"] < 21),
    ({"column": "duration_ms", "op": "<=", "value": 21}, lambda s: s["duration_ms"] <= 21),
    ({"column": "http.status_code", "op": "=", "value": "404"}, lambda s: s.get("http.status_code") == 404),
    ({"column": "name", "op": "starts-with", "value": "GET /api/m"}, lambda s: s["name"].startswith("GET /api/m")),
    ({"column": "name", "op": "does-not-start-with", "value": "GET"}, lambda s: not s["name"].startswith("GET")),
    ({"column": "http.route", "op": "ends-with", "value": "home"}, lambda s: str(s.get("http.route", "")).endswith("home")),
    ({"column": "http.route", "op": "does-not-end-with", "value": "home"},
     lambda s: "http.route" in s and not s["http.route"].endswith("home")),
    ({"column": "http.user_agent", "op": "contains", "value": "Firefox"}, lambda s: "Firefox" in s.get("http.user_agent", "")),
    ({"column": "http.user_agent", "op": "does-not-contain", "value": "Firefox"},
     lambda s: "http.user_agent" in s and "Firefox" not in s["http.user_agent"]),
    ({"column": "app.user_id", "op": "exists"}, lambda s: "app.user_id" in s),
    ({"column": "app.user_id", "op": "does-not-exist"}, lambda s: "app.user_id" not in s),
    ({"column": "trace.parent_id", "op": "does-not-exist"}, lambda s: s["trace.parent_id"] is None),
    ({"column": "trace.parent_id", "op": "exists"}, lambda s: s["trace.parent_id"] is not None),
    ({"column": "app.user_id", "op": "in", "value": ["user0", "user2"]}, lambda s: s.get("app.user_id") in ("user0", "user2")),
    ({"column": "app.user_id", "op": "not-in", "value": ["user0", "user2"]},
     lambda s: "app.user_id" in s and s["app.user_id"] not in ("user0", "user2")),
    ({"column": "http.status_code", "op": "in", "value": [404, 500]}, lambda s: s.get("http.status_code") in (404, 500)),
    ({"column": "db.rows", "op": ">", "value": 6.5}, lambda s: s.get("db.rows", -1) > 6.5),
]


@pytest.mark.parametrize("spec_filter,pred", FILTER_CASES, ids=[f"{c[0]['op']}:{c[0]['column']}" for c in FILTER_CASES])
def test_every_filter_operator(loaded: Loaded, spec_filter: dict[str, Any], pred: Any) -> None:
    expected = len(loaded.where(pred))
    assert expected > 0, "the fixture should make every case match something"
    assert count_where(loaded, [spec_filter]) == expected


def test_and_or_combinations(loaded: Loaded) -> None:
    a = {"column": "http.status_code", "op": "=", "value": 500}
    b = {"column": "app.user_id", "op": "exists"}
    both = len(loaded.where(lambda s: s.get("http.status_code") == 500 and "app.user_id" in s))
    either = len(loaded.where(lambda s: s.get("http.status_code") == 500 or "app.user_id" in s))
    assert 0 < both < either
    assert count_where(loaded, [a, b], "AND") == both
    assert count_where(loaded, [a, b], "OR") == either


def test_breakdown_on_two_columns_with_nulls(loaded: Loaded) -> None:
    data = loaded.query({"calculations": [{"op": "COUNT"}], "breakdowns": ["http.route", "app.user_id"], "limit": 1000})
    got = {(r["data"]["http.route"], r["data"]["app.user_id"]): r["data"]["COUNT"] for r in data["results"]}
    expected = Counter((s.get("http.route"), s.get("app.user_id")) for s in loaded.where(lambda s: True))
    assert got == dict(expected)
    assert (None, None) in got  # the db spans have neither attribute
    counts = [r["data"]["COUNT"] for r in data["results"]]
    assert counts == sorted(counts, reverse=True)  # default order: first calculation, descending


def test_orders_havings_and_limits(loaded: Loaded) -> None:
    spec = {"calculations": [{"op": "COUNT"}, {"op": "MAX", "column": "duration_ms"}], "breakdowns": ["name"],
            "orders": [{"op": "MAX", "column": "duration_ms", "order": "descending"}]}
    rows = [r["data"] for r in loaded.query(spec)["results"]]
    assert [r["MAX(duration_ms)"] for r in rows] == sorted((r["MAX(duration_ms)"] for r in rows), reverse=True)
    by_name = loaded.query({**spec, "orders": [{"column": "name", "order": "ascending"}]})["results"]
    assert [r["data"]["name"] for r in by_name] == sorted(r["data"]["name"] for r in by_name)
    limited = loaded.query({**spec, "limit": 2})["results"]
    assert [r["data"] for r in limited] == rows[:2]
    having = loaded.query({**spec, "havings": [{"calculate_op": "COUNT", "op": ">", "value": 40}]})["results"]
    expected = {n for n, c in Counter(s["name"] for s in loaded.where(lambda s: True)).items() if c > 40}
    assert {r["data"]["name"] for r in having} == expected and expected


def test_granularity_buckets_one_point_per_bucket(loaded: Loaded) -> None:
    data = loaded.query({"calculations": [{"op": "COUNT"}], "granularity": 60})
    assert data["granularity"] == 60
    assert len(data["series"]) == 60  # a 3600 s window in 60 s buckets, empty ones included
    assert sum(p["data"]["COUNT"] for p in data["series"]) == 240
    expected = Counter(int((s["timestamp"] - loaded.start) // 60) for s in loaded.where(lambda s: True))
    assert [p["data"]["COUNT"] for p in data["series"]] == [expected.get(i, 0) for i in range(60)]
    grouped = loaded.query({"calculations": [{"op": "COUNT"}], "breakdowns": ["http.route"], "granularity": 360})
    assert len(grouped["series"]) == 10 * len(grouped["results"]) == 10 * 4


def test_series_points_per_group_and_bucket_with_null_groups(loaded: Loaded) -> None:
    data = loaded.query({"calculations": [{"op": "COUNT"}, {"op": "MAX", "column": "duration_ms"}],
                         "breakdowns": ["http.route", "http.status_code"], "granularity": 360})
    groups = [(r["data"]["http.route"], r["data"]["http.status_code"]) for r in data["results"]]
    assert (None, None) in groups  # the db spans carry neither attribute: a group of their own
    mine = loaded.where(lambda s: True)
    count: Counter = Counter()
    longest: dict[tuple[Any, ...], float] = {}
    for s in mine:
        key = (int((s["timestamp"] - loaded.start) // 360), s.get("http.route"), s.get("http.status_code"))
        count[key] += 1
        longest[key] = max(longest.get(key, 0.0), s["duration_ms"])
    assert len(data["series"]) == 10 * len(groups)  # every bucket of every group, empty ones included
    for i, point in enumerate(data["series"]):
        bucket, g = divmod(i, len(groups))
        p = point["data"]
        assert (p["http.route"], p["http.status_code"]) == groups[g]
        assert p["COUNT"] == count.get((bucket, *groups[g]), 0)
        assert p["MAX(duration_ms)"] == longest.get((bucket, *groups[g]))


def test_calculated_field(loaded: Loaded) -> None:
    data = loaded.query({"calculated_fields": [{"name": "slow", "expression": 'IF(GTE($duration_ms, 100), "slow", "fast")'},
                                               {"name": "us", "expression": "MUL($duration_ms, 1000)"}],
                         "calculations": [{"op": "COUNT"}, {"op": "MAX", "column": "us"}], "breakdowns": ["slow"]})
    got = {r["data"]["slow"]: r["data"]["COUNT"] for r in data["results"]}
    mine = loaded.where(lambda s: True)
    assert got == {"slow": sum(s["duration_ms"] >= 100 for s in mine), "fast": sum(s["duration_ms"] < 100 for s in mine)}
    assert max(r["data"]["MAX(us)"] for r in data["results"]) == max(s["duration_ms"] for s in mine) * 1000


def test_sql_looking_values_are_compared_literally(loaded: Loaded) -> None:
    assert count_where(loaded, [{"column": "app.note", "op": "=", "value": SQLISH}]) == 1
    assert count_where(loaded, [{"column": "http.route", "op": "=", "value": "x' OR '1'='1"}]) == 0
    assert count_where(loaded, [{"column": "http.route", "op": "contains", "value": "%"}]) == 0
    assert only(loaded.query({"calculations": [{"op": "COUNT"}]}))["COUNT"] == 240  # the table is still there


def test_results_carry_example_trace_ids(loaded: Loaded) -> None:
    data = loaded.query({"calculations": [{"op": "COUNT"}], "breakdowns": ["http.route"],
                         "filters": [{"column": "http.route", "op": "exists"}]})
    for r in data["results"]:
        assert 1 <= len(r["examples"]) <= 3
        routes = {s.get("http.route") for s in loaded.spans if s["trace.trace_id"] in r["examples"] and s["root"]}
        assert routes == {r["data"]["http.route"]}


def test_concurrency_and_rates(loaded: Loaded) -> None:
    row = only(loaded.query({"calculations": [{"op": "CONCURRENCY"}, {"op": "RATE_MAX", "column": "db.rows"}]}))
    mine = loaded.where(lambda s: True)
    events = sorted([(s["start_ns"], 1) for s in mine] + [(s["start_ns"] + int(s["duration_ms"] * 1e6), -1) for s in mine],
                    key=lambda e: (e[0], e[1]))
    running, peak = 0, 0
    for _, d in events:
        running += d
        peak = max(peak, running)
    assert row["CONCURRENCY"] == peak
    rows = sorted((s["start_ns"], s["db.rows"]) for s in mine if "db.rows" in s)
    rates = [(b[1] - a[1]) / ((b[0] - a[0]) / 1e9) for a, b in zip(rows, rows[1:]) if b[0] != a[0]]
    assert row["RATE_MAX(db.rows)"] == pytest.approx(max(rates), rel=1e-4)  # timestamps are kept to the microsecond


# -- the Cruddur guides' queries -------------------------------------------------------------------


def test_guide_heatmap_of_duration_with_p90(loaded: Loaded) -> None:
    data = loaded.query({"calculations": [{"op": "HEATMAP", "column": "duration_ms"}, {"op": "P90", "column": "duration_ms"}]})
    row = only(data)
    durations = [s["duration_ms"] for s in loaded.where(lambda s: True)]
    assert sum(row["HEATMAP(duration_ms)"]) == len(durations)
    assert row["P90(duration_ms)"] == pytest.approx(np.percentile(durations, 90))


def test_guide_group_by_trace_id(loaded: Loaded) -> None:
    data = loaded.query({"calculations": [{"op": "COUNT"}], "breakdowns": ["trace.trace_id"], "limit": 1000})
    got = {r["data"]["trace.trace_id"]: r["data"]["COUNT"] for r in data["results"]}
    assert got == dict(Counter(s["trace.trace_id"] for s in loaded.where(lambda s: True)))
    assert all(r["examples"] == [r["data"]["trace.trace_id"]] for r in data["results"])


def test_guide_max_result_length(loaded: Loaded) -> None:
    row = only(loaded.query({"calculations": [{"op": "MAX", "column": "app.result_length"}]}))
    assert row["MAX(app.result_length)"] == max(s["app.result_length"] for s in loaded.where(lambda s: "app.result_length" in s))


def test_guide_status_codes_not_200(loaded: Loaded) -> None:
    data = loaded.query({"calculations": [{"op": "COUNT"}], "breakdowns": ["http.status_code"],
                         "filters": [{"column": "http.status_code", "op": "!=", "value": 200}]})
    assert {r["data"]["http.status_code"]: r["data"]["COUNT"] for r in data["results"]} == {404: 10, 500: 10}


def test_guide_root_spans_of_backend_grouped_by_user_agent_descending(loaded: Loaded) -> None:
    data = loaded.query({"calculations": [{"op": "COUNT"}], "breakdowns": ["http.user_agent"],
                         "filters": [{"column": "trace.parent_id", "op": "does-not-exist"}],
                         "orders": [{"op": "COUNT", "order": "descending"}]})
    got = [(r["data"]["http.user_agent"], r["data"]["COUNT"]) for r in data["results"]]
    assert sorted(got) == sorted((a, 60) for a in AGENTS)


def test_guide_latency_by_user_id(loaded: Loaded) -> None:
    data = loaded.query({"calculations": [{"op": "P90", "column": "duration_ms"}, {"op": "AVG", "column": "duration_ms"}],
                         "breakdowns": ["app.user_id"], "filters": [{"column": "app.user_id", "op": "exists"}]})
    for r in data["results"]:
        mine = [s["duration_ms"] for s in loaded.where(lambda s: s.get("app.user_id") == r["data"]["app.user_id"])]
        assert r["data"]["P90(duration_ms)"] == pytest.approx(np.percentile(mine, 90))
        assert r["data"]["AVG(duration_ms)"] == pytest.approx(sum(mine) / len(mine))
    assert len(data["results"]) == 5


def test_guide_recent_traces(loaded: Loaded) -> None:
    data = loaded.query({"calculations": [{"op": "MAX", "column": "timestamp_s"}, {"op": "COUNT"}],
                         "calculated_fields": [{"name": "timestamp_s", "expression": "EVENT_TIMESTAMP()"}],
                         "breakdowns": ["trace.trace_id"], "filters": [{"column": "trace.parent_id", "op": "does-not-exist"}],
                         "orders": [{"op": "MAX", "column": "timestamp_s", "order": "descending"}], "limit": 10})
    roots = sorted(loaded.where(lambda s: s["root"]), key=lambda s: s["start_ns"], reverse=True)[:10]
    assert [r["data"]["trace.trace_id"] for r in data["results"]] == [s["trace.trace_id"] for s in roots]


def test_sum_of_an_integer_column_is_a_number(loaded: Loaded) -> None:
    """DuckDB sums BIGINTs to a 128-bit integer, which once reached the JSON encoder as a Decimal and answered 500."""
    lengths = [s["attrs"]["app.result_length"] for s in loaded.where(lambda s: "app.result_length" in s["attrs"])]
    row = only(loaded.query({"calculations": [{"op": "SUM", "column": "app.result_length"},
                                              {"op": "AVG", "column": "app.result_length"}]}))
    assert row["SUM(app.result_length)"] == sum(lengths) and isinstance(row["SUM(app.result_length)"], int)
    assert row["AVG(app.result_length)"] == pytest.approx(sum(lengths) / len(lengths))
    grouped = loaded.query({"calculations": [{"op": "SUM", "column": "http.status_code"}], "breakdowns": ["http.route"],
                            "granularity": 300})
    for result in grouped["results"]:
        route = result["data"]["http.route"]
        codes = [s["attrs"]["http.status_code"] for s in loaded.where(lambda s: s["attrs"].get("http.route") == route)
                 if "http.status_code" in s["attrs"]]
        assert result["data"]["SUM(http.status_code)"] == (sum(codes) if codes else None)
    assert grouped["series"]
