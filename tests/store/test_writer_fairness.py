"""The ClickHouse store's share of its writer: an environment's wide batches never stall another's inserts.

On ClickHouse a request is acknowledged once its insert returns, so the group commit is the loader: a
costly batch (hundreds of columns) is committed alone, environments taking turns, and never more than one
between two groups of ordinary batches; an environment with its share of costly work queued is refused
(`EnvironmentOverloaded`) while another's batches are taken. A costly commit is several statements: the ordinary
batches that come while one runs go before the next, and the next waits for reads and ordinary batches to pause
(`apiary.store.costly_gate`). The store's tests run on the real engine (chdb).
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


class _Recorded:
    """A commit function that records what it commits. ``flood-1`` is a costly commit of ``steps`` statements
    that yields between them, as the ClickHouse store's does; its first runs until ``release`` is set."""

    def __init__(self, steps: list[str], release: threading.Event | None = None) -> None:
        self.done: list[object] = []
        self.first_running = threading.Event()
        self.steps, self.release = steps, release

    def _flood(self):  # noqa: ANN202
        for i, step in enumerate(self.steps):
            if i:
                yield
            self.done.append(f"flood:{step}")
            if i == 0:
                self.first_running.set()
                if self.release is not None:
                    self.release.wait(10)

    def __call__(self, items: list[str]):  # noqa: ANN204
        if items == ["flood-1"]:
            return self._flood()
        self.done.append(items)
        return None


def test_ordinary_batches_go_between_the_statements_of_a_costly_commit() -> None:
    """A costly commit that yields between its statements (the ClickHouse store's) lets the ordinary groups that
    came while a statement ran go before its next one, and asks ``between_steps`` (the gate) each time."""
    release = threading.Event()
    commit = _Recorded(["columns", "spans", "summary"], release)

    async def go() -> None:
        writer: GroupCommitter[str] = GroupCommitter(commit, between_steps=lambda _: commit.done.append("gate") is None)
        assert writer.reserve("flood", 700, 1024)
        flood = asyncio.ensure_future(writer.submit("flood-1", 1, key="flood", cost=700))
        await asyncio.to_thread(commit.first_running.wait, 10)
        calm = [asyncio.ensure_future(writer.submit(f"calm-{n}", 20, key="calm")) for n in (1, 2)]
        await asyncio.sleep(0.2)  # both queued while the flood's first statement runs
        release.set()
        await asyncio.gather(*calm, flood)
        writer.close()

    asyncio.run(go())
    assert commit.done == ["flood:columns", ["calm-1", "calm-2"], "gate", "flood:spans", "gate", "flood:summary"]


def test_the_gate_holds_a_costly_step_while_ordinary_work_runs() -> None:
    from apiary.store.costly_gate import CostlyGate

    gate = CostlyGate(quiet_s=0.01)
    passed = threading.Event()
    with gate.ordinary():
        assert not gate.wait_quiet(0.05), "not quiet while a read runs"
        waiter = threading.Thread(target=lambda: gate.wait_quiet(60) and passed.set())
        waiter.start()
        assert not passed.wait(0.3), "a costly step waits while a read runs"
    assert passed.wait(10), "and goes on once reads have paused"
    waiter.join()


def test_ordinary_batches_are_committed_while_a_costly_commit_waits_for_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Reads that never pause hold a costly commit's next statement (for at most `STEP_WAIT_S`), never another
    environment's ordinary batch, which is committed and answered while the costly one waits."""
    from apiary.store import group_commit
    from apiary.store.costly_gate import CostlyGate

    monkeypatch.setattr(group_commit, "STEP_WAIT_S", 60.0)  # however slow this machine, the read outlasts no bound
    gate = CostlyGate(quiet_s=0.01)
    commit = _Recorded(["columns", "spans"])

    async def go() -> None:
        writer: GroupCommitter[str] = GroupCommitter(commit, between_steps=gate.wait_quiet)
        assert writer.reserve("flood", 700, 1024)
        with gate.ordinary():  # a read running throughout
            flood = asyncio.ensure_future(writer.submit("flood-1", 1, key="flood", cost=700))
            await asyncio.to_thread(commit.first_running.wait, 10)
            await asyncio.sleep(0.05)
            await asyncio.wait_for(writer.submit("calm-1", 20, key="calm"), 10)
            assert commit.done == ["flood:columns", ["calm-1"]], "the calm batch went while the flood waited"
        await asyncio.wait_for(flood, 10)
        writer.close()

    asyncio.run(go())
    assert commit.done == ["flood:columns", ["calm-1"], "flood:spans"]
