"""The X-Ray daemon's two sockets, on one port number as the real daemon has them.

UDP: the SDK's datagrams (``{"format": "json", "version": 1}`` newline,
one segment or subsegment document), received and decoded on a thread of
its own. Datagrams are gathered for up to 10 ms and appended as one batch; the store then group-commits them
with everything else. UDP has no answer, so a malformed datagram is counted
and logged, and a batch the store refuses (overloaded) is counted as dropped.

TCP: the SDK's centralized-sampling calls (``POST /GetSamplingRules``,
``POST /SamplingTargets``), unsigned, as the daemon proxies them, served by a
second uvicorn server on the same event loop (its signal handling left to
the main server).

Neither side carries a credential, so the daemon cannot ask for a key: it
listens only where `apiary.permissions.daemon_host` allows (under loopback
exposure, or under network exposure when the operator names its address and
the one environment it feeds).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any, Iterator

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from apiary.input_limits import load_json
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
            batch = to_batch(docs, self.xray.names, self.xray.sink.span_limits)
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
            await self.xray.sink.append_spans(env, batch)
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


class _EmbeddedServer(uvicorn.Server):
    """uvicorn on the daemon's TCP port, inside the main server's event loop: the main server owns the signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class Daemon:
    def __init__(self, xray: XRay, host: str, port: int) -> None:
        self.xray, self.host, self.port = xray, host, port
        self.listener = SegmentListener(xray)
        self._http: _EmbeddedServer | None = None
        self._http_task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        udp = socket.socket(family, socket.SOCK_DGRAM)
        tcp = socket.socket(family, socket.SOCK_STREAM)
        try:
            udp.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECV_BUFFER)
        except OSError:
            pass
        try:
            udp.bind((self.host, self.port))
            tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            tcp.bind((self.host, self.port))  # bound here so a busy port is our error, not uvicorn's exit
            tcp.listen(128)
        except OSError:
            udp.close()
            tcp.close()
            raise
        app = Starlette(routes=[Route("/GetSamplingRules", self._sampling_rules, methods=["POST"]),
                                Route("/SamplingTargets", self._sampling_targets, methods=["POST"])])
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
        self._http = _EmbeddedServer(config)
        self._http_task = asyncio.create_task(self._http.serve(sockets=[tcp]))
        self.listener.start(udp, loop)

    async def stop(self) -> None:
        if self._http is not None and self._http_task is not None:
            self._http.should_exit = True
            await self._http_task
        await self.listener.drain()

    # -- the sampling side, over TCP --------------------------------------------------------------

    async def _params(self, request: Request) -> tuple[str, dict[str, Any]] | JSONResponse:
        env = self.xray.daemon_env()
        if env is None:
            return _error("no environment yet: create a key first (apiary keys create dev)")
        body = await request.body()
        if len(body) > MAX_HTTP_BODY:
            return _error("request body is too large")
        try:
            params = load_json(body or b"{}")
        except ValueError:  # InputError is one
            return _error("request body is not JSON")
        if not isinstance(params, dict):
            return _error("request body must be a JSON object")
        return env, params

    async def _sampling_rules(self, request: Request) -> JSONResponse:
        got = await self._params(request)
        if isinstance(got, JSONResponse):
            return got
        records = await asyncio.to_thread(self.xray.rules.list, got[0])
        return JSONResponse({"SamplingRuleRecords": [r.to_aws() for r in records]})

    async def _sampling_targets(self, request: Request) -> JSONResponse:
        got = await self._params(request)
        if isinstance(got, JSONResponse):
            return got
        env, params = got
        docs = params.get("SamplingStatisticsDocuments") or []
        if not isinstance(docs, list) or not all(isinstance(d, dict) for d in docs):
            return _error("SamplingStatisticsDocuments must be a list of objects")
        return JSONResponse(await asyncio.to_thread(self.xray.targets.report, env, docs))

    def stats(self) -> dict[str, Any]:
        return {"port": self.port, **asdict(self.listener.stats)}


def _error(message: str) -> JSONResponse:
    return JSONResponse({"message": message}, 400, headers={"x-amzn-ErrorType": "InvalidRequestException"})
