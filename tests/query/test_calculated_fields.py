"""Calculated fields with Honeycomb's derived column functions, on both stores, through libhoney and the Query Data API.

The expressions follow the examples of Honeycomb's derived column reference (conditionals, comparisons,
math, strings, regular expressions, time, type conversion), on events of our own. Each field is read
per event (as a breakdown beside ``path``, which is different on every event), then used in WHERE,
in calculations and in ORDER BY.

``INGEST_TIMESTAMP()`` is read on spans the OTel SDK exports with start times two hours old: the "ingest lag"
Honeycomb's reference computes (``SUB(INGEST_TIMESTAMP(), EVENT_TIMESTAMP())``) is then the two hours and the
time the export took, and the arrival time itself is no column of any reader of whole spans.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import boto3
import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import set_span_in_context

from tests.query.conftest import run_spec, send_libhoney
from tests.stores import StoreServer, Tenant

T0 = (int(time.time()) - 900) // 60 * 60
DATASET = "shop"
EVENTS: list[dict[str, Any]] = [
    {"path": "/users/42/orders", "http.status_code": 200, "duration_ms": 120.0, "user_agent": "Mozilla Mobile Safari",
     "env": "prod", "email": "ann@example.com", "bytes": 2048, "first": "Ann", "last": "Lee", "sdk.language": "python",
     "ok": True, "code_text": "200", "flag_text": "true", "created": "2024-01-02T03:04:05Z"},
    {"path": "/users/7", "http.status_code": 503, "duration_ms": 950.0, "user_agent": "curl/8.5", "env": "staging",
     "email": "bob@test.org", "bytes": 10, "first": "Bob", "last": "", "sdk.language": "nodejs", "ok": False,
     "code_text": "503", "flag_text": "false", "created": "2024-01-02T03:04:06.5Z"},
    {"path": "/health", "http.status_code": 404, "duration_ms": 40.0, "user_agent": "Mozilla Desktop", "env": "dev",
     "email": "", "first": "Cy", "sdk.language": "ruby", "code_text": "404"},
]
PATHS = [e["path"] for e in EVENTS]


def per_event(*values: Any) -> dict[str, Any]:
    return dict(zip(PATHS, values))


def _fmt(n: int, fmt: str) -> str:
    return datetime.fromtimestamp(T0 + n, timezone.utc).strftime(fmt)


#: (expression, the value Honeycomb gives on each event), in the order of Honeycomb's function reference.
CASES: list[tuple[str, dict[str, Any]]] = [
    # Conditionals
    ('IF(GTE($duration_ms, 500), "slow", "fast")', per_event("fast", "slow", "fast")),
    ('IF(LT($duration_ms, 100), "fast", LT($duration_ms, 500), "normal", "slow")', per_event("normal", "slow", "fast")),
    ("IF(EQUALS($http.status_code, 200), 1)", per_event(1, None, None)),
    ('SWITCH($env, "prod", 1, "staging", 0.5, 0)', per_event(1.0, 0.5, 0.0)),
    ('SWITCH($env, "prod", "p", "staging", "s")', per_event("p", "s", None)),
    ('COALESCE($last, $first, "unknown")', per_event("Lee", "Bob", "Cy")),  # an empty string is skipped too
    # Comparisons and logic
    ('IN($sdk.language, "nodejs", "node.js", "javascript")', per_event(False, True, False)),
    ("IN($http.status_code, 404, 503)", per_event(False, True, True)),
    ("LTE($http.status_code, 404)", per_event(True, False, True)),
    ('EQUALS($code_text, 200)', per_event(True, False, False)),  # text against a number: compared as text
    ("EXISTS($bytes)", per_event(True, True, False)),
    ("NOT(EXISTS($ok))", per_event(False, False, True)),
    ("AND(EXISTS($bytes), GT($bytes, 100))", per_event(True, False, False)),
    ('OR(EQUALS($env, "prod"), EQUALS($env, "staging"))', per_event(True, True, False)),
    # Math
    ("SUM($bytes, 1)", per_event(2049, 11, None)),
    ("SUB($duration_ms, 20)", per_event(100.0, 930.0, 20.0)),
    ("MUL($bytes, 2, 3)", per_event(12288, 60, None)),
    ("DIV($bytes, 1024)", per_event(2.0, 10 / 1024, None)),
    ("DIV($bytes, 0)", per_event(None, None, None)),
    ("MOD($http.status_code, 100)", per_event(0, 3, 4)),
    ("MIN($duration_ms, 100)", per_event(100.0, 100.0, 40.0)),
    ("MAX($duration_ms, 100)", per_event(120.0, 950.0, 100.0)),
    ("LOG10($bytes)", per_event(math.log10(2048), 1.0, None)),
    ("POW(2, 10)", per_event(1024.0, 1024.0, 1024.0)),
    ("ABS(SUB(0, $duration_ms))", per_event(120.0, 950.0, 40.0)),
    ("CEIL(DIV($duration_ms, 100))", per_event(2.0, 10.0, 1.0)),
    ("FLOOR(DIV($duration_ms, 100))", per_event(1.0, 9.0, 0.0)),
    ("BUCKET($duration_ms, 100, 0, 500)", per_event(100.0, 500.0, 0.0)),
    # Strings
    ('CONCAT($first, " ", $last)', per_event("Ann Lee", "Bob ", "Cy ")),
    ('STARTS_WITH($path, "/users")', per_event(True, True, False)),
    ('ENDS_WITH($email, ".org")', per_event(False, True, False)),
    ('CONTAINS($user_agent, "Mobile")', per_event(True, False, False)),
    ("TO_LOWER($first)", per_event("ann", "bob", "cy")),
    ("TO_UPPER($env)", per_event("PROD", "STAGING", "DEV")),
    ("LENGTH($first)", per_event(3, 3, 2)),
    ('LENGTH(CONCAT($first, "é"), "bytes")', per_event(5, 5, 4)),
    ("SUBSTRING($email, 0, 3)", per_event("ann", "bob", "")),
    ("SUBSTRING($path, 7)", per_event("42/orders", "7", "")),
    ("REG_MATCH($email, `^[a-z]+@[a-z]+\\.[a-z]{2,}$`)", per_event(True, True, False)),
    ("REG_VALUE($email, `@(.+)$`)", per_event("example.com", "test.org", "")),
    ("REG_VALUE($path, `/users/[0-9]+`)", per_event("/users/42", "/users/7", "")),
    ("REG_COUNT($path, `/`)", per_event(3, 2, 1)),
    # Time
    ("UNIX_TIMESTAMP($created)", per_event(1704164645.0, 1704164646.5, None)),
    ("EVENT_TIMESTAMP()", per_event(float(T0), float(T0 + 1), float(T0 + 2))),
    ('FORMAT_TIME("%Y-%m-%d %H:%M:%S %a", EVENT_TIMESTAMP())',
     per_event(*(_fmt(n, "%Y-%m-%d %H:%M:%S %a") for n in range(3)))),
    # Types
    ("INT($code_text)", per_event(200, 503, 404)),
    ("INT(DIV($duration_ms, 100))", per_event(1, 9, 0)),
    ("FLOAT($code_text)", per_event(200.0, 503.0, 404.0)),
    ("BOOL($flag_text)", per_event(True, False, None)),
    ("STRING($http.status_code)", per_event("200", "503", "404")),
]



@pytest.fixture(scope="module")
def shop(store_server: StoreServer) -> Tenant:
    t = store_server.take()
    send_libhoney(t.url, t.key, DATASET, EVENTS, T0)
    return t


def run(t: Tenant, spec: dict[str, Any]) -> httpx.Response:
    """Create and run a query over the module's events; the run's response (or the creation's when refused)."""
    return run_spec(t.url, t.key, DATASET, spec, start_time=T0 - 60, end_time=T0 + 60)


def results(t: Tenant, spec: dict[str, Any]) -> list[dict[str, Any]]:
    r = run(t, spec)
    assert r.status_code == 201, r.text
    return [row["data"] for row in r.json()["data"]["results"]]


@pytest.mark.parametrize("expression,want", CASES, ids=[c[0] for c in CASES])
def test_function_per_event_as_a_breakdown(shop: Tenant, expression: str, want: dict[str, Any]) -> None:
    rows = results(shop, {"calculated_fields": [{"name": "f", "expression": expression}], "breakdowns": ["path", "f"],
                          "calculations": [{"op": "COUNT"}]})
    got = {r["path"]: r["f"] for r in rows}
    assert got == {p: pytest.approx(v) if isinstance(v, float) else v for p, v in want.items()}


def test_calculated_field_in_where_calculations_and_order(shop: Tenant) -> None:
    fields = [{"name": "slow", "expression": "GTE($duration_ms, 500)"},
              {"name": "double", "expression": "MUL($duration_ms, 2)"},
              {"name": "tier", "expression": 'IF(LT($duration_ms, 100), "fast", LT($duration_ms, 500), "normal", "slow")'}]
    rows = results(shop, {"calculated_fields": fields, "filters": [{"column": "slow", "op": "=", "value": False}],
                          "calculations": [{"op": "COUNT"}, {"op": "AVG", "column": "double"},
                                           {"op": "MAX", "column": "double"}]})
    assert rows == [{"COUNT": 2, "AVG(double)": pytest.approx(160.0), "MAX(double)": pytest.approx(240.0)}]
    rows = results(shop, {"calculated_fields": fields, "breakdowns": ["tier"], "calculations": [{"op": "COUNT"}],
                          "orders": [{"column": "tier", "order": "descending"}]})
    assert [r["tier"] for r in rows] == ["slow", "normal", "fast"]
    rows = results(shop, {"calculated_fields": fields, "breakdowns": ["path"],
                          "calculations": [{"op": "SUM", "column": "double"}],
                          "orders": [{"op": "SUM", "column": "double", "order": "ascending"}]})
    assert [r["path"] for r in rows] == ["/health", "/users/42/orders", "/users/7"]


@pytest.mark.parametrize("expression,words", [
    ("INGEST_TIMESTAMP(1)", "INGEST_TIMESTAMP takes 0 arguments"),
    ("SUB(INGEST_TIMESTAMP(), $_ingest_timestamp)", "unknown column '_ingest_timestamp'"),
    ("NOPE($duration_ms)", "unknown function NOPE"),
    ('SUM($first, "x")', "SUM needs numbers"),
    ("SWITCH($env, $first, 1)", "SWITCH: each case must be a string literal"),
    ("REG_MATCH($email, `(?=a)`)", "look-around"),
    ("REG_VALUE($email, `([a-z`)", "is not a regular expression"),
    ('FORMAT_TIME("%Q", EVENT_TIMESTAMP())', "%Q is not supported"),
    ('LENGTH($first, "words")', "LENGTH: mode"),
    ("BUCKET($duration_ms, 0, 0, 10)", "bucket size must be a positive number"),
    ("IF($ok)", "IF takes 2+ arguments"),
])
def test_what_is_refused_is_named(shop: Tenant, expression: str, words: str) -> None:
    r = run(shop, {"calculated_fields": [{"name": "f", "expression": expression}], "breakdowns": ["f"]})
    assert r.status_code == 400, r.text
    assert words in r.json()["error"]


#: How long before their export the late spans started: a client that buffered them, or a clock two hours behind.
LATE_S = 2 * 3600
LAG = {"name": "lag", "expression": "SUB(INGEST_TIMESTAMP(), EVENT_TIMESTAMP())"}
ARRIVED = {"name": "arrived", "expression": "INGEST_TIMESTAMP()"}


@dataclass
class Late:
    """Spans exported between ``sent_from`` and ``sent_by`` (unix seconds) with the start times in ``starts``."""

    tenant: Tenant
    starts: dict[str, float]  # span name -> its start, in seconds
    trace_id: str
    sent_from: float
    sent_by: float

    def results(self, spec: dict[str, Any]) -> list[dict[str, Any]]:
        first = min(self.starts.values())
        r = run_spec(self.tenant.url, self.tenant.key, "late-service", spec, start_time=int(first) - 60,
                     end_time=int(time.time()) + 60)
        assert r.status_code == 201, r.text
        return [row["data"] for row in r.json()["data"]["results"]]


@pytest.fixture(scope="module")
def late(store_server: StoreServer) -> Late:
    """A two-hour-old trace (a root and two children) and one fresh span, through the OTel SDK's OTLP/HTTP exporter."""
    t = store_server.take()
    provider = TracerProvider(resource=Resource.create({"service.name": "late-service"}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{t.url}/v1/traces",
                                                                    headers={"x-honeycomb-team": t.key})))
    tracer = provider.get_tracer("tests.ingest_timestamp")
    sent_from = time.time()
    old = int((sent_from - LATE_S) * 1e9)
    fresh = int((sent_from - 1) * 1e9)
    starts = {"old-root": old, "old-child-a": old + 10**6, "old-child-b": old + 2 * 10**6, "fresh": fresh}
    root = tracer.start_span("old-root", start_time=starts["old-root"])
    for name in ("old-child-a", "old-child-b"):
        tracer.start_span(name, context=set_span_in_context(root), start_time=starts[name]).end(end_time=starts[name] + 10**6)
    root.end(end_time=old + 5 * 10**6)
    tracer.start_span("fresh", start_time=fresh).end(end_time=fresh + 10**6)
    provider.force_flush()
    provider.shutdown()
    sent_by = time.time()  # the exporter returned: every span was acknowledged, so accepted, by now
    return Late(t, {k: v / 1e9 for k, v in starts.items()}, f"{root.get_span_context().trace_id:032x}", sent_from, sent_by)


def test_ingest_lag_of_spans_sent_two_hours_late(late: Late) -> None:
    rows = late.results({"calculated_fields": [LAG], "breakdowns": ["name", "lag"], "calculations": [{"op": "COUNT"}]})
    assert sorted(r["name"] for r in rows) == sorted(late.starts)
    for r in rows:  # accepted while the exporter ran: the lag is the age of the span at some moment of the export
        start = late.starts[r["name"]]
        assert late.sent_from - start - 0.001 <= r["lag"] <= late.sent_by - start + 0.001, (r, late)
    lags = {r["name"]: r["lag"] for r in rows}
    assert lags["old-root"] > LATE_S - 1 and lags["fresh"] < 60


def test_ingest_timestamp_in_where_group_by_calculations_and_time_functions(late: Late) -> None:
    fields = [LAG, ARRIVED, {"name": "late", "expression": "GT(SUB(INGEST_TIMESTAMP(), EVENT_TIMESTAMP()), 3600)"},
              {"name": "hour", "expression": 'FORMAT_TIME("%Y-%m-%d %H", INGEST_TIMESTAMP())'},
              {"name": "minutes", "expression": "INT(DIV(SUB(INGEST_TIMESTAMP(), EVENT_TIMESTAMP()), 60))"}]
    rows = late.results({"calculated_fields": fields, "filters": [{"column": "late", "op": "=", "value": True}],
                         "breakdowns": ["minutes"], "calculations": [{"op": "COUNT"}, {"op": "MIN", "column": "arrived"},
                                                                     {"op": "MAX", "column": "arrived"}]})
    assert [(r["minutes"], r["COUNT"]) for r in rows] == [(LATE_S // 60, 3)]  # the fresh span is not late
    assert late.sent_from - 0.001 <= rows[0]["MIN(arrived)"] <= rows[0]["MAX(arrived)"] <= late.sent_by + 0.001
    rows = late.results({"calculated_fields": fields, "breakdowns": ["hour"], "calculations": [{"op": "COUNT"}]})
    hours = {datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%d %H") for t in (late.sent_from, late.sent_by)}
    assert sum(r["COUNT"] for r in rows) == 4 and {r["hour"] for r in rows} <= hours


def test_the_arrival_time_is_no_column_of_any_reader(late: Late) -> None:
    t = late.tenant
    headers = {"X-Honeycomb-Team": t.key}
    names = {c["key_name"] for c in httpx.get(f"{t.url}/1/columns/late-service", headers=headers).json()}
    assert "name" in names and not {n for n in names if "ingest" in n.lower()}
    spans = httpx.get(f"{t.url}/api/traces/{late.trace_id}", headers=headers).json()["spans"]
    assert len(spans) == 3 and not {k for s in spans for k in s if "ingest" in k.lower()}
    xray = boto3.client("xray", endpoint_url=t.url, region_name="us-east-1", aws_access_key_id=t.key,
                        aws_secret_access_key=t.key)
    xray_id = f"1-{late.trace_id[:8]}-{late.trace_id[8:]}"
    (trace,) = xray.batch_get_traces(TraceIds=[xray_id])["Traces"]
    documents = [json.loads(s["Document"]) for s in trace["Segments"]]
    assert len(documents) == 3 and "ingest" not in json.dumps(documents).lower()
