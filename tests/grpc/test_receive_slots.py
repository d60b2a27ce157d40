"""The turns OTLP/gRPC calls take to have their message read: in order, per environment, and never unbounded."""

from __future__ import annotations

import asyncio

import pytest

from apiary.receivers.body_budget import EnvironmentOverShare
from apiary.receivers.otlp.receive_slots import ReceiveSlots, ReceivingAtBound


async def hold(slots: ReceiveSlots, env: str, order: list[str], name: str, release: asyncio.Event) -> None:
    async with slots.slot(env):
        order.append(name)
        await release.wait()


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def test_slots_follow_the_message_limit_in_the_budget_and_the_share() -> None:
    slots = ReceiveSlots.for_bytes(64 << 20, 32 << 20, 4 << 20)
    assert (slots.slots, slots.env_slots) == (16, 8)
    tiny = ReceiveSlots.for_bytes(1 << 20, 1 << 19, 4 << 20)
    assert (tiny.slots, tiny.env_slots) == (1, 1), "a budget smaller than one message still reads one at a time"


def test_calls_are_served_in_order_and_an_environment_at_its_share_lets_others_pass() -> None:
    async def run() -> list[str]:
        slots = ReceiveSlots(2, 1)
        order: list[str] = []
        first, second = asyncio.Event(), asyncio.Event()
        tasks = [asyncio.create_task(hold(slots, "flood", order, "flood-1", first))]
        await settle()
        tasks.append(asyncio.create_task(hold(slots, "flood", order, "flood-2", second)))
        await settle()
        tasks.append(asyncio.create_task(hold(slots, "calm", order, "calm-1", second)))
        await settle()
        assert order == ["flood-1", "calm-1"], "flood is at its one slot: calm, behind it in line, goes first"
        first.set()
        await settle()
        second.set()
        await asyncio.gather(*tasks)
        assert slots.busy == 0
        return order

    assert asyncio.run(run()) == ["flood-1", "calm-1", "flood-2"]


def test_a_call_that_waits_too_long_is_refused_and_leaves_the_line() -> None:
    async def run() -> None:
        slots = ReceiveSlots(1, 1, wait_s=0.05)
        release = asyncio.Event()
        holder = asyncio.create_task(hold(slots, "a", [], "a", release))
        await settle()
        with pytest.raises(ReceivingAtBound, match="no message could be read within 0.05s"):
            async with slots.slot("b"):
                raise AssertionError("no slot was free")
        release.set()
        await holder
        async with slots.slot("b"):  # the refused call left no trace in the line
            assert slots.busy == 1
        assert slots.busy == 0

    asyncio.run(run())


def test_the_line_is_bounded_in_all_and_per_environment() -> None:
    async def run() -> None:
        slots = ReceiveSlots(1, 1, max_waiting=4, wait_s=10)
        release = asyncio.Event()
        tasks = [asyncio.create_task(hold(slots, "flood", [], "f", release)) for _ in range(3)]
        await settle()  # one holds the slot, two wait: half the line
        with pytest.raises(EnvironmentOverShare, match="OTLP/gRPC calls waiting"):
            async with slots.slot("flood"):
                pass
        tasks += [asyncio.create_task(hold(slots, env, [], env, release)) for env in ("b", "c")]
        await settle()
        with pytest.raises(ReceivingAtBound, match="4 more calls are waiting"):
            async with slots.slot("d"):
                pass
        release.set()
        await asyncio.gather(*tasks)
        assert slots.busy == 0

    asyncio.run(run())


def test_a_cancelled_call_gives_back_its_place_or_its_slot() -> None:
    async def run() -> None:
        slots = ReceiveSlots(1, 1, wait_s=10)
        release = asyncio.Event()
        holder = asyncio.create_task(hold(slots, "a", [], "a", release))
        await settle()
        waiter = asyncio.create_task(hold(slots, "b", [], "b", release))
        await settle()
        waiter.cancel()  # the client gave up while waiting
        await asyncio.gather(waiter, return_exceptions=True)
        holder.cancel()  # and this one while its message was being read
        await asyncio.gather(holder, return_exceptions=True)
        assert slots.busy == 0
        async with slots.slot("c"):
            assert slots.busy == 1

    asyncio.run(run())
