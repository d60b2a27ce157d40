"""The ClickHouse store's share of its writer: an environment's wide batches never stall another's inserts.

On ClickHouse a request is acknowledged once its insert returns, so the group commit is the loader: a
costly batch (hundreds of columns) is committed alone, environments taking turns, and never more than one
between two groups of ordinary batches; an environment with its share of costly work queued is refused
(`EnvironmentOverloaded`) while another's batches are taken. Run on the real engine (chdb).
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from apiary.store.base import EnvironmentOverloaded
from apiary.store.group_commit import GroupCommitter
from apiary.store.load_shares import ENV_PENDING_COST, WIDE_COLUMNS
from tests.clickhouse.conftest import clickhouse_url, drop_database
from tests.store.spans import batch


def test_a_costly_batch_is_committed_alone_and_ordinary_ones_go_before_the_next() -> None:
    commits: list[list[str]] = []
    first_running, release = threading.Event(), threading.Event()

    def commit(items: list[str]) -> None:
        if items == ["flood-1"]:
            first_running.set()
            release.wait(10)  # a long costly commit, running when the others come
        commits.append(items)

    async def go() -> None:
        writer: GroupCommitter[str] = GroupCommitter(commit)
        assert writer.reserve("flood", 700, 1024)
        first = asyncio.ensure_future(writer.submit("flood-1", 1, key="flood", cost=700))
        await asyncio.to_thread(first_running.wait, 10)
        assert not writer.reserve("flood", 700, 1024), "the flood's share is used while its batch waits"
        assert writer.reserve("other-flood", 700, 1024)
        rest = [asyncio.ensure_future(writer.submit("other-flood-1", 1, key="other-flood", cost=700)),
                asyncio.ensure_future(writer.submit("calm-1", 20, key="calm")),
                asyncio.ensure_future(writer.submit("calm-2", 20, key="calm"))]
        await asyncio.sleep(0.2)  # all three queued behind the running commit
        release.set()
        await asyncio.gather(first, *rest)
        assert writer.reserve("flood", 700, 1024), "given back once committed"
        writer.close()

    asyncio.run(go())
    assert commits == [["flood-1"], ["calm-1", "calm-2"], ["other-flood-1"]]


@pytest.fixture
def clickhouse(tmp_path: Path):  # noqa: ANN201
    from apiary.store.clickhouse import ClickHouseStore

    url = clickhouse_url(tmp_path)
    store = ClickHouseStore(url, max_env_columns=250)
    yield store
    store.close_sync()
    drop_database(url)


def _wide(prefix: str) -> dict[str, int]:
    return {f"{prefix}.{i}": i for i in range(WIDE_COLUMNS + 700)}


def test_clickhouse_refuses_an_environment_past_its_share_and_takes_another(clickhouse) -> None:  # noqa: ANN001
    assert 700 <= ENV_PENDING_COST < 2 * 700

    async def go() -> list[BaseException | None]:
        flood = [clickhouse.append("flood", batch([_wide(f"f{n}")], dataset="flood", trace_id=f"{n:032x}"))
                 for n in range(3)]
        calm = clickhouse.append("calm", batch([{"http.status_code": 200}] * 20, dataset="calm", trace_id="c" * 32))
        return await asyncio.gather(*flood, calm, return_exceptions=True)

    *flood, calm = asyncio.run(go())
    assert calm is None
    stored = [r is None for r in flood]
    refused = [r for r in flood if r is not None]
    assert stored[0], flood  # the first wide batch is taken: its environment had nothing queued
    assert refused and all(isinstance(r, EnvironmentOverloaded) and r.environment == "flood" for r in refused), flood
    assert clickhouse.count("calm") == 20
    assert clickhouse.count("flood") == sum(stored)


def test_ordinary_batches_go_between_the_statements_of_a_costly_commit() -> None:
    """A costly commit that yields between its statements (the ClickHouse store's) lets the ordinary groups that
    came while a statement ran go before its next one, and calls ``between_steps`` (the read gate) each time."""
    done: list[object] = []
    first_running, release = threading.Event(), threading.Event()

    def flood_steps():  # noqa: ANN202
        done.append("flood:columns")
        first_running.set()
        release.wait(10)
        yield
        done.append("flood:spans")
        yield
        done.append("flood:summary")

    def commit(items: list[str]):  # noqa: ANN202
        if items == ["flood-1"]:
            return flood_steps()
        done.append(items)
        return None

    async def go() -> None:
        writer: GroupCommitter[str] = GroupCommitter(commit, between_steps=lambda: done.append("gate"))
        assert writer.reserve("flood", 700, 1024)
        flood = asyncio.ensure_future(writer.submit("flood-1", 1, key="flood", cost=700))
        await asyncio.to_thread(first_running.wait, 10)
        calm = [asyncio.ensure_future(writer.submit(f"calm-{n}", 20, key="calm")) for n in (1, 2)]
        await asyncio.sleep(0.2)  # both queued while the flood's first statement runs
        release.set()
        await asyncio.gather(*calm, flood)
        writer.close()

    asyncio.run(go())
    assert done == ["flood:columns", ["calm-1", "calm-2"], "gate", "flood:spans", "gate", "flood:summary"]


def test_the_read_gate_holds_a_costly_step_while_a_read_runs_and_not_past_its_bound() -> None:
    from apiary.store.read_gate import ReadGate

    gate = ReadGate(quiet_s=0.01, max_wait_s=60)
    passed = threading.Event()
    with gate.reading():
        waiter = threading.Thread(target=lambda: (gate.wait_quiet(), passed.set()))
        waiter.start()
        assert not passed.wait(0.3), "a costly step waits while a read runs"
    assert passed.wait(10), "and goes on once reads have paused"
    waiter.join()

    bounded = ReadGate(quiet_s=0.01, max_wait_s=0.05)
    with bounded.reading():  # a read that never ends does not hold a costly commit for ever
        bounded.wait_quiet()
