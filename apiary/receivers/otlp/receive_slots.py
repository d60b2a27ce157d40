"""How many OTLP/gRPC messages may be received at once, server-wide and per environment.

An HTTP body's bytes are counted while they are read (``body_budget.py``).
gRPC's C core gives a handler nothing until the whole message has arrived,
so its bytes cannot be: with ``Export`` served as a unary method, the core
started reading every call's message as soon as the call came, and 80
concurrent exports of 3.9 MiB took the server to 1,279–1,367 MiB, though the
byte budget then refused most of them; now 703 MiB (``bench/overload.py``,
docs/benchmarks.md, wave 13).

So the receiver serves ``Export`` as a client-streaming method, which reads
its one message only when asked (the wire is the same: any gRPC client's
unary call is answered), and it asks only once it holds a slot here. A call
waiting for a slot costs its HTTP/2 stream's window (64 KiB; BDP probing,
which would widen it, is off), not its message. There are as many slots as
messages of the size limit fit in the body budget, and an environment may
hold as many as fit in its share, so the bytes being received are bounded by
the budget, as HTTP's are, and one environment's senders cannot take every
slot. Slots are granted in the order calls asked for them.

Waiting is bounded too, in time (``WAIT_S``) and in calls (``MAX_WAITING``,
half of them per environment): past either, the call is refused with
RESOURCE_EXHAUSTED and RetryInfo, which every OTLP exporter retries, before
its message is read.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from typing import AsyncIterator

from apiary.receivers.body_budget import BodyOverBudget, EnvironmentOverShare

#: Calls that may wait for a slot at once (each holds a stream's window, about 0.15 MiB measured); half per environment.
MAX_WAITING = 256
#: The longest a call waits for a slot before it is refused (an exporter's own deadline is 10 s by default).
WAIT_S = 5.0


class ReceivingAtBound(BodyOverBudget):
    """The server is receiving as many gRPC messages as its body budget allows: retry later."""

    def __init__(self, why: str) -> None:
        super().__init__(retry_after=1)
        self.args = (f"the server is receiving as many OTLP/gRPC messages as its memory bound allows "
                     f"(APIARY_MAX_INFLIGHT_BYTES at APIARY_MAX_GRPC_MESSAGE_BYTES each) and {why}; retry after 1s",)


class ReceiveSlots:
    """Slots for messages being received, granted first come first served; used from the event loop only."""

    def __init__(self, slots: int, env_slots: int, max_waiting: int = MAX_WAITING, wait_s: float = WAIT_S) -> None:
        self.slots = max(1, slots)
        self.env_slots = max(1, min(env_slots, self.slots))
        self.max_waiting = max_waiting
        self.wait_s = wait_s
        self.busy = 0
        self._env_busy: collections.Counter[str] = collections.Counter()
        self._env_waiting: collections.Counter[str] = collections.Counter()
        self._waiting: collections.deque[tuple[str, asyncio.Future[None]]] = collections.deque()

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    @classmethod
    def for_bytes(cls, limit: int, env_limit: int, message_bytes: int) -> ReceiveSlots:
        """As many slots as messages of ``message_bytes`` fit in the budget, and in an environment's share."""
        return cls(limit // max(1, message_bytes), env_limit // max(1, message_bytes))

    @contextlib.asynccontextmanager
    async def slot(self, env: str) -> AsyncIterator[None]:
        """Hold a slot for ``env`` while the block reads its message; raises `ReceivingAtBound` or
        `EnvironmentOverShare` (both retryable) when it cannot have one soon."""
        await self._acquire(env)
        try:
            yield
        finally:
            self._release(env)

    async def _acquire(self, env: str) -> None:
        granted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((env, granted))
        self._env_waiting[env] += 1
        self._grant()
        if granted.done():
            return
        if len(self._waiting) > self.max_waiting:
            self._leave(env, granted)
            raise ReceivingAtBound(f"{self.max_waiting} more calls are waiting")
        if self._env_waiting[env] > self.max_waiting // 2:
            self._leave(env, granted)
            raise EnvironmentOverShare(env, f"has {self.max_waiting // 2} OTLP/gRPC calls waiting to be read, as many "
                                            "as one environment may")
        try:
            await asyncio.wait_for(asyncio.shield(granted), self.wait_s)
        except BaseException as exc:  # timed out or cancelled (the client gave up): leave the line, or the slot
            if granted.done() and not granted.cancelled():
                self._release(env)
            else:
                granted.cancel()
                self._leave(env, granted)
            if isinstance(exc, TimeoutError):
                raise ReceivingAtBound(f"no message could be read within {self.wait_s:g}s") from None
            raise

    def _grant(self) -> None:
        """Give free slots to the longest-waiting calls whose environment is under its share."""
        for env, granted in list(self._waiting):
            if self.busy >= self.slots:
                return
            if self._env_busy[env] >= self.env_slots:
                continue
            self._leave(env, granted)
            self.busy += 1
            self._env_busy[env] += 1
            granted.set_result(None)

    def _leave(self, env: str, granted: asyncio.Future[None]) -> None:
        with contextlib.suppress(ValueError):
            self._waiting.remove((env, granted))
            self._env_waiting[env] -= 1
            if not self._env_waiting[env]:
                del self._env_waiting[env]

    def _release(self, env: str) -> None:
        self.busy -= 1
        self._env_busy[env] -= 1
        if not self._env_busy[env]:
            del self._env_busy[env]
        self._grant()
