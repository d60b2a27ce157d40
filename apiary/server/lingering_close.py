"""Ending a connection whose request body was refused unread: a lingering close, as nginx and Apache do.

A request refused before its body is read (429 for an environment held off or
past its share, 413 for a declared length over the limit, 401 for an unknown
key) used to be answered and then kept alive, so uvicorn went on reading the
rest of the body (1.8 MB for a 100,000-attribute span) only to throw it away
before it could parse the client's next request. A flooder that sends again
at once after each 429 kept the server reading about 1 GB/s of refused bodies.

Closing at once is not the answer either: a socket closed with unread bytes
in its receive buffer sends a reset, and a reset that overtakes the answer
(still in the server's send buffer, or not yet read by a client busy
sending its body) loses the 429 itself, so the client sees a connection error
instead of the Retry-After it should honour. So the answer is sent with
``Connection: close`` (`Guard` adds it: the application answered before it had
the whole body), then the connection is half-closed (our FIN follows the
answer) and whatever the client still sends is read and discarded, without
parsing, for at most ``LINGER_BYTES`` or ``LINGER_S``, whichever comes first;
then it is closed. A client that reads its answer and closes ends the linger
at once. What it sends past the cap is never read: the kernel resets the
connection and drops it, at no cost to the server's CPU.

`LingeringCloseProtocol` is uvicorn's public protocol hook
(``uvicorn.Config(http=<class>)``) with one change: the transport it hands to
uvicorn's request cycle turns ``close()`` into this lingering close when the
request's body has not all arrived.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

#: Bytes of a refused body read and discarded after the answer, at most: enough for the client's
#: kernel to have taken the answer, far less than a flood body (a 1,000-attribute span is ~30 KB).
LINGER_BYTES = 256 * 1024
#: Seconds the connection lingers at most, for a client that neither stops sending nor closes.
LINGER_S = 2.0


class _Linger:
    """One connection's lingering close: bytes discarded so far, and the timer that ends it."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self.transport = transport
        self.discarded = 0
        self.timer = loop.call_later(LINGER_S, self.end)

    def discard(self, n: int) -> None:
        self.discarded += n
        if self.discarded > LINGER_BYTES:
            self.end()

    def end(self) -> None:
        self.timer.cancel()
        self.transport.close()  # bytes still unread are the kernel's to drop (a reset), not ours to read


class _LingeringTransport:
    """The connection's transport as uvicorn's request cycle sees it: ``close()`` lingers when a body is unread."""

    def __init__(self, transport: asyncio.Transport, protocol: "LingeringCloseProtocol") -> None:
        self._transport = transport
        self._protocol = protocol

    def close(self) -> None:
        self._protocol.close_lingering()

    def is_closing(self) -> bool:
        return self._protocol.linger is not None or self._transport.is_closing()

    def __getattr__(self, name: str) -> Any:  # write, pause_reading, get_extra_info, ...: the transport's own
        return getattr(self._transport, name)


class LingeringCloseProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, closing a connection with an unread request body by a lingering close."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.linger: _Linger | None = None
        self._socket_transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._socket_transport = transport
        super().connection_made(_LingeringTransport(transport, self))  # type: ignore[arg-type]

    def body_unread(self) -> bool:
        """The current request's body has not all arrived (the parser has not seen its end)."""
        cycle = self.cycle
        return cycle is not None and cycle.more_body and not cycle.disconnected

    def close_lingering(self) -> None:
        transport = self._socket_transport
        assert transport is not None
        if self.linger is not None or transport.is_closing():
            return
        if not self.body_unread() or not transport.can_write_eof():
            transport.close()
            return
        self.linger = _Linger(transport, self.loop)
        transport.write_eof()  # after the answer still buffered: the client reads it, then end-of-file
        transport.resume_reading()  # uvicorn pauses reading while a body waits unread; the linger reads on

    def data_received(self, data: bytes) -> None:
        if self.linger is not None:
            self.linger.discard(len(data))  # never parsed: it is the refused body, or whatever follows it
            return
        super().data_received(data)

    def eof_received(self) -> bool | None:
        if self.linger is not None:
            self.linger.end()  # the client has sent all it will: nothing is left unread, so no reset
        return super().eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.linger is not None:
            self.linger.timer.cancel()
        super().connection_lost(exc)
