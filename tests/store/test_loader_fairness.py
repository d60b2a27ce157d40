"""Loads out of log order: a read waits for its own environment's batches only, and a crash still
replays each acknowledged batch exactly once."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

from apiary.store.bulk_loader import BulkLoader, Loaded
from apiary.store.duckdb import DuckDBStore
from tests.store.spans import batch, run

ROOT = Path(__file__).resolve().parents[2]


def test_a_reader_goes_before_another_environments_costly_batch_queued_ahead_of_it() -> None:
    loads: list[tuple[list[str], Loaded]] = []
    first_running, release = threading.Event(), threading.Event()

    def load(items: list[str], loaded: Loaded) -> None:
        if items == ["flood-1"]:
            first_running.set()
            release.wait(10)  # a long costly load, running when the calm read comes
        loads.append((items, loaded))

    loader: BulkLoader[str] = BulkLoader(load, loaded_seq=0, rows=10_000, delay_s=3600.0, max_group_rows=10_000,
                                         healthy=lambda: True, set_aside=lambda *a: None, cost_trigger=1)
    loader.add(1, "flood-1", 1, key="flood", cost=700)
    assert first_running.wait(10)
    loader.add(2, "flood-2", 1, key="flood", cost=700)
    loader.add(3, "calm-1", 20, key="calm")
    read = threading.Thread(target=lambda: loader.flush(10, "calm"))
    read.start()
    release.set()
    read.join(10)
    loader.close()
    # The read waited for the costly load already running, then its own batch went ahead of flood-2;
    # each load recorded what it holds, so a crash between the last two would replay flood-2 alone.
    assert loads == [(["flood-1"], Loaded(1)), (["calm-1"], Loaded(1, (3,))), (["flood-2"], Loaded(3))]


def test_costly_batches_of_two_environments_are_loaded_in_turns() -> None:
    loads: list[str] = []
    gate = threading.Event()

    def load(items: list[str], loaded: Loaded) -> None:
        gate.wait(10)
        loads.extend(items)

    loader: BulkLoader[str] = BulkLoader(load, loaded_seq=0, rows=10_000, delay_s=3600.0, max_group_rows=10_000,
                                         healthy=lambda: True, set_aside=lambda *a: None, cost_trigger=1)
    for seq, item in enumerate(["a1", "a2", "a3", "b1", "b2"], start=1):
        loader.add(seq, item, 1, key=item[0], cost=500)
    gate.set()
    deadline = time.monotonic() + 10
    while len(loads) < 5 and time.monotonic() < deadline:  # a close would load the rest in log order at once
        time.sleep(0.01)
    loader.close()
    assert loads[0] == "a1"  # already being loaded when the others came
    assert loads[1:] == ["b1", "a2", "b2", "a3"]


def test_with_two_workers_a_reader_does_not_wait_for_the_costly_load_already_running() -> None:
    loads: list[tuple[list[str], Loaded]] = []
    flood_running, release = threading.Event(), threading.Event()

    def load(items: list[str], loaded: Loaded) -> None:
        if items == ["flood-1"]:
            flood_running.set()
            release.wait(10)  # a long costly load, still running when the calm read comes and goes
        loads.append((items, loaded))

    loader: BulkLoader[str] = BulkLoader(load, loaded_seq=0, rows=10_000, delay_s=3600.0, max_group_rows=10_000,
                                         healthy=lambda: True, set_aside=lambda *a: None, cost_trigger=1, workers=2)
    try:
        loader.add(1, "flood-1", 1, key="flood", cost=700)
        assert flood_running.wait(10)
        loader.add(2, "flood-2", 1, key="flood", cost=700)  # the flood's next one: behind its first
        loader.add(3, "other-flood-1", 1, key="other", cost=700)  # a second costly load may not take the free worker
        loader.add(4, "calm-1", 20, key="calm")
        assert loader.flush(10, "calm")  # answered while flood-1 is still being loaded
        assert not release.is_set()
        # calm-1 went alone, recording the watermark below flood-1 (not loaded yet) and itself ahead of it.
        assert loads == [(["calm-1"], Loaded(0, (4,)))]
    finally:
        release.set()
        loader.close()
    assert sorted(item for items, _ in loads for item in items) == ["calm-1", "flood-1", "flood-2", "other-flood-1"]



def test_the_costly_worker_rests_between_costly_loads_unless_their_environment_reads() -> None:
    loads: list[str] = []
    loaded = threading.Condition()

    def load(items: list[str], _: Loaded) -> None:
        with loaded:
            loads.extend(items)
            loaded.notify_all()

    # A rest a million times the last costly load: past the test, unless the flood's own read ends it.
    loader: BulkLoader[str] = BulkLoader(load, loaded_seq=0, rows=10_000, delay_s=3600.0, max_group_rows=10_000,
                                         healthy=lambda: True, set_aside=lambda *a: None, cost_trigger=1, workers=2,
                                         costly_rest=1e6)
    try:
        loader.add(1, "flood-1", 1, key="flood", cost=700)
        with loaded:
            assert loaded.wait_for(lambda: "flood-1" in loads, 10)
        loader.add(2, "flood-2", 1, key="flood", cost=700)
        loader.add(3, "calm-1", 20, key="calm")
        assert loader.flush(10, "calm")  # the other worker is not held back by the rest
        with loaded:  # flood-2 waits out the rest (without it, it loads as soon as it is queued) ...
            assert not loaded.wait_for(lambda: "flood-2" in loads, 0.5)
        assert loads == ["flood-1", "calm-1"]
        assert loader.flush(10, "flood")  # ... unless its own environment reads
        assert loads == ["flood-1", "calm-1", "flood-2"]
        loader.add(4, "flood-3", 1, key="flood", cost=700)
    finally:
        loader.close()  # and a close loads what rests
    assert loads == ["flood-1", "calm-1", "flood-2", "flood-3"]

def _crash_after_reading_one_environment(path: Path) -> None:
    """Acknowledge batches of two environments, read one of them (only its batches are loaded), die."""
    script = textwrap.dedent(f"""
        import asyncio, os, sys
        sys.path.insert(0, {str(ROOT)!r})
        import apiary.store.duckdb.store as d
        from tests.store.spans import batch
        d.LOAD_DELAY_S = 3600.0  # nothing loads unless a reader asks
        async def go():
            store = d.DuckDBStore({str(path)!r})
            await store.append("flood", batch([{{"k": j}} for j in range(30)], trace_id="0" * 32))
            await store.append("calm", batch([{{"k": j}} for j in range(5)], trace_id="1" * 32))
            await store.append("flood", batch([{{"k": j}} for j in range(30)], trace_id="2" * 32))
            assert store.count("calm") == 5
            assert store.writer_stats()["loaded_rows"] == 5, store.writer_stats()  # the flood's 60 were not waited for
            os._exit(0)
        asyncio.run(go())
    """)
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)


def test_a_read_loads_only_its_environment_and_a_crash_then_loads_each_batch_once(tmp_path: Path) -> None:
    path = tmp_path / "spans.duckdb"
    _crash_after_reading_one_environment(path)
    store = DuckDBStore(path)
    assert store.count("calm") == 5  # loaded before the crash, not replayed again
    assert store.count("flood") == 60  # acknowledged, never loaded: replayed
    store.close_sync()
    again = DuckDBStore(path)
    assert (again.count("calm"), again.count("flood")) == (5, 60)
    run(again.append("calm", batch([{"k": 9}], trace_id="3" * 32)))
    assert again.count("calm") == 6
    again.close_sync()
