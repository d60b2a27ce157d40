"""Honeycomb's relational fields (root., parent., child., any., any2., any3., none.) in WHERE and GROUP BY, through
the Query Data API, on both stores.

Honeycomb's "Relational Fields" (Query Builder docs, and the two blog posts that introduced them): ``root.<field>``
is the field of the trace's root span, ``parent.`` of the span's direct parent, ``child.`` of one of its direct
children; the filters of one ``any.`` / ``any2.`` / ``any3.`` prefix hold on one span of the trace, each prefix on a
span of its own; ``none.`` keeps traces where no span matches all the ``none.`` filters. The query then looks at the
spans those conditions leave. ``none.`` is no breakdown. The traces are sent by the OTel SDK exporter, with start
times set so that "the earliest span" is known.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Context, Status, StatusCode, Tracer, set_span_in_context

from tests.query.conftest import run_spec
from tests.stores import StoreServer, Tenant

DATASET = "shop-api"
#: A span: (name, attributes, failed, children). Four traces; spans start in this (depth-first) order.
Node = tuple[str, dict[str, Any], bool, list[Any]]
TRACES: list[Node] = [
    ("GET /checkout", {"http.route": "/checkout"}, False, [
        ("db-query", {"db.rows": 5, "db.system": "postgres"}, False, []),
        ("payment", {}, True, [])]),
    ("GET /cart", {"http.route": "/cart"}, False, [
        ("db-query", {"db.rows": 1, "db.system": "mysql"}, False, [])]),
    ("GET /checkout", {"http.route": "/checkout"}, False, [
        ("db-query", {"db.rows": 9, "db.system": "postgres"}, False, [])]),
    ("GET /home", {"http.route": "/home"}, False, [
        ("render", {}, False, [
            ("db-query", {"db.rows": 2, "db.system": "postgres"}, False, [])]),
        ("cache-get", {"db.system": "redis"}, False, [])]),
]


def _send(tracer: Tracer, node: Node, context: Context | None, clock: list[int]) -> None:
    name, attributes, failed, children = node
    clock[0] += 10_000_000  # 10 ms after the span before
    span = tracer.start_span(name, context=context, attributes=attributes, start_time=clock[0])
    if failed:
        span.set_status(Status(StatusCode.ERROR, "card declined"))
    for child in children:
        _send(tracer, child, set_span_in_context(span), clock)
    span.end(end_time=clock[0] + 5_000_000)


@pytest.fixture(scope="module")
def traced(store_server: StoreServer) -> Tenant:
    t = store_server.take()
    provider = TracerProvider(resource=Resource.create({"service.name": DATASET}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{t.url}/v1/traces",
                                                                     headers={"x-honeycomb-team": t.key})))
    tracer = provider.get_tracer("tests.relational")
    clock = [time.time_ns() - 120 * 10**9]
    for root in TRACES:
        _send(tracer, root, None, clock)
    provider.shutdown()
    return t


def run(t: Tenant, spec: dict[str, Any]) -> httpx.Response:
    return run_spec(t.url, t.key, DATASET, spec, time_range=600)


def grouped(t: Tenant, spec: dict[str, Any]) -> dict[Any, int]:
    """COUNT per value of the spec's one breakdown."""
    r = run(t, {"calculations": [{"op": "COUNT"}], **spec})
    assert r.status_code == 201, r.text
    (key,) = spec["breakdowns"]
    return {row["data"].get(key): row["data"]["COUNT"] for row in r.json()["data"]["results"]}


def counts(t: Tenant, filters: list[dict[str, Any]], combination: str = "AND") -> dict[str, int]:
    """COUNT of the spans the filters keep, per span name."""
    return grouped(t, {"breakdowns": ["name"], "filters": filters, "filter_combination": combination})


def eq(column: str, value: Any) -> dict[str, Any]:
    return {"column": column, "op": "=", "value": value}


def test_root_field_keeps_spans_of_traces_whose_root_matches(traced: Tenant) -> None:
    assert counts(traced, [eq("root.http.route", "/checkout")]) == {"GET /checkout": 2, "db-query": 2, "payment": 1}
    # With an ordinary filter: the db spans of checkout traces.
    assert counts(traced, [eq("root.http.route", "/checkout"), eq("name", "db-query")]) == {"db-query": 2}


def test_parent_field_keeps_the_direct_children_of_matching_spans(traced: Tenant) -> None:
    """Honeycomb: parent. matches a span's direct parent; the other filters are judged on its children."""
    assert counts(traced, [eq("parent.name", "GET /home")]) == {"render": 1, "cache-get": 1}
    assert counts(traced, [eq("parent.name", "render")]) == {"db-query": 1}  # a grandchild of GET /home, not a child
    assert counts(traced, [eq("parent.http.route", "/checkout"), eq("name", "db-query")]) == {"db-query": 2}
    # Two parent. filters hold on the one parent span.
    assert counts(traced, [eq("parent.name", "GET /checkout"), eq("parent.http.route", "/checkout")]) == {
        "db-query": 2, "payment": 1}
    assert counts(traced, [eq("parent.name", "GET /checkout"), eq("parent.http.route", "/cart")]) == {}
    # A root has no parent: a parent. filter never keeps it.
    assert counts(traced, [{"column": "parent.name", "op": "does-not-exist"}]) == {}


def test_child_field_keeps_the_parents_of_matching_spans(traced: Tenant) -> None:
    assert counts(traced, [eq("child.error", True)]) == {"GET /checkout": 1}
    assert counts(traced, [eq("child.name", "db-query")]) == {"GET /checkout": 2, "GET /cart": 1, "render": 1}


def test_any_and_none(traced: Tenant) -> None:
    assert counts(traced, [eq("any.error", True)]) == {"GET /checkout": 1, "db-query": 1, "payment": 1}
    assert counts(traced, [eq("none.error", True)]) == {
        "GET /cart": 1, "GET /checkout": 1, "GET /home": 1, "render": 1, "db-query": 3, "cache-get": 1}
    assert counts(traced, [{"column": "any.db.rows", "op": ">", "value": 4}, eq("none.error", True)]) == {
        "GET /checkout": 1, "db-query": 1}


def test_one_any_prefix_is_one_span_and_any2_any3_are_others(traced: Tenant) -> None:
    """The filters of one anyX. prefix hold on the same span; any2. and any3. ask for further spans."""
    by_root = {"breakdowns": ["root.http.route"]}
    assert grouped(traced, {**by_root, "filters": [eq("any.db.system", "postgres"),
                                                   {"column": "any.db.rows", "op": ">", "value": 4}]}) == {"/checkout": 5}
    # No one span is both a redis call and a db-query ...
    assert grouped(traced, {**by_root, "filters": [eq("any.db.system", "redis"), eq("any.name", "db-query")]}) == {}
    # ... but the /home trace has a redis span and (another) db-query span, and a render span too.
    assert grouped(traced, {**by_root, "filters": [eq("any.db.system", "redis"), eq("any2.name", "db-query")]}) == {
        "/home": 4}
    assert grouped(traced, {**by_root, "filters": [eq("any.db.system", "redis"), eq("any2.name", "db-query"),
                                                   eq("any3.name", "render")]}) == {"/home": 4}
    assert grouped(traced, {**by_root, "filters": [eq("any.db.system", "redis"), eq("any2.name", "db-query"),
                                                   eq("any3.name", "payment")]}) == {}


def test_none_filters_hold_together_on_one_span(traced: Tenant) -> None:
    """Honeycomb: a trace is left out when one of its spans matches all the none. filters. Every trace has a db-query
    span, but only the /cart trace has none that is a postgres db-query."""
    assert counts(traced, [eq("none.db.system", "postgres"), eq("none.name", "db-query")]) == {
        "GET /cart": 1, "db-query": 1}


def test_relational_filters_with_or(traced: Tenant) -> None:
    """Honeycomb ANDs relational filters; Apiary also takes OR, each filter judged on its own."""
    assert counts(traced, [eq("name", "payment"), eq("none.db.system", "postgres")], "OR") == {
        "payment": 1, "GET /cart": 1, "db-query": 1}
    # The trace lacks postgres or lacks an error: every trace but the first /checkout one.
    assert counts(traced, [eq("none.db.system", "postgres"), eq("none.error", True)], "OR") == {
        "GET /cart": 1, "GET /checkout": 1, "GET /home": 1, "render": 1, "db-query": 3, "cache-get": 1}
    assert counts(traced, [eq("any.error", True), eq("root.http.route", "/cart")], "OR") == {
        "GET /checkout": 1, "db-query": 2, "payment": 1, "GET /cart": 1}
    assert counts(traced, [eq("parent.name", "render"), eq("name", "payment")], "OR") == {"db-query": 1, "payment": 1}
    assert counts(traced, [eq("child.db.system", "redis"), eq("any2.db.rows", 1)], "OR") == {
        "GET /home": 1, "GET /cart": 1, "db-query": 1}


def test_relational_with_calculations_and_the_root_filter_on_a_child_field(traced: Tenant) -> None:
    r = run(traced, {"calculations": [{"op": "SUM", "column": "db.rows"}],
                     "filters": [eq("root.http.route", "/checkout")]})
    assert r.status_code == 201, r.text
    assert r.json()["data"]["results"][0]["data"] == {"SUM(db.rows)": 14}
    # A root field only looks at the root span: no root has db.rows.
    assert counts(traced, [{"column": "root.db.rows", "op": "exists"}]) == {}


def test_root_field_as_a_breakdown(traced: Tenant) -> None:
    """Honeycomb's example: break spans down by their trace's root route."""
    assert grouped(traced, {"breakdowns": ["root.http.route"]}) == {"/checkout": 5, "/cart": 2, "/home": 4}
    r = run(traced, {"calculations": [{"op": "SUM", "column": "db.rows"}], "breakdowns": ["root.http.route", "name"],
                     "filters": [eq("name", "db-query")]})
    assert r.status_code == 201, r.text
    assert sorted((row["data"]["root.http.route"], row["data"]["SUM(db.rows)"]) for row in r.json()["data"]["results"]) \
        == [("/cart", 1), ("/checkout", 14), ("/home", 2)]
    points = [p["data"] for p in r.json()["data"]["series"] if p["data"].get("SUM(db.rows)")]
    assert sum(p["SUM(db.rows)"] for p in points if p["root.http.route"] == "/checkout") == 14


def test_parent_and_child_fields_as_breakdowns(traced: Tenant) -> None:
    # Honeycomb's use: count the children of each kind of parent. A root has no parent: the empty group.
    assert grouped(traced, {"breakdowns": ["parent.name"]}) == {
        None: 4, "GET /checkout": 3, "GET /cart": 1, "GET /home": 2, "render": 1}
    assert grouped(traced, {"breakdowns": ["parent.name"], "filters": [eq("name", "db-query")]}) == {
        "GET /checkout": 2, "GET /cart": 1, "render": 1}
    # child.: the earliest child that matches the child. filters.
    assert grouped(traced, {"breakdowns": ["child.db.system"], "filters": [{"column": "child.db.system", "op": "exists"}]}) \
        == {"postgres": 3, "mysql": 1, "redis": 1}


def test_any_field_as_a_breakdown(traced: Tenant) -> None:
    """A trace where some span is a postgres call, grouped by that span's db.system; without a filter naming the
    span, the earliest span that has one (the /home trace's db-query starts before its cache-get)."""
    assert grouped(traced, {"breakdowns": ["any.db.system"], "filters": [eq("any.db.system", "postgres")]}) == {
        "postgres": 9}
    assert grouped(traced, {"breakdowns": ["any.db.system"], "filters": [{"column": "any.db.system", "op": "exists"}]}) \
        == {"postgres": 9, "mysql": 2}
    assert grouped(traced, {"breakdowns": ["any2.db.system"], "filters": [eq("any.db.system", "redis"),
                                                                          eq("any2.name", "db-query")]}) == {"postgres": 4}


@pytest.mark.parametrize("spec,words", [
    ({"filters": [{"column": "root.nope", "op": "exists"}]}, "unknown column 'nope'"),
    ({"breakdowns": ["none.http.route"]}, "none. names no span"),
    ({"calculations": [{"op": "AVG", "column": "parent.duration_ms"}]}, "relational fields (parent.) are read in filters"),
    ({"filters": [{"column": "any4.name", "op": "exists"}]}, "unknown column 'any4.name'"),
])
def test_what_is_refused_says_why(traced: Tenant, spec: dict[str, Any], words: str) -> None:
    r = run(traced, spec)
    assert r.status_code == 400 and words in r.json()["error"], r.text
