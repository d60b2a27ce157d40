"""On ClickHouse each environment's spans have a table of their own, and a store from before keeps its spans.

ClickHouse writes every column of a table in every part, so a flooding environment's attributes must not widen
the table a calm environment's inserts go into: each environment's table holds the core columns and only the
typed columns that environment was granted, while ``spans`` (what queries read) is a ``Merge`` table over them
all. A store built with one shared ``spans`` MergeTree (schema version 2) is opened by this version with
nothing lost, also after a crash between moving that table aside and creating the ``Merge`` table. Run on the
real engine (chdb, or a server when ``APIARY_CLICKHOUSE_URL`` is set).
"""

from __future__ import annotations

import contextvars
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from apiary.query.engine import run_query
from apiary.query.spec import QuerySpec
from apiary.store import read_scope
from tests.clickhouse.conftest import clickhouse_url, drop_database
from tests.store.spans import batch, run


def _width(store: Any, table: str) -> int:
    return store.query("SELECT count() AS n FROM system.columns WHERE database = currentDatabase() "
                       "AND table = {t:String}", {"t": table}).column(0)[0].as_py()


def _counts(store: Any, env: str, by: str) -> dict[Any, int]:
    spec = QuerySpec.model_validate({"time_range": 3600, "breakdowns": [by], "calculations": [{"op": "COUNT"}]})
    return {r["data"][by]: r["data"]["COUNT"] for r in run_query(store, env, "svc", spec).data["results"]}


def test_a_flooding_environment_widens_only_its_own_table(tmp_path: Path) -> None:
    from apiary.store.clickhouse import ClickHouseStore

    url = clickhouse_url(tmp_path)
    store = ClickHouseStore(url, max_env_columns=40)
    try:
        run(store.append("calm", batch([{"http.route": "/a"}, {"http.route": "/b"}], trace_id="a" * 32)))
        calm_width = _width(store, store.span_table("calm"))
        run(store.append("flood", batch([{f"k{i}": i for i in range(60)}] * 3, trace_id="b" * 32)))
        run(store.append("calm", batch([{"http.route": "/a"}], trace_id="c" * 32)))

        assert _width(store, store.span_table("calm")) == calm_width, "the flood added no column to calm's table"
        assert _width(store, store.span_table("flood")) == calm_width - 1 + 40, "flood's table: its 40 granted keys"
        assert _width(store, "spans") >= calm_width + 40, "queries read every environment's columns"
        assert _counts(store, "calm", "http.route") == {"/a": 2, "/b": 1}
        assert _counts(store, "flood", "k3") == {3: 3}
        assert store.trace("calm", "a" * 32).column("http.route").to_pylist() == ["/a", "/b"]
        assert store.trace("flood", "b" * 32).column("k39").to_pylist() == [39] * 3
        assert store.count("calm") == 3 and store.count() == 6
    finally:
        store.close_sync()
        drop_database(url)


def _make_version_2(store: Any, *, crashed: bool) -> None:
    """Lay the store's tables out as schema version 2 had them: one shared ``spans`` MergeTree (every
    environment's rows and columns in it), no per-environment table. ``crashed``: as left by a crash
    after this version moved that table aside, before it created the ``Merge`` table."""
    tables = [store.span_table("e"), store.span_table("other")]
    store.client.command("DROP TABLE spans")
    store.client.command(f"RENAME TABLE {tables[0]} TO spans")
    other = store.query("SELECT name, type FROM system.columns WHERE database = currentDatabase() "
                        "AND table = {t:String}", {"t": tables[1]}).to_pylist()
    store.client.command("ALTER TABLE spans " + ", ".join(f"ADD COLUMN IF NOT EXISTS `{c['name']}` {c['type']}"
                                                          for c in other))
    names = ", ".join(f"`{c['name']}`" for c in other)
    store.client.command(f"INSERT INTO spans ({names}) SELECT {names} FROM {tables[1]}")
    store.client.command(f"DROP TABLE {tables[1]}")
    store.client.command("ALTER TABLE schema_version DELETE WHERE version > 2 SETTINGS mutations_sync = 1")
    if crashed:
        store.client.command("RENAME TABLE spans TO spans_legacy")


@pytest.mark.parametrize("crashed", [False, True], ids=["version-2", "crash-mid-upgrade"])
def test_a_store_with_one_shared_table_keeps_every_span(tmp_path: Path, crashed: bool) -> None:
    from apiary.store.clickhouse import ClickHouseStore
    from apiary.store.clickhouse.store import SCHEMA_VERSION

    url = clickhouse_url(tmp_path)
    old = ClickHouseStore(url)
    now = datetime.now(timezone.utc)
    run(old.append("e", batch([{"http.route": "/old"}] * 2, trace_id="a" * 32, ts=now - timedelta(minutes=5))))
    run(old.append("other", batch([{"user.id": 7}], trace_id="b" * 32, ts=now - timedelta(days=3))))
    _make_version_2(old, crashed=crashed)
    old.close_sync()

    store = ClickHouseStore(url)
    try:
        assert store.query("SELECT max(version) AS v FROM schema_version").column(0)[0].as_py() == SCHEMA_VERSION
        run(store.append("e", batch([{"http.route": "/new", "retries": 2}], trace_id="a" * 32)))
        assert _counts(store, "e", "http.route") == {"/old": 2, "/new": 1}
        acting_for_e = contextvars.copy_context()
        acting_for_e.run(read_scope.act_for, "e")
        assert acting_for_e.run(_counts, store, "e", "http.route") == {"/old": 2, "/new": 1}, \
            "a read acting for e finds its spans in the old table and in its own"
        assert acting_for_e.run(store.query, "SELECT count() AS n FROM spans").column(0)[0].as_py() == 3
        assert store.trace("e", "a" * 32).column("http.route").to_pylist() == ["/old", "/old", "/new"]
        assert store.trace("other", "b" * 32).column("user.id").to_pylist() == [7]
        assert store.span_counts("e") == {"svc": 3} and store.count() == 4
        assert _width(store, store.span_table("e")) < _width(store, "spans"), "new spans go to e's own table"

        assert store.delete_older_than(now - timedelta(days=1)) == 1, "retention reaches the old table too"
        assert store.count("other") == 0 and store.count("e") == 3
    finally:
        store.close_sync()
        drop_database(url)


def test_a_group_whose_later_insert_fails_writes_no_span_twice(tmp_path: Path) -> None:
    """One group commit holds two environments' batches; the second environment's insert fails once. The group
    committer retries each batch alone: the first environment's spans, already in, are not written again, the
    second's are written by their retry, and both requests succeed with every span there once."""
    import asyncio
    import threading

    from apiary.store.clickhouse import ClickHouseStore
    from apiary.store.clickhouse.client import ClickHouseError

    url = clickhouse_url(tmp_path)
    store = ClickHouseStore(url)
    insert = store.client.insert_arrow
    busy, release, failed = threading.Event(), threading.Event(), []

    def faulty(table: str, data: Any, settings: Any = None) -> None:
        if table == store.span_table("first"):
            busy.set()
            release.wait(30)  # the writer busy: the two batches below queue up and go in one group
        if table == store.span_table("b") and not failed:
            failed.append(table)
            raise ClickHouseError("Code: 241. DB::Exception: Memory limit exceeded (injected)")
        insert(table, data, settings)

    store.client.insert_arrow = faulty  # type: ignore[method-assign]
    try:
        async def go() -> list[BaseException | None]:
            first = asyncio.ensure_future(store.append("first", batch([{"k": 0}], trace_id="f" * 32)))
            await asyncio.to_thread(busy.wait, 30)
            grouped = [asyncio.ensure_future(store.append("a", batch([{"k": 1}] * 2, trace_id="a" * 32))),
                       asyncio.ensure_future(store.append("b", batch([{"k": 2}] * 3, trace_id="b" * 32)))]
            await asyncio.sleep(0.2)
            release.set()
            return await asyncio.gather(first, *grouped, return_exceptions=True)

        assert run(go()) == [None, None, None]
        assert failed == [store.span_table("b")], "b's insert failed once, inside the group"
        assert (store.count("a"), store.count("b")) == (2, 3)
        assert store.trace("a", "a" * 32).column("k").to_pylist() == [1, 1]
        assert _counts(store, "a", "k") == {1: 2} and _counts(store, "b", "k") == {2: 3}
    finally:
        store.close_sync()
        drop_database(url)
