"""Bodies of 8 MiB or more are expanded by one decode worker at a time, server-wide; smaller ones side by side.

A 19 MiB OTLP body takes its worker to a few hundred MiB while it is decoded. With senders in three
environments, each allowed one such body by its share of the byte budget, both workers expanded one at
once, and the server tree passed 1 GiB (`bench/overload.py --envs 3`). The pool is driven here as the
receivers drive it, with a stand-in decoder that says when it ran, so the test reads the order the pool
chose, not a duration.
"""

from __future__ import annotations

import asyncio
import time

from apiary.server.decoding import EXPAND_ALONE_FROM_BYTES, DecodePool


def _decode_slowly(seconds: float) -> tuple[float, float]:
    """Run in a decode worker: when it started and ended."""
    start = time.time()
    time.sleep(seconds)
    return start, time.time()


def _spans(size: int, calls: int) -> list[tuple[float, float]]:
    async def go() -> list[tuple[float, float]]:
        pool = DecodePool(2)
        await pool.start()
        try:
            return list(await asyncio.gather(*(pool.run(size, _decode_slowly, 1.0) for _ in range(calls))))
        finally:
            await pool.close()

    return asyncio.run(go())


def _overlap(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def test_two_large_bodies_are_expanded_one_after_the_other() -> None:
    first, second = _spans(EXPAND_ALONE_FROM_BYTES, 2)
    assert not _overlap(first, second), (first, second)


def test_smaller_bodies_are_decoded_side_by_side() -> None:
    first, second = _spans(EXPAND_ALONE_FROM_BYTES - 1, 2)
    assert _overlap(first, second), (first, second)
