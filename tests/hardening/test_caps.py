"""Per-environment caps: attributes per span, bytes per value, typed columns per environment.

Each is answered as the README documents, and the environment beside the one that hit it is unaffected.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.trace.export import SpanExportResult

from apiary.store.duckdb import DuckDBStore
from tests.clickhouse.conftest import clickhouse_url, drop_database
from tests.hardening.conftest import Start, export_spans, trace_of
from tests.store.spans import batch


def _span_with(attrs: dict[str, Any], name: str = "wide") -> Any:
    def make(tracer: Any) -> None:
        with tracer.start_as_current_span(name) as span:
            span.set_attributes(attrs)
    return make


def _trace_id(spans: list[Any]) -> str:
    return f"{spans[0].context.trace_id:032x}"


def test_a_span_past_the_attribute_cap_keeps_the_first_attributes_and_says_so(store: str, start: Start) -> None:
    served = start(store, {"noisy": False, "quiet": False}, "--max-span-attributes", "20")
    wide = {f"k{i:03d}": i for i in range(50)}
    result, spans = export_spans(served.url, served.keys["noisy"], "noisy-svc", _span_with(wide), max_attributes=100)
    assert result is SpanExportResult.SUCCESS
    stored = trace_of(served.url, served.keys["noisy"], _trace_id(spans))["spans"][0]
    kept = {k: v for k, v in stored.items() if k.startswith("k")}
    assert len(kept) == 20 and all(wide[k] == v for k, v in kept.items())

    # The same span's bytes, as the exporter encodes them, posted to read the answer: a partial_success warning.
    body = encode_spans(spans).SerializeToString()
    r = httpx.post(f"{served.url}/v1/traces", content=body, timeout=60, headers={
        "content-type": "application/x-protobuf", "x-honeycomb-team": served.keys["noisy"]})
    assert r.status_code == 200
    answer = ExportTraceServiceResponse()
    answer.ParseFromString(r.content)
    assert answer.partial_success.rejected_spans == 0
    # 30 span attributes past the cap, and the resource's (the span is full before they are added).
    resource = [k for k in spans[0].resource.attributes if k != "service.name"]
    assert f"{30 + len(resource)} attributes dropped" in answer.partial_success.error_message
    assert "APIARY_MAX_SPAN_ATTRIBUTES" in answer.partial_success.error_message

    few = {f"q{i}": f"v{i}" for i in range(10)}
    result, spans = export_spans(served.url, served.keys["quiet"], "quiet-svc", _span_with(few))
    assert result is SpanExportResult.SUCCESS
    stored = trace_of(served.url, served.keys["quiet"], _trace_id(spans))["spans"][0]
    assert {k: v for k, v in stored.items() if k.startswith("q")} == few


def test_a_value_past_65535_bytes_is_cut_there_on_a_character_boundary(store: str, start: Start) -> None:
    served = start(store, {"big": False, "small": False})
    huge = "é" * 40_000  # 80,000 bytes of UTF-8, two per character
    result, spans = export_spans(served.url, served.keys["big"], "big-svc",
                                 _span_with({"payload": huge, "note": "short"}, name="n" * 70_000))
    assert result is SpanExportResult.SUCCESS
    stored = trace_of(served.url, served.keys["big"], _trace_id(spans))["spans"][0]
    assert stored["payload"] == "é" * 32_767  # 65,534 bytes: the 65,535th would split a character
    assert stored["note"] == "short"
    assert stored["name"] == "n" * 65_535

    result, spans = export_spans(served.url, served.keys["small"], "small-svc", _span_with({"payload": "x" * 60_000}))
    assert result is SpanExportResult.SUCCESS
    assert trace_of(served.url, served.keys["small"], _trace_id(spans))["spans"][0]["payload"] == "x" * 60_000


def _count_where(url: str, key: str, dataset: str, column: str, value: Any) -> int:
    spec = {"calculations": [{"op": "COUNT"}], "filters": [{"column": column, "op": "=", "value": value}],
            "time_range": 3600}
    h = {"x-honeycomb-team": key}
    q = httpx.post(f"{url}/1/queries/{dataset}", json=spec, headers=h, timeout=60)
    assert q.status_code == 200, q.text
    r = httpx.post(f"{url}/1/query_results/{dataset}", json={"query_id": q.json()["id"]}, headers=h, timeout=60)
    assert r.status_code == 201, r.text
    assert r.json()["complete"] is True
    rows = r.json()["data"]["results"]
    return rows[0]["data"]["COUNT"] if rows else 0


def test_an_environment_past_its_column_cap_overflows_alone(store: str, start: Start) -> None:
    served = start(store, {"wide": False, "narrow": False}, "--max-env-columns", "3")
    many = {f"w{i}": i for i in range(8)}
    result, spans = export_spans(served.url, served.keys["wide"], "wide-svc", _span_with(many))
    assert result is SpanExportResult.SUCCESS
    stored = trace_of(served.url, served.keys["wide"], _trace_id(spans))["spans"][0]
    assert {k: stored[k] for k in many} == many  # every key readable, typed or from the overflow column
    assert _count_where(served.url, served.keys["wide"], "wide-svc", "w7", 7) == 1

    mine = {f"n{i}": i * 10 for i in range(3)}
    result, spans = export_spans(served.url, served.keys["narrow"], "narrow-svc", _span_with(mine))
    assert result is SpanExportResult.SUCCESS
    stored = trace_of(served.url, served.keys["narrow"], _trace_id(spans))["spans"][0]
    assert {k: stored[k] for k in mine} == mine
    assert _count_where(served.url, served.keys["narrow"], "narrow-svc", "n2", 20) == 1


@pytest.fixture(params=["duckdb", "clickhouse"])
def open_store(request: pytest.FixtureRequest, tmp_path: Path):  # noqa: ANN201
    if request.param == "duckdb":
        yield lambda **kw: DuckDBStore(tmp_path / "spans.duckdb", **kw)
        return
    from apiary.store.clickhouse import ClickHouseStore

    url = clickhouse_url(tmp_path)
    yield lambda **kw: ClickHouseStore(url, **kw)
    drop_database(url)


def test_the_column_cap_is_counted_per_environment_in_the_catalogue(open_store: Any) -> None:
    """Where the values live (a typed column, or the overflow JSON) is what the cap decides; the catalogue says it."""
    async def go() -> None:
        store = open_store(max_columns=10, max_env_columns=3)
        await store.append("wide", batch([{f"w{i}": i for i in range(8)}]))
        await store.append("narrow", batch([{f"n{i}": i for i in range(3)}]))
        await store.append("narrow", batch([{"w0": 5, "n3": 1}], trace_id="cd" * 16))  # a 4th key for narrow
        wide = {c.name: c for c in store.columns("wide", "svc") if c.name.startswith("w")}
        assert sorted(n for n, c in wide.items() if c.json_key is None) == ["w0", "w1", "w2"]
        assert sorted(n for n, c in wide.items() if c.json_key) == [f"w{i}" for i in range(3, 8)]
        narrow = {c.name: c for c in store.columns("narrow", "svc")}
        assert [n for n in ("n0", "n1", "n2") if narrow[n].json_key is None] == ["n0", "n1", "n2"]
        assert narrow["w0"].json_key and narrow["n3"].json_key  # its own cap reached, though w0 has a column
        rows = store.trace("narrow", "cd" * 16).to_pylist()
        assert (rows[0]["w0"], rows[0]["n3"]) == (5, 1)
        placed = {env: {(c.name, c.json_key) for c in store.columns(env, "svc")} for env in ("wide", "narrow")}
        await store.close()
        reopened = open_store(max_columns=10, max_env_columns=3)  # the grants outlive a restart
        assert {env: {(c.name, c.json_key) for c in reopened.columns(env, "svc")} for env in placed} == placed
        await reopened.append("wide", batch([{"w9": 9}], trace_id="ef" * 16))
        assert next(c for c in reopened.columns("wide", "svc") if c.name == "w9").json_key == "w9"
        await reopened.close()

    asyncio.run(go())


def _listed(url: str, key: str, dataset: str) -> set[str]:
    r = httpx.get(f"{url}/1/columns/{dataset}", headers={"x-honeycomb-team": key}, timeout=60)
    assert r.status_code == 200, r.text
    return {c["key_name"] for c in r.json()}


def test_a_dataset_past_its_column_cap_keeps_the_values_but_lists_no_new_key(store: str, start: Start) -> None:
    """A client that invents keys stops growing its dataset's catalogue (and the server's memory) at the cap."""
    served = start(store, {"inventive": False, "other": False}, "--max-dataset-columns", "40")
    key = served.keys["inventive"]
    first = {f"early{i:02d}": i for i in range(10)}
    result, spans = export_spans(served.url, key, "inventive-svc", _span_with(first))
    assert result is SpanExportResult.SUCCESS
    before = _listed(served.url, key, "inventive-svc")
    assert set(first) <= before and len(before) <= 40

    invented = {f"late{i:02d}": i for i in range(60)}
    result, spans = export_spans(served.url, key, "inventive-svc", _span_with(invented))
    assert result is SpanExportResult.SUCCESS
    after = _listed(served.url, key, "inventive-svc")
    assert len(after) == 40 and before <= after and {"duration_ms", "name", "trace.trace_id"} <= after
    stored = trace_of(served.url, key, _trace_id(spans))["spans"][0]
    assert {k: stored[k] for k in invented} == invented  # every value kept with its span, listed or not
    unlisted = sorted(set(invented) - after)
    assert unlisted  # 60 new keys cannot fit in 40
    listed_late = sorted(set(invented) & after)
    if listed_late:
        assert _count_where(served.url, key, "inventive-svc", listed_late[0], invented[listed_late[0]]) == 1
    spec = {"calculations": [{"op": "COUNT"}], "filters": [{"column": unlisted[0], "op": "=", "value": 1}]}
    q = httpx.post(f"{served.url}/1/queries/inventive-svc", json=spec, headers={"x-honeycomb-team": key}, timeout=60)
    assert q.status_code == 400 and "unknown column" in q.text

    result, spans = export_spans(served.url, key, "inventive-svc", _span_with({"early03": 33}))
    assert result is SpanExportResult.SUCCESS  # a listed key stays queryable past the cap
    assert _count_where(served.url, key, "inventive-svc", "early03", 33) == 1

    theirs = {f"o{i:02d}": i for i in range(15)}  # another environment's dataset has its own 40
    result, spans = export_spans(served.url, served.keys["other"], "other-svc", _span_with(theirs))
    assert result is SpanExportResult.SUCCESS
    assert set(theirs) <= _listed(served.url, served.keys["other"], "other-svc")


def test_the_dataset_column_cap_holds_across_a_restart(open_store: Any) -> None:
    """The count is what the catalogue table lists, so a restarted server does not list another cap's worth."""
    async def go() -> None:
        store = open_store(max_dataset_columns=30)
        await store.append("e", batch([{f"a{i:02d}": i for i in range(50)}]))
        listed = {c.name for c in store.columns("e", "svc")}
        assert len(listed) == 30
        await store.close()
        reopened = open_store(max_dataset_columns=30)
        await reopened.append("e", batch([{f"b{i:02d}": i for i in range(20)}], trace_id="cd" * 16))
        assert {c.name for c in reopened.columns("e", "svc")} == listed
        await reopened.append("e", batch([{f"c{i:02d}": i for i in range(5)}], dataset="fresh", trace_id="ef" * 16))
        assert {f"c{i:02d}" for i in range(5)} <= {c.name for c in reopened.columns("e", "fresh")}
        await reopened.close()

    asyncio.run(go())
