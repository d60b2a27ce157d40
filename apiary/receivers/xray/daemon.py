"""The X-Ray daemon's two sockets, on one port number as the real daemon has them.

UDP: the SDK's datagrams (``{"format": "json", "version": 1}`` newline,
one segment or subsegment document), received and decoded on a thread of
its own. Datagrams are gathered for up to 10 ms and appended as one batch; the store then group-commits them
with everything else. UDP has no answer, so a malformed datagram is counted
and logged, and a batch the store refuses (overloaded) is counted as dropped.

TCP: the SDK's centralized-sampling calls (``POST /GetSamplingRules``,
``POST /SamplingTargets``), unsigned, as the daemon proxies them. A tiny
HTTP/1.1 server is enough for botocore and keeps a second uvicorn (and its
signal handlers) out of the process.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any

from apiary.model.span import SpanBatch
from apiary.receivers.xray.segments import SegmentError, parse_datagram, to_batch
from apiary.receivers.xray.service import XRay
from apiary.store.base import StoreOverloaded, StoreUnavailable

log = logging.getLogger("apiary.xray.daemon")
FLUSH_DELAY_S = 0.01
MAX_BATCH = 5000
RECV_BUFFER = 16 * 1024 * 1024
MAX_HTTP_BODY = 1024 * 1024


@dataclass
class DaemonStats:
    received: int = 0
    stored: int = 0
    malformed: int = 0
    dropped: int = 0
    last_error: str = ""


class SegmentListener:
    """Receives on a thread of its own: a blocking ``recv`` loop is always ready for the next datagram
    (the kernel buffer is small next to a burst), decodes, and hands finished batches to the event loop."""

    def __init__(self, xray: XRay) -> None:
        self.xray = xray
        self.stats = DaemonStats()
        self._tasks: set[asyncio.Task[None]] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self, sock: socket.socket, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        sock.settimeout(FLUSH_DELAY_S)
        self._thread = threading.Thread(target=self._run, args=(sock,), name="xray-daemon-udp", daemon=True)
        self._thread.start()

    def _run(self, sock: socket.socket) -> None:
        pending: list[tuple[dict[str, Any], str]] = []
        first = 0.0
        try:
            while not self._stop.is_set():
                try:
                    data, addr = sock.recvfrom(70_000)
                except socket.timeout:
                    data = None
                except OSError:
                    break
                if data is not None:
                    self.stats.received += 1
                    try:
                        pending.append(parse_datagram(data))
                        if len(pending) == 1:
                            first = time.monotonic()
                    except (SegmentError, RecursionError, ValueError) as exc:
                        self._malformed(str(exc), addr)
                    except Exception as exc:  # noqa: BLE001 - nothing a client sends may stop the listener
                        self._malformed(f"{type(exc).__name__}: {exc}", addr)
                if pending and (len(pending) >= MAX_BATCH or time.monotonic() - first >= FLUSH_DELAY_S):
                    self._hand_off(pending)
                    pending = []
        finally:
            if pending:
                self._hand_off(pending)
            sock.close()

    def _malformed(self, message: str, addr: Any) -> None:
        self.stats.malformed += 1
        self.stats.last_error = message
        n = self.stats.malformed
        if n <= 10 or n % 1000 == 0:
            log.warning("X-Ray daemon: malformed datagram #%d from %s: %s", n, addr, message)

    def _hand_off(self, docs: list[tuple[dict[str, Any], str]]) -> None:
        try:
            batch = to_batch(docs, self.xray.names)
        except Exception:  # noqa: BLE001
            self.stats.dropped += len(docs)
            log.exception("X-Ray daemon: could not map %d segments", len(docs))
            return
        assert self._loop is not None
        try:
            self._loop.call_soon_threadsafe(self._submit, batch, len(docs))
        except RuntimeError:  # the loop is closed: shutting down
            self.stats.dropped += len(docs)

    def _submit(self, batch: SpanBatch, n: int) -> None:
        task = asyncio.get_running_loop().create_task(self._store(batch, n))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _store(self, batch: SpanBatch, n: int) -> None:
        env = self.xray.daemon_env()
        if env is None:
            self.stats.dropped += n
            log.warning("X-Ray daemon: no environment yet (create a key first); dropped %d segments", n)
            return
        try:
            await self.xray.ctx.store.append(env, batch)
            self.stats.stored += n
        except (StoreOverloaded, StoreUnavailable) as exc:
            self.stats.dropped += n
            log.warning("X-Ray daemon: dropped %d segments: %s", n, exc)
        except Exception:  # noqa: BLE001
            self.stats.dropped += n
            log.exception("X-Ray daemon: could not store %d segments", n)

    async def drain(self) -> None:
        """Stop receiving, store what was gathered, and wait for every append in flight (on shutdown)."""
        self._stop.set()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join)
        await asyncio.sleep(0)  # let the last hand-off's callback run
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)


class Daemon:
    def __init__(self, xray: XRay, host: str, port: int) -> None:
        self.xray, self.host, self.port = xray, host, port
        self.listener = SegmentListener(xray)
        self._tcp: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECV_BUFFER)
        except OSError:
            pass
        try:
            sock.bind((self.host, self.port))
            self._tcp = await asyncio.start_server(self._serve_http, self.host, self.port)
        except OSError:
            sock.close()
            raise
        self.listener.start(sock, loop)

    async def stop(self) -> None:
        if self._tcp is not None:
            self._tcp.close()
        await self.listener.drain()

    # -- the sampling side, over TCP --------------------------------------------------------------

    async def _serve_http(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                parts = lines[0].split(" ")
                headers = {}
                for line in lines[1:]:
                    k, sep, v = line.partition(":")
                    if sep:
                        headers[k.strip().lower()] = v.strip()
                try:
                    length = int(headers.get("content-length", "0"))
                except ValueError:
                    length = -1
                if len(parts) != 3 or length < 0 or length > MAX_HTTP_BODY:
                    await self._answer(writer, 400, {"message": "bad request"}, close=True)
                    return
                body = await reader.readexactly(length) if length else b""
                status, doc = await self._dispatch(parts[0], parts[1].split("?")[0], body)
                close = headers.get("connection", "").lower() == "close"
                await self._answer(writer, status, doc, close=close, error=status >= 400)
                if close:
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            writer.close()

    async def _dispatch(self, method: str, path: str, body: bytes) -> tuple[int, dict[str, Any]]:
        if method != "POST" or path not in ("/GetSamplingRules", "/SamplingTargets"):
            return 404, {"message": f"the X-Ray daemon answers POST /GetSamplingRules and /SamplingTargets, not {method} {path}"}
        env = self.xray.daemon_env()
        if env is None:
            return 400, {"message": "no environment yet: create a key first (apiary keys create dev)"}
        try:
            params = json.loads(body or b"{}")
        except ValueError:
            return 400, {"message": "request body is not JSON"}
        if not isinstance(params, dict):
            return 400, {"message": "request body must be a JSON object"}
        if path == "/GetSamplingRules":
            records = await asyncio.to_thread(self.xray.rules.list, env)
            return 200, {"SamplingRuleRecords": [r.to_aws() for r in records]}
        docs = params.get("SamplingStatisticsDocuments") or []
        if not isinstance(docs, list) or not all(isinstance(d, dict) for d in docs):
            return 400, {"message": "SamplingStatisticsDocuments must be a list of objects"}
        return 200, await asyncio.to_thread(self.xray.targets.report, env, docs)

    @staticmethod
    async def _answer(writer: asyncio.StreamWriter, status: int, doc: dict[str, Any], *, close: bool = False,
                      error: bool = False) -> None:
        body = json.dumps(doc).encode()
        reason = {200: "OK", 400: "Bad Request", 404: "Not Found"}.get(status, "Error")
        extra = "x-amzn-ErrorType: InvalidRequestException\r\n" if error else ""
        head = (f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                f"{extra}Connection: {'close' if close else 'keep-alive'}\r\n\r\n")
        writer.write(head.encode() + body)
        await writer.drain()

    def stats(self) -> dict[str, Any]:
        return {"port": self.port, **asdict(self.listener.stats)}
