"""The span store contract, run against every store: DuckDB, and ClickHouse (chdb here, a server with APIARY_CLICKHOUSE_URL).

Typed columns, overflow, the catalogue, reopen, retention, concurrency: each story told once for both stores
(the log and error stores' contract is tests/store/test_log_error_contract.py).
"""

from __future__ import annotations

import asyncio
import contextvars
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

import pytest

from apiary.model.builder import BatchBuilder
from apiary.model.span import SpanBatch
from apiary.query.engine import run_query
from apiary.query.spec import QuerySpec
from apiary.store import read_scope
from apiary.store.duckdb import DuckDBStore
from tests.clickhouse.conftest import clickhouse_url, drop_database
from tests.store.spans import batch, run

Opener = Callable[..., Any]


@pytest.fixture(params=["duckdb", "clickhouse"])
def kind(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def open_store(kind: str, tmp_path: Path):  # noqa: ANN201
    """Opens the store under test, always at the same place within one test (so reopening finds the data)."""
    if kind == "duckdb":
        yield lambda **kw: DuckDBStore(tmp_path / "spans.duckdb", **kw)
        return
    from apiary.store.clickhouse import ClickHouseStore

    url = clickhouse_url(tmp_path)
    yield lambda **kw: ClickHouseStore(url, **kw)
    drop_database(url)



def test_a_read_acting_for_an_environment_sees_its_spans_alone(open_store: Opener) -> None:
    """What the permission check sets for every request: ``spans`` is then that environment's spans, whatever
    the statement's form (its own CTEs, a recursive one), and its answers are those of the whole store's
    ``spans`` filtered to it; another environment's wide table does not come into it."""
    store = open_store()
    try:
        run(store.append("calm", batch([{"http.route": "/a"}, {"http.route": "/b"}], trace_id="a" * 32)))
        run(store.append("wide", batch([{f"k{i}": i for i in range(80)}] * 3, trace_id="b" * 32)))
        calm = contextvars.copy_context()
        calm.run(read_scope.act_for, "calm")

        def n(sql: str) -> int:
            return int(calm.run(store.query, sql).column(0)[0].as_py())

        assert n("SELECT count(*) AS n FROM spans") == 2
        assert n("WITH x AS (SELECT * FROM spans) SELECT count(*) AS n FROM x") == 2
        assert n("WITH RECURSIVE x AS (SELECT 1 AS i UNION ALL SELECT i + 1 FROM x WHERE i < 3) "
                 "SELECT count(*) AS n FROM spans, x") == 6
        assert n("SELECT count(*) AS n FROM spans WHERE _env = 'wide'") == 0
        assert n("(SELECT count(*) AS n FROM spans) UNION ALL (SELECT count(*) AS n FROM spans)") == 2
        spec = QuerySpec.model_validate({"time_range": 3600, "breakdowns": ["http.route"],
                                         "calculations": [{"op": "COUNT"}]})
        scoped = calm.run(run_query, store, "calm", "svc", spec).data["results"]
        assert scoped == run_query(store, "calm", "svc", spec).data["results"]
        assert {r["data"]["http.route"]: r["data"]["COUNT"] for r in scoped} == {"/a": 1, "/b": 1}
        assert n("SELECT count(*) AS n FROM spans") == 2, "the same again, its table now known to be there"
        assert int(store.query("SELECT count(*) AS n FROM spans").column(0)[0].as_py()) == 5, "outside: every one"
    finally:
        run(store.close())


def test_types_survive_and_conflicts_are_kept(open_store: Opener) -> None:
    async def go() -> None:
        store = open_store()
        await store.append("e", batch([{"n": 1, "ok": True, "x": 1.5}, {"n": 2.5, "ok": False}]))
        await store.append("e", batch([{"n": "many"}], trace_id="cd" * 16))
        cols = {(c.name, c.type) for c in store.columns("e", "svc")}
        assert ("n", "float") in cols and ("n", "string") in cols and ("ok", "boolean") in cols
        rows = store.trace("e", "ab" * 16).to_pylist()
        assert [r["n"] for r in rows] == [1.0, 2.5]
        assert [r["ok"] for r in rows] == [True, False]
        assert store.trace("e", "cd" * 16).to_pylist()[0]["n"] == "many"
        await store.close()

    run(go())


def test_keys_differing_in_case_stay_apart(open_store: Opener) -> None:
    async def go() -> None:
        store = open_store()
        await store.append("e", batch([{"User": "a", "user": "b"}]))
        row = store.trace("e", "ab" * 16).to_pylist()[0]
        assert (row["User"], row["user"]) == ("a", "b")
        await store.close()

    run(go())


def test_keys_that_print_like_other_keys_stay_apart(open_store: Opener) -> None:
    """A key may hold a newline, a colon and a type's name: ``x: int64\\ny`` is one string key, and ``x`` (an
    integer) beside ``y`` (a string) are two, though Arrow prints the two batches' schemas alike. The DuckDB
    store looks a batch's layout up by its schema; a lookup by that print would load the second batch with
    the first one's columns."""
    async def go() -> None:
        store = open_store()
        one, two = batch([{"x: int64\ny": "one key"}]), batch([{"x": 7, "y": "two keys"}], trace_id="cd" * 16)
        assert one.table.schema.to_string() == two.table.schema.to_string()
        await store.append("e", one)
        await store.append("e", two)
        first, second = store.trace("e", "ab" * 16).to_pylist()[0], store.trace("e", "cd" * 16).to_pylist()[0]
        assert first["x: int64\ny"] == "one key" and "x" not in first
        assert (second["x"], second["y"]) == (7, "two keys") and "x: int64\ny" not in second
        await store.close()

    run(go())


def test_past_the_column_cap_keys_overflow_but_stay_readable(open_store: Opener) -> None:
    async def go() -> None:
        store = open_store(max_columns=3)
        await store.append("e", batch([{f"k{i}": i for i in range(6)}]))
        row = store.trace("e", "ab" * 16).to_pylist()[0]
        assert [row[f"k{i}"] for i in range(6)] == list(range(6))
        overflowed = [c for c in store.columns("e", "svc") if c.json_key]
        assert sorted(c.name for c in overflowed) == ["k3", "k4", "k5"]
        await store.close()

    run(go())


def test_a_column_is_catalogued_only_for_the_datasets_whose_spans_carry_it(open_store: Opener) -> None:
    def two_services(only_a: object) -> SpanBatch:
        b = BatchBuilder(3)
        for i, ds in enumerate(["a", "b", "b"]):
            b.core["timestamp"][i] = int(datetime.now(timezone.utc).timestamp() * 1_000_000)
            b.core["trace.trace_id"][i] = "ab" * 16
            b.core["trace.span_id"][i] = f"{i:016x}"
            b.core["service.name"][i] = b.dataset[i] = ds
            b.set_attr(i, "everywhere", i)
        b.set_attr(0, "only_a", only_a)
        return b.build()

    async def go() -> None:
        store = open_store()
        # Same schema, so the loader takes them as one run holding both datasets.
        await store.append("e", two_services("x"))
        await store.append("e", two_services("y"))
        names = {ds: {c.name for c in store.columns("e", ds)} for ds in ("a", "b")}
        assert {"only_a", "everywhere"} <= names["a"]
        assert "everywhere" in names["b"] and "only_a" not in names["b"]
        assert "trace.parent_id" not in names["a"]  # null in every row: in no dataset
        await store.close()

    run(go())


def test_catalogue_and_rows_survive_reopen(open_store: Opener) -> None:
    async def go() -> None:
        store = open_store()
        await store.append("e", batch([{"app.result_length": 3}]))
        await store.close()
        again = open_store()
        assert [d.name for d in again.datasets("e")] == ["svc"]
        assert any(c.name == "app.result_length" and c.type == "integer" for c in again.columns("e", "svc"))
        assert again.trace("e", "ab" * 16).to_pylist()[0]["app.result_length"] == 3
        assert again.datasets("other") == [] and again.trace("other", "ab" * 16).num_rows == 0
        await again.close()

    run(go())


def test_retention_deletes_by_age(open_store: Opener) -> None:
    async def go() -> None:
        store = open_store()
        old = datetime.now(timezone.utc) - timedelta(days=40)
        await store.append("e", batch([{}, {}], trace_id="01" * 16, ts=old))
        await store.append("e", batch([{}], trace_id="02" * 16))
        assert store.delete_older_than(datetime.now(timezone.utc) - timedelta(days=30)) == 2
        assert store.trace("e", "01" * 16).num_rows == 0
        assert store.trace("e", "02" * 16).num_rows == 1
        await store.close()

    run(go())


def test_concurrent_appends_share_commits(open_store: Opener) -> None:
    async def go() -> None:
        store = open_store()
        await asyncio.gather(*[store.append("e", batch([{"i": i}], trace_id=f"{i:032x}")) for i in range(1, 201)])
        assert store.count("e") == 200
        assert store._writer.commits < 200  # grouped, not one transaction per request
        await store.close()

    run(go())


def test_last_seen_is_written_back(open_store: Opener, kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import apiary.store.clickhouse.store as clickhouse_module
    import apiary.store.duckdb.store as duckdb_module

    monkeypatch.setattr(duckdb_module if kind == "duckdb" else clickhouse_module, "_LAST_SEEN_FLUSH_S", 0.0)

    async def go() -> None:
        store = open_store()
        await store.append("e", batch([{"k": 1}]))
        first = {c.name: c.last_seen for c in store.columns("e", "svc")}["k"]
        await asyncio.sleep(0.01)
        await store.append("e", batch([{"k": 2}], trace_id="ef" * 16))
        await store.close()
        again = open_store()
        col = {c.name: c for c in again.columns("e", "svc")}["k"]
        assert col.last_seen > first and col.first_seen <= first
        assert again.datasets("e")[0].last_written > again.datasets("e")[0].created_at
        await again.close()

    run(go())


def test_span_counts_and_environments_stay_apart(open_store: Opener) -> None:
    async def go() -> None:
        store = open_store()
        await store.append("e", batch([{}, {}], dataset="a"))
        await store.append("e", batch([{}], dataset="b", trace_id="cd" * 16))
        await store.append("f", batch([{}], dataset="a"))
        assert store.span_counts("e") == {"a": 2, "b": 1}
        assert store.span_counts("f") == {"a": 1}
        assert [r["meta.dataset"] for r in store.trace("e", "ab" * 16).to_pylist()] == ["a", "a"]
        await store.close()

    run(go())
