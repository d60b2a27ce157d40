"""Every calculation over every column type answers -- a value, or a 400 in Honeycomb's words -- never a 500.

The events arrive through libhoney with one column of each type Honeycomb knows (string, integer, float,
boolean), a JSON object (kept as its JSON text, a string column), a column sent as integers and strings,
and the core columns (``timestamp``, ``name``, ``meta.dataset``). Each answer is the one Honeycomb gives
on the same three events; numeric calculations refuse a column without numbers (Honeycomb's query
builder offers SUM, AVG, MAX, MIN, percentiles, HEATMAP and RATE_* only on numeric columns).
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import numpy as np
import pytest

from apiary.query.spec import HISTOGRAM_PERCENTILES, PERCENTILES
from tests.query.conftest import run_spec, send_libhoney
from tests.stores import StoreServer, Tenant

T0 = int(time.time()) - 600
DATASET = "types"
EVENTS: list[dict[str, Any]] = [
    {"s": "a", "i": 1, "f": 0.5, "b": True, "j": {"k": 1}, "m": 1, "duration_ms": 10.0},
    {"s": "b", "i": 2, "f": 1.5, "b": False, "j": {"k": [2]}, "m": "two", "duration_ms": 20.0},
    {"s": "c", "i": 4, "f": 2.5, "b": True, "j": {"k": 1}, "m": 3, "duration_ms": 30.0},
]
#: Column -> the numbers Honeycomb reads in it (None: not a numeric column).
NUMBERS: dict[str, list[float] | None] = {
    "s": None, "i": [1, 2, 4], "f": [0.5, 1.5, 2.5], "b": None, "j": None, "m": [1, 3], "duration_ms": [10, 20, 30],
    "timestamp": None, "name": None, "meta.dataset": None,
}
DISTINCT = {"s": 3, "i": 3, "f": 3, "b": 2, "j": 2, "m": 3, "duration_ms": 3, "timestamp": 3, "name": 1, "meta.dataset": 1}
NUMERIC_OPS = ["SUM", "AVG", "MAX", "MIN", "HEATMAP", "RATE_AVG", "RATE_SUM", "RATE_MAX", *PERCENTILES]
METRIC_OPS = ["RATE", "INCREASE", *HISTOGRAM_PERCENTILES]



@pytest.fixture(scope="module")
def typed(store_server: StoreServer) -> Tenant:
    t = store_server.take()
    # One batch per event: "m" is then stored once as an integer column and once as a string column.
    send_libhoney(t.url, t.key, DATASET, [{**fields, "name": "op"} for fields in EVENTS], T0, batch_each=True)
    return t


def run(t: Tenant, spec: dict[str, Any]) -> httpx.Response:
    """Create and run a query over the module's events; the run's response (or the creation's when refused)."""
    return run_spec(t.url, t.key, DATASET, spec, start_time=T0 - 60, end_time=T0 + 60)


def answer(t: Tenant, calc: dict[str, Any]) -> Any:
    r = run(t, {"calculations": [calc]})
    assert r.status_code == 201, r.text
    (result,) = r.json()["data"]["results"]
    label = calc["op"] if "column" not in calc else f"{calc['op']}({calc['column']})"
    return result["data"][label]


def expected(op: str, numbers: list[float]) -> Any:
    values = np.array(numbers, dtype=float)
    if op in PERCENTILES:
        return pytest.approx(float(np.percentile(values, PERCENTILES[op] * 100, method="linear")))
    if op == "SUM":
        return pytest.approx(float(values.sum()))
    if op == "AVG":
        return pytest.approx(float(values.mean()))
    if op == "MAX":
        return pytest.approx(float(values.max()))
    if op == "MIN":
        return pytest.approx(float(values.min()))
    raise AssertionError(op)


@pytest.mark.parametrize("column", list(NUMBERS))
def test_every_calculation_on_every_column(typed: Tenant, column: str) -> None:
    assert answer(typed, {"op": "COUNT_DISTINCT", "column": column}) == DISTINCT[column]
    numbers = NUMBERS[column]
    for op in NUMERIC_OPS:
        if numbers is None:
            r = run(typed, {"calculations": [{"op": op, "column": column}]})
            assert r.status_code == 400, (op, r.text)
            assert f"{op}({column}) needs a numeric column" in r.json()["error"]
            continue
        value = answer(typed, {"op": op, "column": column})
        if op == "HEATMAP":
            assert sum(value) == len(numbers)
        elif op.startswith("RATE_"):
            # Change per second between consecutive events that have a value (one second apart, or two for "m").
            steps = [b - a for a, b in zip(numbers, numbers[1:])]
            seconds = 2 if column == "m" else 1
            rates = [s / seconds for s in steps]
            want = {"RATE_AVG": sum(rates) / len(rates), "RATE_SUM": sum(rates), "RATE_MAX": max(rates)}[op]
            assert value == pytest.approx(want), op
        else:
            assert value == expected(op, numbers), op
    for op in METRIC_OPS:
        r = run(typed, {"calculations": [{"op": op, "column": column}]})
        assert r.status_code == 400, (op, r.text)
        if numbers is None and not op.startswith("HISTOGRAM_"):
            assert f"{op}({column}) needs a numeric column" in r.json()["error"]
        else:  # a metric operator on a dataset of events
            assert "works on OTLP metrics" in r.json()["error"]


@pytest.mark.parametrize("column", list(NUMBERS))
def test_every_column_groups_filters_and_orders(typed: Tenant, column: str) -> None:
    r = run(typed, {"calculations": [{"op": "COUNT"}], "breakdowns": [column], "orders": [{"column": column}]})
    assert r.status_code == 201, r.text
    assert sum(x["data"]["COUNT"] for x in r.json()["data"]["results"]) == 3
    for op in ("exists", "does-not-exist"):
        r = run(typed, {"calculations": [{"op": "COUNT"}], "filters": [{"column": column, "op": op}]})
        assert r.status_code == 201, r.text


def test_count_and_concurrency_take_no_column(typed: Tenant) -> None:
    assert answer(typed, {"op": "COUNT"}) == 3
    assert answer(typed, {"op": "CONCURRENCY"}) == 1  # the three events do not overlap
    r = run(typed, {"calculations": [{"op": "COUNT", "column": "i"}]})
    assert r.status_code == 400 and "COUNT takes no column" in r.json()["error"]
