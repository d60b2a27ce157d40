"""Spans cut into partitions behind the ``spans`` view: traces across them, late columns, retention, upgrade."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from pathlib import Path

import duckdb
import pytest

import apiary.store.duckdb.partitions as partitions
from apiary.store.duckdb import DuckDBStore
from tests.store.spans import batch


@pytest.fixture(autouse=True)
def small_partitions(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(partitions, "PARTITION_ROWS", 1_000)


def load(store: DuckDBStore, *batches: tuple[list[dict], str, datetime | None]) -> None:
    """Each batch in a load of its own (the flush after each append), as a busy loader would cut them."""
    async def go() -> None:
        for rows, trace_id, ts in batches:
            await store.append("e", batch(rows, trace_id=trace_id, ts=ts))
            store.flush()
    asyncio.run(go())


def partition_tables(path: Path) -> list[str]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return [r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_name LIKE 'spans_p%' ORDER BY 1").fetchall()]
    finally:
        con.close()


def test_traces_and_scans_span_every_partition(tmp_path: Path) -> None:
    path = tmp_path / "spans.duckdb"
    store = DuckDBStore(path)
    load(store,
         ([{"k": i} for i in range(600)], "01" * 16, None),
         ([{"k": i} for i in range(300)], "02" * 16, None),   # 900 rows: still the first partition
         ([{"k": i} for i in range(300)], "02" * 16, None),   # would make 1,200: a second one, same trace
         ([{"k": i, "late": "yes"} for i in range(800)], "03" * 16, None))  # a third, with a new column
    assert store.count("e") == 2_000
    assert store.query("SELECT count(*) AS n FROM spans WHERE _env = 'e'").column(0)[0].as_py() == 2_000
    split = store.trace("e", "02" * 16).to_pylist()
    assert len(split) == 600 and sorted(r["k"] for r in split) == sorted(list(range(300)) * 2)
    assert [r["timestamp"] for r in split] == sorted(r["timestamp"] for r in split)
    first = store.trace("e", "01" * 16).to_pylist()
    assert len(first) == 600 and "late" not in first[0]
    assert {r["late"] for r in store.trace("e", "03" * 16).to_pylist()} == {"yes"}
    store.close_sync()
    assert partition_tables(path) == ["spans_p0001", "spans_p0002", "spans_p0003"]

    again = DuckDBStore(path)  # the list survives a restart, and loads go on into the last partition
    load(again, ([{"k": 1}], "04" * 16, None))
    assert again.count("e") == 2_001 and len(again.trace("e", "04" * 16)) == 1
    again.close_sync()
    assert partition_tables(path) == ["spans_p0001", "spans_p0002", "spans_p0003"]


def test_retention_drops_whole_partitions_and_trims_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "spans.duckdb"
    now = datetime.now(timezone.utc)
    old = now - timedelta(days=3)
    store = DuckDBStore(path)
    load(store,
         ([{"k": i} for i in range(900)], "0a" * 16, old),
         ([{"k": i} for i in range(500)], "0b" * 16, old),   # second partition: old ...
         ([{"k": i} for i in range(100)], "0c" * 16, now),   # ... and new spans
         ([{"k": i} for i in range(800)], "0d" * 16, now))   # third, the active one
    assert store.delete_older_than(now - timedelta(days=1)) == 1_400
    assert store.count("e") == 900
    assert len(store.trace("e", "0a" * 16)) == 0 and len(store.trace("e", "0b" * 16)) == 0
    assert len(store.trace("e", "0c" * 16)) == 100 and len(store.trace("e", "0d" * 16)) == 800
    store.close_sync()
    assert partition_tables(path) == ["spans_p0002", "spans_p0003"]


def test_a_store_from_before_partitions_is_upgraded_in_place(tmp_path: Path) -> None:
    path = tmp_path / "spans.duckdb"
    store = DuckDBStore(path)
    load(store, ([{"k": i} for i in range(10)], "0e" * 16, None))
    store.close_sync()
    # Put the file back in the layout of schema version 1: one table named spans, no partition column.
    con = duckdb.connect(str(path))
    con.execute("DROP VIEW spans")
    con.execute("ALTER TABLE spans_p0001 RENAME TO spans")
    con.execute("DROP TABLE span_partitions")
    con.execute("CREATE TABLE ti AS SELECT _env, trace_id, ts_min, ts_max FROM trace_index")
    con.execute("DROP TABLE trace_index")
    con.execute("ALTER TABLE ti RENAME TO trace_index")
    con.execute("UPDATE schema_version SET version = 1")
    con.close()

    upgraded = DuckDBStore(path)
    assert [r["k"] for r in upgraded.trace("e", "0e" * 16).to_pylist()] == list(range(10))
    load(upgraded, ([{"k": i} for i in range(995)], "0f" * 16, None))  # 1,005 rows: into a new partition
    assert upgraded.count("e") == 1_005 and len(upgraded.trace("e", "0f" * 16)) == 995
    assert upgraded.query("SELECT version FROM schema_version").column(0)[0].as_py() == 2
    upgraded.close_sync()
    assert partition_tables(path) == ["spans_p0001", "spans_p0002"]
