"""Decoding off the event loop, on every core.

Flattening OTLP into columns costs ~13 us per span in Python, several times
the protobuf parse itself; in the server process it would hold the GIL and
cap ingest at one core. Large bodies therefore go to worker processes (bytes
in, Arrow table out); small ones, like a real SDK's periodic export of a few
spans, are decoded inline, where the process hop would cost more than the
work.

Each worker is joined to the server by one socket pair that the event loop
reads itself. ``ProcessPoolExecutor`` was used before: its two threads
(feeding calls, collecting results) woke at every request and cost the
server ~680 us of CPU per 512-span request against ~270 us over a socket
the loop reads (measured with the same workers returning the same batch).
The server's CPU is what the decode workers share their two cores with, so
every microsecond there was one less for decoding.

A worker answers its calls in the order they came, so each socket's
waiting futures are a FIFO queue. A worker that dies fails the calls it held
with 503 (the SDK retries them) and is replaced; one that loses the server
reads end-of-file and leaves, so a server killed outright leaves none behind.

Bodies of `EXPAND_ALONE_FROM_BYTES` or more are expanded one at a time,
server-wide. The number of bodies in flight is bounded: past it the receiver
answers 429 with Retry-After rather than queueing without limit.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ctypes
import logging
import multiprocessing
import os
import pickle
import signal
import socket
import struct
from multiprocessing.process import BaseProcess
from typing import Any, Callable, TypeVar

from apiary.store.base import StoreOverloaded, StoreUnavailable

T = TypeVar("T")
INLINE_BELOW_BYTES = 16 * 1024
#: Bodies from this size are expanded one at a time, server-wide. A 19 MiB OTLP body takes its worker to a few
#: hundred MiB while it is decoded; with senders in three environments (each allowed one such body) two were
#: expanded at once, and the server tree peaked at 1,038 MiB, 549 of them in the decode workers
#: (``bench/overload.py --envs 3``). An SDK's periodic export is ~100 KB and never waits for this.
EXPAND_ALONE_FROM_BYTES = 8 * 1024 * 1024
_LEN = struct.Struct("<Q")
#: A call's frame: the pickled call's length and how many bodies follow it out of band (each length-prefixed).
_HEAD = struct.Struct("<QI")
log = logging.getLogger(__name__)
#: Calls a worker holds at once: the one it decodes and the next, so it never waits for a round trip.
_PIPELINE = 2
_SOCKET_BUFFER = 1 << 20  # a 512-span body or batch in one write (the kernel may cap it lower)


class DecodePool:
    def __init__(self, workers: int, max_in_flight: int | None = None) -> None:
        self.workers = workers
        self._limit = max_in_flight or max(4, workers * 8)
        self._in_flight = 0
        self._large = asyncio.Semaphore(1)  # bodies of EXPAND_ALONE_FROM_BYTES or more, one at a time
        # Calls not yet sent: one queue for all workers, so a call waits for whichever worker is
        # free first. Given out to the least busy worker at once instead, closed-loop p99s were
        # 276-288 ms against 237-263 ms this way.
        self._queue: collections.deque[tuple[Callable[..., Any], tuple[Any, ...], asyncio.Future[Any]]] = \
            collections.deque()
        self._channels: list[_Channel] = []
        self._closed = False
        self._respawn: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start the worker processes and wait until each has imported the decoders."""
        map_large_allocations()  # the server process holds the bodies while they are read and decoded
        await asyncio.gather(*(self._spawn() for _ in range(self.workers)))

    async def run(self, size: int, fn: Callable[..., T], *args: Any) -> T:
        if self.workers <= 0 or size < INLINE_BELOW_BYTES:
            return fn(*args)
        if self._in_flight >= self._limit:
            raise StoreOverloaded(retry_after=1)
        if not self._channels:
            raise StoreUnavailable("no decode worker is running; retry shortly", retry_after=1)
        self._in_flight += 1
        try:
            async with self._large if size >= EXPAND_ALONE_FROM_BYTES else contextlib.nullcontext():
                fut: asyncio.Future[tuple[bool, Any]] = asyncio.get_running_loop().create_future()
                self._queue.append((fn, args, fut))
                self._dispatch()
                ok, value = await fut
        finally:
            self._in_flight -= 1
        if ok:
            return value
        raise value

    async def close(self) -> None:
        """Close every socket (each worker reads end-of-file and leaves) and reap the processes."""
        self._closed = True
        channels, self._channels = self._channels, []
        for channel in channels:
            channel.close()
        while self._queue:
            *_, fut = self._queue.popleft()
            if not fut.done():
                fut.set_exception(StoreUnavailable("the server is shutting down", retry_after=5))
        await asyncio.to_thread(_reap, [c.process for c in channels])

    def _dispatch(self) -> None:
        """Send queued calls to workers holding fewer than ``_PIPELINE`` calls each."""
        while self._queue:
            free = [c for c in self._channels if len(c.waiting) < _PIPELINE]
            if not free:
                return
            fn, args, fut = self._queue.popleft()
            if not fut.cancelled():
                min(free, key=lambda c: len(c.waiting)).send(fn, args, fut)

    async def _spawn(self) -> None:
        ours, theirs = socket.socketpair()
        for s in (ours, theirs):
            s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _SOCKET_BUFFER)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _SOCKET_BUFFER)
        process = multiprocessing.get_context("spawn").Process(
            target=_serve, args=(theirs,), name="apiary-decode", daemon=True)
        process.start()
        theirs.close()
        loop = asyncio.get_running_loop()
        _, channel = await loop.create_connection(lambda: _Channel(process, self._dispatch, self._lost), sock=ours)
        ready: asyncio.Future[tuple[bool, Any]] = loop.create_future()
        channel.send(_ready, (), ready)
        ok, value = await ready
        if not ok:
            channel.close()
            raise value
        self._channels.append(channel)
        self._dispatch()

    def _lost(self, channel: "_Channel") -> None:
        if channel in self._channels:
            self._channels.remove(channel)
            self._respawn = asyncio.get_running_loop().create_task(self._replace())

    async def _replace(self) -> None:
        """A new worker for a lost one, a second later: a worker that cannot start must not spin."""
        while not self._closed:
            await asyncio.sleep(1.0)
            if self._closed:
                return
            try:
                await self._spawn()
                return
            except Exception:
                log.exception("could not start a decode worker; trying again")


class _Channel(asyncio.BufferedProtocol):
    """The server's end of one worker's socket: frames out, frames in, futures in call order."""

    def __init__(self, process: BaseProcess, on_result: Callable[[], None],
                 on_lost: Callable[["_Channel"], None]) -> None:
        self.process = process
        self.waiting: collections.deque[asyncio.Future[Any]] = collections.deque()
        self._on_result = on_result
        self._on_lost = on_lost
        self._transport: asyncio.Transport | None = None
        self._head = bytearray(_LEN.size)
        self._frame: bytearray | None = None
        self._got = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def send(self, fn: Callable[..., Any], args: tuple[Any, ...], fut: asyncio.Future[Any]) -> None:
        """One call out: the pickled call, then each large body as it is, not copied into the pickle.

        A 19 MiB body used to be pickled (a copy), joined to its length prefix (another) and cut to what
        the socket did not take (a third) before the transport buffered the rest: four copies of each
        body at once in the server, where the caller's own and the transport's remain.
        """
        assert self._transport is not None
        bodies: list[pickle.PickleBuffer] = []
        try:  # pickled here, possibly inside another call's result callback: a failure is this call's alone
            call = pickle.dumps((fn, tuple(_out_of_band(a) for a in args)), protocol=5, buffer_callback=bodies.append)
        except Exception as exc:  # noqa: BLE001
            if not fut.done():
                fut.set_result((False, exc))
            return
        self.waiting.append(fut)
        views = [b.raw() for b in bodies]
        self._transport.write(_HEAD.pack(len(call), len(views)) + b"".join(_LEN.pack(v.nbytes) for v in views) + call)
        for view in views:
            self._transport.write(view)

    # -- reading frames: an 8-byte length, then that many bytes of pickle --------------------

    def get_buffer(self, sizehint: int) -> memoryview:
        if self._frame is None:
            return memoryview(self._head)[self._got:]
        return memoryview(self._frame)[self._got:]

    def buffer_updated(self, nbytes: int) -> None:
        self._got += nbytes
        if self._frame is None:
            if self._got < _LEN.size:
                return
            (length,) = _LEN.unpack(self._head)
            self._frame, self._got = bytearray(length), 0
        if self._got < len(self._frame):
            return
        frame, self._frame, self._got = self._frame, None, 0
        fut = self.waiting.popleft()
        self._on_result()  # the next call goes out before this result is unpickled
        if fut.cancelled():
            return
        try:
            fut.set_result(pickle.loads(frame))
        except Exception as exc:  # a result the server cannot unpickle is that call's failure alone
            fut.set_result((False, exc))

    def connection_lost(self, exc: Exception | None) -> None:
        while self.waiting:
            fut = self.waiting.popleft()
            if not fut.done():
                fut.set_exception(StoreUnavailable("a decode worker stopped while decoding this request; retry it",
                                                   retry_after=1))
        self.process.join(0.1)
        self._on_lost(self)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


def _out_of_band(arg: Any) -> Any:
    """A body large enough to get pages of its own travels beside the pickle, not inside it."""
    if isinstance(arg, bytes) and len(arg) >= MMAP_FROM_BYTES:
        return pickle.PickleBuffer(arg)
    return arg


def _reap(processes: list[BaseProcess]) -> None:
    for process in processes:
        process.join(5)
        if process.is_alive():
            process.kill()
            process.join(1)


def _serve(sock: socket.socket) -> None:
    """A worker's life: read a call, run it, send back ``(True, result)`` or ``(False, exception)``.

    Ctrl-C reaches the whole process group; the server shuts down on it and then closes this
    socket, so the worker ignores it rather than dying under a request still being decoded.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    map_large_allocations()
    lowered = False
    with sock, sock.makefile("rb", buffering=_SOCKET_BUFFER) as stream:
        while True:
            head = stream.read(_HEAD.size)
            if len(head) < _HEAD.size:
                return  # the server is gone, or closed the pool
            length, count = _HEAD.unpack(head)
            sizes = [_LEN.unpack(stream.read(_LEN.size))[0] for _ in range(count)]
            call = stream.read(length)
            bodies = [stream.read(size) for size in sizes]
            length += sum(sizes)
            try:
                fn, args = pickle.loads(call, buffers=bodies)
                del call, bodies
                out = pickle.dumps((True, fn(*args)), protocol=pickle.HIGHEST_PROTOCOL)
                del fn, args
                if length > _TRIM_AFTER_BYTES:
                    _trim()
            except Exception as exc:
                try:
                    out = pickle.dumps((False, exc), protocol=pickle.HIGHEST_PROTOCOL)
                except Exception:
                    out = pickle.dumps((False, RuntimeError(f"{type(exc).__name__}: {exc}")))
            sock.sendall(_LEN.pack(len(out)) + out)
            if not lowered:  # after the first call (the imports), which the server's start waits for
                _lower_priority()
                lowered = True


#: After decoding a body this large, hand the freed heap back to the system: glibc keeps it resident
#: otherwise. Measured on one 19 MiB OTLP body: a process at 93 MiB stayed at 254 MiB once the batch
#: was freed, and fell to 172 MiB (the body itself still held) after ``malloc_trim``.
_TRIM_AFTER_BYTES = 4 * 1024 * 1024


#: glibc's ``mallopt`` parameter for the size from which an allocation gets pages of its own.
_M_MMAP_THRESHOLD = -3
MMAP_FROM_BYTES = 1024 * 1024


def map_large_allocations() -> None:
    """Give every allocation of 1 MiB or more (a body, a decoded batch's buffers) pages of its own,
    handed back to the system as soon as it is freed.

    glibc does so from 128 KiB, but raises that threshold to the size of each such block freed, up to
    32 MiB: after the first 19 MiB body, the next ones came from the heap, which keeps what is freed.
    A fixed threshold keeps the first behaviour (``bench/overload.py`` figures: docs/benchmarks.md).
    """
    try:
        ctypes.CDLL("libc.so.6").mallopt(_M_MMAP_THRESHOLD, MMAP_FROM_BYTES)
    except (OSError, AttributeError):  # not glibc: its own policy stands
        return
    _arrow_from_malloc()


def _arrow_from_malloc() -> None:
    """Arrow's buffers (a decoded batch's columns) from glibc's malloc too, so that a large one is handed back
    when freed. Arrow's own default here, mimalloc, keeps freed memory for reuse: with it the server tree peaked
    at 884 and 1,022 MiB under ``bench/overload.py``, with glibc's at 811 and 811 MiB."""
    import pyarrow as pa

    pa.set_memory_pool(pa.system_memory_pool())


def _trim() -> None:
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to trim
        pass


#: Decoding is throughput work; the server process answers reads and small exports, where latency
#: counts. A worker a step behind it in the scheduler's order leaves the server the cores it needs,
#: and takes all that is left: one environment's bodies that cost seconds to decode then slow the
#: others' reads far less (``bench/fairness.py``).
WORKER_NICENESS = 10


def _lower_priority() -> None:
    try:
        os.nice(WORKER_NICENESS)
    except OSError:  # not permitted here: decode at the server's priority
        pass


def _ready() -> None:
    import apiary.receivers.otlp.traces  # noqa: F401  - pay the import cost at start-up
