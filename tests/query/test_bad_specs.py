"""Specs Apiary cannot run get a 400 that names what to fix; none of them reaches the database as SQL text."""

from __future__ import annotations

import httpx
import pytest

from tests.query.conftest import Loaded

BAD = [
    ({"calculations": [{"op": "P91", "column": "duration_ms"}]}, "calculations[0].op: unknown op 'P91'"),
    ({"filters": [{"column": "name", "op": "like", "value": "x"}]}, "filters[0].op: unknown op 'like'"),
    ({"filters": [{"column": "no.such.column", "op": "=", "value": 1}]}, "unknown column 'no.such.column'"),
    ({"breakdowns": ["nope"]}, "breakdowns[0]: unknown column 'nope'"),
    ({"calculations": [{"op": "P90", "column": "http.route"}]}, "P90(http.route) needs a numeric column, but 'http.route' is a string"),
    ({"limit": 100000}, "limit: Input should be less than or equal to 10000"),
    ({"start_time": 2000, "end_time": 1000}, "end_time must be after start_time"),
    ({"start_time": 1000, "end_time": 2000, "time_range": 1000}, "not with both"),
    ({"granularity": 1}, "granularity: 1 s is outside"),
    ({"orders": [{"op": "MAX", "column": "duration_ms"}]}, "MAX(duration_ms) is not a calculation of this query"),
    ({"orders": [{"column": "name"}]}, "'name' is neither a breakdown nor a calculation"),
    ({"havings": [{"calculate_op": "COUNT", "op": "~", "value": 1}]}, "havings[0].op: unknown op '~'"),
    ({"filters": [{"column": "duration_ms", "op": ">", "value": "1; DROP TABLE spans"}]}, "is not a number"),
    ({"breakdowns": ["x"] * 101}, "breakdowns: List should have at most 100 items"),
    ({"calculations": [{"op": "COUNT"}], "bogus": 1}, "bogus: unknown field"),
    ({"filters": [{"column": "name", "op": "exists", "value": "x"}]}, "exists takes no value"),
    ({"filters": [{"column": "name", "op": "in", "value": "x"}]}, "in needs a non-empty list"),
    ({"calculated_fields": [{"name": "c", "expression": "NOPE($duration_ms)"}], "breakdowns": ["c"]}, "unknown function NOPE"),
]


@pytest.mark.parametrize("spec,message", BAD, ids=[m[:40] for _, m in BAD])
def test_bad_spec_is_a_400_naming_the_problem(loaded: Loaded, spec: dict, message: str) -> None:
    r = loaded.create("backend-flask", {"time_range": 3600, **spec} if "start_time" not in spec else spec)
    assert r.status_code == 400, r.text
    assert message in r.json()["error"]


def test_unknown_dataset_is_404_and_missing_key_is_401(loaded: Loaded) -> None:
    assert loaded.create("no-such-service", {}).status_code == 404
    r = httpx.post(f"{loaded.server.url}/1/queries/backend-flask", json={})
    assert r.status_code == 401
    r = httpx.post(f"{loaded.server.url}/1/query_results/backend-flask", json={"query_id": "nope"}, headers=loaded.headers())
    assert r.status_code == 404


def test_sql_never_holds_a_value() -> None:
    from datetime import datetime

    from apiary.query.dialects.duckdb import DuckDBDialect
    from apiary.query.planner import Catalogue, build_plan
    from apiary.query.spec import parse_spec
    from apiary.store.base import ColumnInfo

    now = datetime(2024, 1, 1)
    cat = Catalogue([ColumnInfo("app.note", "string", now, now, "a1"), ColumnInfo("app.deep", "string", now, now, "_attrs", "app.deep")],
                    "dataset 'x'")
    evil = "'); DROP TABLE spans; --"
    spec = parse_spec({"start_time": 0, "end_time": 3600, "calculations": [{"op": "COUNT"}],
                       "filters": [{"column": "app.note", "op": "=", "value": evil},
                                   {"column": "app.deep", "op": "in", "value": [evil, "b"]},
                                   {"column": "name", "op": "starts-with", "value": evil}],
                       "havings": [{"calculate_op": "COUNT", "op": ">", "value": 5}], "breakdowns": ["app.deep"]})
    plan = build_plan(spec, cat, "dev", ("x",), spec.window())
    compiled = DuckDBDialect().summary(plan)
    assert evil not in compiled.sql and "DROP" not in compiled.sql
    assert compiled.params.count(evil) == 3
    assert "/app.deep" in compiled.params  # the JSON key travels as a parameter too
