"""Hypothesis over calculated-field expressions, relational fields and the query specs that use them, on both stores:
201 or 400, never 500.

Expressions are built from Honeycomb's derived column functions with arguments of every type (columns of
each type, literals, nulls, raw strings, nested calls), used as a breakdown, a filter, a calculation and an
order, so each reaches SQL in every position a query puts it.
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from apiary.query.calculated import FUNCTIONS
from apiary.query.spec import CALCULATION_OPS
from tests.stores import StoreServer, Tenant

DATASET = "fuzz-calc"
COLUMNS = ["$duration_ms", "$n", "$s", "$ok", "$t", "$j", "$nope", "$meta.sample_rate", "$timestamp"]
FUZZ = settings(max_examples=60, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

literals = st.sampled_from(["0", "1", "-1", "2.5", "9223372036854775807", "-9223372036854775808", "1e308", "true",
                            "false", "null", '""', '"x"', '"200"', '"%Y-%m-%d"', '"%Q"', "`[0-9]+`", "`(`", '"bytes"',
                            "`(a)(b)`", '"2024-01-02T03:04:05Z"'])
leaves = st.sampled_from(COLUMNS) | literals
expressions = st.recursive(
    leaves, lambda inner: st.builds(lambda fn, args, comma: f"{fn}({', '.join(args)}{',' if comma and args else ''})",
                                    st.sampled_from([*FUNCTIONS, "NOPE", "if"]),
                                    st.lists(inner, max_size=5), st.booleans()),
    max_leaves=12)
uses = st.sampled_from(["breakdown", "filter", "calculation", "order"])



@pytest.fixture(scope="module")
def seeded(store_server: StoreServer) -> Tenant:
    t = store_server.take()
    now = time.time()
    events = [{"data": {"duration_ms": i * 1.5, "n": i - 2, "s": f"v{i}", "ok": i % 2 == 0, "t": f"2024-01-0{i + 1}",
                        "j": {"k": [i]}}, "time": now - 30 + i, **({"samplerate": i + 1} if i % 2 else {})}
              for i in range(5)]
    r = httpx.post(f"{t.url}/1/batch/{DATASET}", json=events, headers={"X-Honeycomb-Team": t.key})
    assert r.status_code == 200 and [a["status"] for a in r.json()] == [202] * 5
    return t


def spec_for(expression: str, use: str, op: str) -> dict[str, Any]:
    spec: dict[str, Any] = {"time_range": 600, "calculated_fields": [{"name": "c", "expression": expression}]}
    if use == "breakdown":
        spec.update(breakdowns=["c"], orders=[{"column": "c", "order": "descending"}])
    elif use == "filter":
        spec["filters"] = [{"column": "c", "op": "exists"}, {"column": "c", "op": "!=", "value": "1"}]
    elif use == "calculation":
        spec["calculations"] = [{"op": op, "column": "c"}]
    else:
        spec.update(calculations=[{"op": "MAX", "column": "c"}], orders=[{"op": "MAX", "column": "c"}])
    return spec


@FUZZ
@given(expressions, uses, st.sampled_from([op for op in CALCULATION_OPS if op not in ("COUNT", "CONCURRENCY")]))
@example("MOD($n, 0)", "breakdown", "SUM")
@example("SUM(9223372036854775807, $n)", "calculation", "SUM")
@example("MUL(-9223372036854775808, -1)", "breakdown", "SUM")
@example("ABS(-9223372036854775808)", "breakdown", "SUM")
@example("POW(10, 1e308)", "calculation", "AVG")
@example("LOG10(SUB(0, $duration_ms))", "calculation", "P99")
@example('FORMAT_TIME("%Y", 1e308)', "breakdown", "SUM")
@example("SUBSTRING($s, 9223372036854775807, -1)", "breakdown", "SUM")
@example("INT(1e308)", "breakdown", "SUM")
@example("IF($s, $n, $ok, $s, $j)", "breakdown", "SUM")
@example("COALESCE($timestamp, $n, $s)", "breakdown", "SUM")
@example("BUCKET($s, $n, $ok, $t)", "calculation", "HEATMAP")
@example("UNIX_TIMESTAMP($t)", "calculation", "P50")
@example("REG_COUNT($s, ``)", "breakdown", "SUM")
def test_calculated_fields_answer_or_refuse(seeded: Tenant, expression: str, use: str, op: str) -> None:
    headers = {"X-Honeycomb-Team": seeded.key}
    created = httpx.post(f"{seeded.url}/1/queries/{DATASET}", json=spec_for(expression, use, op), headers=headers,
                         timeout=60)
    assert created.status_code in (200, 400), f"{expression}: {created.status_code} {created.text[:300]}"
    if created.status_code == 400:
        assert json.loads(created.text)["error"]
        return
    ran = httpx.post(f"{seeded.url}/1/query_results/{DATASET}", json={"query_id": created.json()["id"]},
                     headers=headers, timeout=60)
    assert ran.status_code in (201, 400), f"{expression} as {use}/{op}: {ran.status_code} {ran.text[:300]}"


relational_names = st.builds(lambda prefix, column: prefix + column,
                             st.sampled_from(["root.", "any.", "none.", "parent.", "any2.", ""]),
                             st.sampled_from(["duration_ms", "n", "s", "ok", "j", "timestamp", "nope", "trace.parent_id"]))
filter_values = st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False,
                                                                                         allow_infinity=False) | st.text(max_size=5)


@FUZZ
@given(st.lists(st.fixed_dictionaries({"column": relational_names, "op": st.sampled_from(["=", "!=", ">", "exists",
                                                                                         "does-not-exist", "in",
                                                                                         "contains"])},
                                      optional={"value": filter_values}), max_size=3),
       st.lists(relational_names, max_size=2), st.sampled_from(["AND", "OR"]),
       st.sampled_from(["COUNT", "P50", "SUM", "HEATMAP"]))
def test_relational_specs_answer_or_refuse(seeded: Tenant, filters: list[dict[str, Any]], breakdowns: list[str],
                                           combination: str, op: str) -> None:
    for f in filters:
        if f["op"] == "in" and "value" in f:
            f["value"] = [f["value"]]
    calc = {"op": op} if op == "COUNT" else {"op": op, "column": "duration_ms"}
    spec = {"time_range": 600, "filters": filters, "breakdowns": breakdowns, "filter_combination": combination,
            "calculations": [calc]}
    headers = {"X-Honeycomb-Team": seeded.key}
    created = httpx.post(f"{seeded.url}/1/queries/{DATASET}", json=spec, headers=headers, timeout=60)
    assert created.status_code in (200, 400), f"{spec}: {created.status_code} {created.text[:300]}"
    if created.status_code == 400:
        return
    ran = httpx.post(f"{seeded.url}/1/query_results/{DATASET}", json={"query_id": created.json()["id"]},
                     headers=headers, timeout=60)
    assert ran.status_code in (201, 400), f"{spec}: {ran.status_code} {ran.text[:300]}"
