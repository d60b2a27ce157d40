"""Each environment's spans in partitions of its own behind its ``spans`` view: traces across them, late columns,
retention, columns that stay in their environment, and the upgrades from one table and from shared partitions."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from pathlib import Path

import duckdb
import pytest

import apiary.store.duckdb.partitions as partitions
from apiary.store.duckdb import DuckDBStore
from apiary.store.duckdb.store import SCHEMA_VERSION
from tests.store.spans import arrivals, batch


@pytest.fixture(autouse=True)
def small_partitions(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(partitions, "PARTITION_ROWS", 1_000)


def load(store: DuckDBStore, *batches: tuple[list[dict], str, datetime | None], env: str = "e") -> None:
    """Each batch in a load of its own (the flush after each append), as a busy loader would cut them."""
    async def go() -> None:
        for rows, trace_id, ts in batches:
            await store.append(env, batch(rows, trace_id=trace_id, ts=ts))
            store.flush()
    asyncio.run(go())


def partition_tables(path: Path) -> list[str]:
    """Every span table of the file, as ``schema.table``."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        return [r[0] for r in con.execute(
            "SELECT table_schema || '.' || table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE' "
            "AND (table_schema LIKE 'spans_e%' OR table_name LIKE 'spans_p%') ORDER BY 1").fetchall()]
    finally:
        con.close()


def table_columns(path: Path, table: str) -> set[str]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return {r[0] for r in con.execute(f"SELECT column_name FROM (DESCRIBE {table})").fetchall()}
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
    assert partition_tables(path) == ["spans_e0001.p0001", "spans_e0001.p0002", "spans_e0001.p0003"]

    again = DuckDBStore(path)  # the list survives a restart, and loads go on into the last partition
    load(again, ([{"k": 1}], "04" * 16, None))
    assert again.count("e") == 2_001 and len(again.trace("e", "04" * 16)) == 1
    again.close_sync()
    assert partition_tables(path) == ["spans_e0001.p0001", "spans_e0001.p0002", "spans_e0001.p0003"]


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
    assert partition_tables(path) == ["spans_e0001.p0002", "spans_e0001.p0003"]


def test_a_store_from_before_partitions_is_upgraded_in_place(tmp_path: Path) -> None:
    path = tmp_path / "spans.duckdb"
    store = DuckDBStore(path)
    load(store, ([{"k": i} for i in range(10)], "0e" * 16, None))
    store.close_sync()
    # Put the file back in the layout of schema version 1: one table named spans, no partition column.
    con = duckdb.connect(str(path))
    con.execute("DROP VIEW spans")
    con.execute("CREATE TABLE spans AS SELECT * FROM spans_e0001.p0001")
    con.execute("DROP SCHEMA spans_e0001 CASCADE")
    for table in ("span_partitions", "span_environments", "spans_template"):
        con.execute(f"DROP TABLE {table}")
    con.execute("CREATE TABLE ti AS SELECT _env, trace_id, ts_min, ts_max FROM trace_index")
    con.execute("DROP TABLE trace_index")
    con.execute("ALTER TABLE ti RENAME TO trace_index")
    con.execute("UPDATE schema_version SET version = 1")
    con.close()

    upgraded = DuckDBStore(path)
    assert [r["k"] for r in upgraded.trace("e", "0e" * 16).to_pylist()] == list(range(10))
    load(upgraded, ([{"k": i} for i in range(995)], "0f" * 16, None))  # 1,005 rows: into a new partition
    assert upgraded.count("e") == 1_005 and len(upgraded.trace("e", "0f" * 16)) == 995
    assert upgraded.query("SELECT version FROM schema_version").column(0)[0].as_py() == SCHEMA_VERSION
    upgraded.close_sync()
    # The one table became a shared partition (1), whose rows moved into the environment's own (2).
    assert partition_tables(path) == ["spans_e0001.p0002", "spans_e0001.p0003"]


def test_a_store_from_before_arrival_times_is_upgraded_in_place(tmp_path: Path) -> None:
    path = tmp_path / "spans.duckdb"
    store = DuckDBStore(path)
    load(store, ([{"k": i % 5} for i in range(600)], "1a" * 16, None), ([{"k": i % 5} for i in range(600)], "1b" * 16, None))
    store.close_sync()
    tables = partition_tables(path)
    assert len(tables) == 2
    # Put the file back in the layout of schema version 3: span tables and views without the arrival time.
    con = duckdb.connect(str(path))
    for table in [*tables, "spans_template"]:
        con.execute(f"ALTER TABLE {table} DROP COLUMN _ingest_timestamp")
    for (sql,) in con.execute("SELECT sql FROM duckdb_views() WHERE NOT internal").fetchall():
        con.execute(sql.replace("CREATE VIEW", "CREATE OR REPLACE VIEW", 1))
    con.execute("UPDATE schema_version SET version = 3")
    con.close()
    assert all("_ingest_timestamp" not in table_columns(path, t) for t in tables)

    upgraded = DuckDBStore(path)
    assert len(upgraded.trace("e", "1a" * 16)) == 600 and upgraded.count("e") == 1_200
    load(upgraded, ([{"k": 10 + i % 3} for i in range(10)], "1c" * 16, None))
    times = arrivals(upgraded)
    assert sorted(times) == [0, 1, 2, 3, 4, 10, 11, 12]
    assert [times[k] for k in range(5)] == [None] * 5  # never recorded: no made-up time
    assert all(times[k] is not None for k in (10, 11, 12))
    assert "_ingest_timestamp" not in upgraded.trace("e", "1c" * 16).column_names
    assert upgraded.query("SELECT version FROM schema_version").column(0)[0].as_py() == SCHEMA_VERSION
    upgraded.close_sync()
    assert all("_ingest_timestamp" in table_columns(path, t) for t in [*partition_tables(path), "spans_template"])


def test_one_environments_columns_stay_out_of_another_s_tables(tmp_path: Path) -> None:
    path = tmp_path / "spans.duckdb"
    store = DuckDBStore(path)
    load(store, ([{f"wide.{i}": i for i in range(60)}], "1a" * 16, None), env="wide")
    load(store, ([{"calm.user": "ann", "calm.items": 3}], "1b" * 16, None), env="calm")
    load(store, ([{f"wide.{i}": i for i in range(60, 120)}], "1c" * 16, None), env="wide")  # after calm's table exists
    assert store.trace("calm", "1b" * 16).to_pylist()[0]["calm.user"] == "ann"
    assert store.trace("wide", "1c" * 16).to_pylist()[0]["wide.119"] == 119
    # The view outside any environment still holds both, each row with its own columns.
    assert store.query("SELECT count(*) AS n FROM spans").column(0)[0].as_py() == 3
    store.close_sync()
    core = table_columns(path, "spans_template")
    calm = table_columns(path, "spans_e0002.p0002") - core
    assert len(calm) == 2  # calm's two keys: none of wide's 120
    assert len(table_columns(path, "spans_e0001.p0001") - core) == 120


def test_the_column_cap_is_each_environment_s_own(tmp_path: Path) -> None:
    """``max_columns`` bounds one environment's tables: an environment that used its three leaves others theirs."""
    store = DuckDBStore(tmp_path / "spans.duckdb", max_columns=3)
    load(store, ([{f"first.{i}": i for i in range(5)}], "2a" * 16, None), env="first")
    load(store, ([{f"second.{i}": i for i in range(5)}], "2b" * 16, None), env="second")
    for env in ("first", "second"):
        cols = {c.name: c for c in store.columns(env, "svc") if c.name.startswith(env)}
        assert sorted(n for n, c in cols.items() if c.json_key is None) == [f"{env}.{i}" for i in range(3)]
        assert sorted(n for n, c in cols.items() if c.json_key) == [f"{env}.3", f"{env}.4"]
        assert store.trace(env, ("2a" if env == "first" else "2b") * 16).to_pylist()[0][f"{env}.4"] == 4
    store.close_sync()


def _to_shared_partitions(path: Path) -> None:
    """Rewrite a store's file into the layout of schema version 2: partitions shared by every environment."""
    con = duckdb.connect(str(path))
    parts = con.execute("SELECT part, _env FROM span_partitions ORDER BY part").fetchall()
    con.execute("DROP VIEW spans")
    shared: dict[int, list[int]] = {}  # each environment's n-th partition goes into shared partition n
    seen: dict[str, int] = {}
    for part, env in parts:
        seen[env] = seen.get(env, 0) + 1
        shared.setdefault(seen[env], []).append(part)
    schemas = dict(con.execute("SELECT _env, schema_name FROM span_environments").fetchall())
    where = {part: f"{schemas[env]}.p{part:04d}" for part, env in parts}
    for n, members in shared.items():
        body = " UNION ALL BY NAME ".join(f"SELECT * FROM {where[p]}" for p in members)
        con.execute(f"CREATE TABLE spans_p{n:04d} AS {body}")
        con.execute(f"UPDATE trace_index SET part = {n} WHERE part IN ({', '.join(map(str, members))})")
    names = sorted(shared)
    for schema in schemas.values():
        con.execute(f"DROP SCHEMA {schema} CASCADE")
    con.execute("DROP TABLE span_environments")
    con.execute("DROP TABLE spans_template")
    con.execute("DELETE FROM span_partitions")
    con.execute("ALTER TABLE span_partitions DROP COLUMN _env")
    for n in names:
        con.execute(f"""INSERT INTO span_partitions SELECT {n}, count(*), min("timestamp"), max("timestamp")
                        FROM spans_p{n:04d}""")
    con.execute("CREATE VIEW spans AS " + " UNION ALL BY NAME ".join(f"SELECT * FROM spans_p{n:04d}" for n in names))
    con.execute("UPDATE schema_version SET version = 2")
    con.close()


def test_a_store_with_shared_partitions_is_split_by_environment(tmp_path: Path) -> None:
    path = tmp_path / "spans.duckdb"
    store = DuckDBStore(path)
    load(store, ([{"k": i, "a.only": "x"} for i in range(600)], "3a" * 16, None),
         ([{"k": i} for i in range(600)], "3b" * 16, None), env="a")  # two partitions of a
    load(store, ([{"b.only": i} for i in range(300)], "3c" * 16, None), env="b")
    def placed(s: DuckDBStore) -> dict[str, set[tuple[str, str, str | None]]]:
        return {env: {(c.name, c.physical, c.json_key) for c in s.columns(env, "svc")} for env in ("a", "b")}
    before = placed(store)
    store.close_sync()
    _to_shared_partitions(path)
    assert partition_tables(path) == ["main.spans_p0001", "main.spans_p0002"]  # a's first and b's, then a's second

    upgraded = DuckDBStore(path)
    assert upgraded.count("a") == 1_200 and upgraded.count("b") == 300
    assert len(upgraded.trace("a", "3a" * 16)) == 600 and len(upgraded.trace("a", "3b" * 16)) == 600
    assert [r["b.only"] for r in upgraded.trace("b", "3c" * 16).to_pylist()] == list(range(300))
    assert placed(upgraded) == before
    load(upgraded, ([{"b.only": 7, "b.new": True}], "3d" * 16, None), env="b")
    assert upgraded.trace("b", "3d" * 16).to_pylist()[0]["b.new"] is True
    assert upgraded.query("SELECT version FROM schema_version").column(0)[0].as_py() == SCHEMA_VERSION
    upgraded.close_sync()
    # The shared tables are gone; b's one partition (after a's two) has b's two keys and none of a's.
    assert partition_tables(path) == ["spans_e0001.p0003", "spans_e0001.p0005", "spans_e0002.p0004"]
    assert len(table_columns(path, "spans_e0002.p0004") - table_columns(path, "spans_template")) == 2
