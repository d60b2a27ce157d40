"""Honeycomb's relational fields (root., any., none.) in WHERE, through the Query Data API, on both stores.

Honeycomb's "Relational Fields" docs: ``root.<field>`` is the field of the trace's root span, ``any.<field>``
holds when some span of the trace matches, ``none.<field>`` when no span does; the query then looks at the
spans of the traces that pass. The traces are sent by the OTel SDK exporter; ``parent.`` is not built and
is refused by name.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Status, StatusCode, set_span_in_context

from tests.query.conftest import run_spec
from tests.stores import StoreServer, Tenant

DATASET = "shop-api"
#: (root route, [(child name, db.rows, failed)]) per trace.
TRACES = [
    ("/checkout", [("db-query", 5, False), ("payment", None, True)]),
    ("/cart", [("db-query", 1, False)]),
    ("/checkout", [("db-query", 9, False)]),
]



@pytest.fixture(scope="module")
def traced(store_server: StoreServer) -> Tenant:
    t = store_server.take()
    provider = TracerProvider(resource=Resource.create({"service.name": DATASET}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{t.url}/v1/traces",
                                                                     headers={"x-honeycomb-team": t.key})))
    tracer = provider.get_tracer("tests.relational")
    for route, children in TRACES:
        root = tracer.start_span(f"GET {route}", attributes={"http.route": route})
        for name, rows, failed in children:
            child = tracer.start_span(name, context=set_span_in_context(root),
                                      attributes={} if rows is None else {"db.rows": rows})
            if failed:
                child.set_status(Status(StatusCode.ERROR, "card declined"))
            child.end()
        root.end()
    provider.shutdown()
    return t


def run(t: Tenant, spec: dict[str, Any]) -> httpx.Response:
    return run_spec(t.url, t.key, DATASET, spec, time_range=600)


def counts(t: Tenant, filters: list[dict[str, Any]]) -> dict[str, int]:
    r = run(t, {"calculations": [{"op": "COUNT"}], "breakdowns": ["name"], "filters": filters})
    assert r.status_code == 201, r.text
    return {row["data"]["name"]: row["data"]["COUNT"] for row in r.json()["data"]["results"]}


def test_root_field_keeps_spans_of_traces_whose_root_matches(traced: Tenant) -> None:
    assert counts(traced, [{"column": "root.http.route", "op": "=", "value": "/checkout"}]) == {
        "GET /checkout": 2, "db-query": 2, "payment": 1}
    # With an ordinary filter: the db spans of checkout traces.
    assert counts(traced, [{"column": "root.http.route", "op": "=", "value": "/checkout"},
                           {"column": "name", "op": "=", "value": "db-query"}]) == {"db-query": 2}


def test_any_and_none(traced: Tenant) -> None:
    assert counts(traced, [{"column": "any.error", "op": "=", "value": True}]) == {
        "GET /checkout": 1, "db-query": 1, "payment": 1}
    assert counts(traced, [{"column": "none.error", "op": "=", "value": True}]) == {
        "GET /cart": 1, "GET /checkout": 1, "db-query": 2}
    assert counts(traced, [{"column": "any.db.rows", "op": ">", "value": 4},
                           {"column": "none.error", "op": "=", "value": True}]) == {"GET /checkout": 1, "db-query": 1}


def test_relational_with_calculations_and_the_root_filter_on_a_child_field(traced: Tenant) -> None:
    r = run(traced, {"calculations": [{"op": "SUM", "column": "db.rows"}],
                     "filters": [{"column": "root.http.route", "op": "=", "value": "/checkout"}]})
    assert r.status_code == 201, r.text
    assert r.json()["data"]["results"][0]["data"] == {"SUM(db.rows)": 14}
    # A root field only looks at the root span: no root has db.rows.
    assert counts(traced, [{"column": "root.db.rows", "op": "exists"}]) == {}


def test_root_field_as_a_breakdown(traced: Tenant) -> None:
    """Honeycomb's example: break spans down by their trace's root route."""
    r = run(traced, {"calculations": [{"op": "COUNT"}], "breakdowns": ["root.http.route"]})
    assert r.status_code == 201, r.text
    assert {row["data"]["root.http.route"]: row["data"]["COUNT"] for row in r.json()["data"]["results"]} == {
        "/checkout": 5, "/cart": 2}
    r = run(traced, {"calculations": [{"op": "SUM", "column": "db.rows"}], "breakdowns": ["root.http.route", "name"],
                     "filters": [{"column": "name", "op": "=", "value": "db-query"}]})
    assert r.status_code == 201, r.text
    assert sorted((row["data"]["root.http.route"], row["data"]["SUM(db.rows)"]) for row in r.json()["data"]["results"]) \
        == [("/cart", 1), ("/checkout", 14)]
    points = [p["data"] for p in r.json()["data"]["series"] if p["data"].get("SUM(db.rows)")]
    assert sum(p["SUM(db.rows)"] for p in points if p["root.http.route"] == "/checkout") == 14


@pytest.mark.parametrize("spec,words", [
    ({"filters": [{"column": "parent.name", "op": "=", "value": "GET /cart"}]}, "parent.name: the parent. relational"),
    ({"filters": [{"column": "any.error", "op": "=", "value": True}, {"column": "name", "op": "exists"}],
      "filter_combination": "OR"}, "combine with other filters by AND only"),
    ({"filters": [{"column": "root.nope", "op": "exists"}]}, "unknown column 'nope'"),
    ({"breakdowns": ["any.http.route"]}, "only root. is a breakdown"),
])
def test_what_is_refused_says_why(traced: Tenant, spec: dict[str, Any], words: str) -> None:
    r = run(traced, spec)
    assert r.status_code == 400 and words in r.json()["error"], r.text
