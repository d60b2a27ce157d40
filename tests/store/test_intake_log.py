"""Spans acknowledged through the intake log: seen at once, kept across a crash, loaded exactly once."""

from __future__ import annotations

import asyncio
import struct
import subprocess
import sys
import textwrap
import time
import zlib
from pathlib import Path

import pyarrow as pa

from apiary.model import ipc
from apiary.model.span import SpanBatch
from apiary.store.duckdb import DuckDBStore
from tests.store.spans import arrivals, batch

ROOT = Path(__file__).resolve().parents[2]


def run(coro):  # noqa: ANN001, ANN201
    return asyncio.run(coro)


def crash_after_appends(path: Path, batches: int) -> None:
    """A process that gets ``batches`` appends of 100 spans acknowledged, then dies without closing.

    Its loader waits for an hour, so none of those spans reached DuckDB: all of them are only in
    the intake log.
    """
    script = textwrap.dedent(f"""
        import asyncio, os, sys
        sys.path.insert(0, {str(ROOT)!r})
        import apiary.store.duckdb.store as d
        from tests.store.spans import batch
        d.LOAD_DELAY_S = 3600.0
        async def go():
            store = d.DuckDBStore({str(path)!r})
            for i in range({batches}):
                await store.append("e", batch([{{"req": i, "k": j}} for j in range(100)], trace_id=f"{{i:032x}}"))
            assert store.writer_stats()["loaded_rows"] == 0
            os._exit(0)
        asyncio.run(go())
    """)
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)


def test_a_read_sees_every_acknowledged_span_at_once(tmp_path: Path) -> None:
    async def go() -> None:
        store = DuckDBStore(tmp_path / "spans.duckdb")
        await store.append("e", batch([{"k": 1}, {"k": 2}, {"k": 3}]))
        # Far below a row group and well inside the load delay: only the read's flush loads it.
        assert store.count("e") == 3
        assert [r["k"] for r in store.trace("e", "ab" * 16).to_pylist()] == [1, 2, 3]
        assert ("k", "integer") in {(c.name, c.type) for c in store.columns("e", "svc")}
        await store.close()

    run(go())


def test_acknowledged_spans_come_back_after_a_crash_once(tmp_path: Path) -> None:
    path = tmp_path / "spans.duckdb"
    crash_after_appends(path, 7)
    store = DuckDBStore(path)
    assert store.count("e") == 700
    rows = store.trace("e", f"{3:032x}").to_pylist()
    assert sorted(r["k"] for r in rows) == list(range(100)) and {r["req"] for r in rows} == {3}
    store.close_sync()
    # The watermark was written with the load: a second start loads nothing again.
    again = DuckDBStore(path)
    assert again.count("e") == 700
    run(again.append("e", batch([{"k": 1}], trace_id="ef" * 16)))
    assert again.count("e") == 701
    again.close_sync()


def test_a_replay_keeps_the_time_each_batch_was_first_accepted(tmp_path: Path) -> None:
    path = tmp_path / "spans.duckdb"
    before = time.time()
    crash_after_appends(path, 3)
    after = time.time()
    time.sleep(1.5)  # the replay comes well after every batch was accepted
    store = DuckDBStore(path)
    replayed_from = time.time()
    times = arrivals(store, by="req")
    assert sorted(times) == [0, 1, 2]
    assert all(t is not None and before <= t <= after < replayed_from for t in times.values()), (before, after, times)
    store.close_sync()


def test_an_intake_log_from_before_arrival_times_replays_without_them(tmp_path: Path) -> None:
    """An entry as the previous version wrote it (magic ``APIL``: environment, then the batch), left by a crash."""
    env, table = b"e", batch([{"k": 1}, {"k": 2}]).table
    body = struct.pack("<H", len(env)) + env + ipc.to_ipc(table)
    (tmp_path / "spans.duckdb.intake").mkdir()
    (tmp_path / "spans.duckdb.intake" / f"{1:016d}.log").write_bytes(
        struct.pack("<4sQII", b"APIL", 1, len(body), zlib.crc32(body)) + body)
    store = DuckDBStore(tmp_path / "spans.duckdb")
    assert arrivals(store) == {1: None, 2: None}  # loaded, with no arrival time rather than a made-up one
    run(store.append("e", batch([{"k": 3}], trace_id="ef" * 16)))
    assert arrivals(store)[3] is not None
    store.close_sync()


def test_a_torn_last_entry_is_cut_off_and_the_rest_kept(tmp_path: Path) -> None:
    path = tmp_path / "spans.duckdb"
    crash_after_appends(path, 3)
    segment = sorted((tmp_path / "spans.duckdb.intake").glob("*.log"))[-1]
    whole = segment.stat().st_size
    with open(segment, "ab") as f:  # a crash in the middle of a write: header and part of a body
        f.write(b"APIL" + (4).to_bytes(8, "little") + (5000).to_bytes(4, "little") + b"\0" * 4 + b"partial")
    store = DuckDBStore(path)
    assert store.count("e") == 300
    assert segment.stat().st_size == whole
    run(store.append("e", batch([{"k": 1}], trace_id="ef" * 16)))
    assert store.count("e") == 301
    store.close_sync()
    assert DuckDBStore(path).count("e") == 301


def test_a_batch_the_database_refuses_is_set_aside_and_the_others_load(tmp_path: Path) -> None:
    async def go() -> None:
        store = DuckDBStore(tmp_path / "spans.duckdb")
        good = batch([{"k": 1}, {"k": 2}])
        table = good.table
        # A duration DuckDB cannot cast into its DOUBLE column: only the load can find that out.
        bad = SpanBatch(table.set_column(table.column_names.index("duration_ms"), "duration_ms",
                                         pa.array(["not a number"] * 2)))
        await store.append("e", good)
        await store.append("e", bad)
        await store.append("e", batch([{"k": 3}], trace_id="cd" * 16))
        assert store.count("e") == 3
        aside = list((tmp_path / "spans.duckdb.intake" / "set-aside").glob("*.arrows"))
        assert len(aside) == 1
        kept = pa.ipc.open_stream(aside[0].read_bytes()).read_all()
        assert kept.num_rows == 2 and kept.schema.metadata[b"environment"] == b"e"
        await store.close()
        # Not loaded again at the next start, and not lost either.
        again = DuckDBStore(tmp_path / "spans.duckdb")
        assert again.count("e") == 3
        again.close_sync()

    run(go())


def test_a_backlog_past_its_bound_is_refused_and_nothing_taken_is_lost(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    import apiary.store.duckdb.store as d
    from apiary.store.base import StoreOverloaded

    monkeypatch.setattr(d, "LOAD_DELAY_S", 3600.0)  # nothing loads until a reader asks

    async def go() -> None:
        store = DuckDBStore(tmp_path / "spans.duckdb", max_pending_rows=1_000)
        await store.append("e", batch([{"k": i} for i in range(600)]))
        try:
            await store.append("e", batch([{"k": i} for i in range(600)], trace_id="cd" * 16))
            raise AssertionError("a backlog of 1,200 rows past a bound of 1,000 was taken")
        except StoreOverloaded as exc:
            assert exc.retry_after >= 1
        assert store.count("e") == 600  # the read loads the backlog ...
        await store.append("e", batch([{"k": i} for i in range(600)], trace_id="cd" * 16))  # ... and room is back
        assert store.count("e") == 1_200
        await store.close()

    run(go())
