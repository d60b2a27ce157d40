"""A real Apiary started inside the test process, on free loopback ports, with one environment per test.

In-process rather than ``apiary serve`` as a subprocess: the subprocess pays the interpreter start and
the server's imports (about 1 s of ``import apiary.server.app`` alone on this 2-core machine) on top of
what the test session pays anyway, and it could not give each test an X-Ray daemon port of its own. Here
the server's event loop runs on a thread of its own; the test thread only talks to it over sockets,
exactly as the app under test does (``bench/testing_startup.py`` measures both ways).

The X-Ray daemon protocol carries no credential, so one daemon feeds one environment: each tenant gets
its own daemon (UDP segments and TCP sampling on one port, as the real daemon), feeding its environment.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import socket
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def free_udp_and_tcp_port() -> int:
    """A port number free for both UDP and TCP, as the X-Ray daemon takes both."""
    for _ in range(50):
        port = free_port()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            try:
                u.bind((HOST, port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port for the X-Ray daemon on 127.0.0.1")


class _TenantXRay:
    """The server's X-Ray service seen by one tenant's daemon: everything shared, but its segments and
    sampling calls go to that tenant's environment."""

    def __init__(self, shared: Any, environment: str) -> None:
        self._shared, self._environment = shared, environment

    def daemon_env(self) -> str:
        return self._environment

    def __getattr__(self, name: str) -> Any:
        return getattr(self._shared, name)


@dataclass
class Tenant:
    """One environment of the server: its key, and its own X-Ray daemon port."""

    environment: str
    key: str
    xray_port: int
    daemon: Any


class EmbeddedApiary:
    """``apiary serve`` in a thread: `start`, then `tenant` per test, then `stop`.

    ``store`` is ``duckdb`` (a DuckDB file in ``data_dir``), ``chdb`` (ClickHouse's engine in-process, in
    ``data_dir``) or a ``clickhouse://`` URL.
    """

    def __init__(self, data_dir: Path | None = None, store: str = "duckdb") -> None:
        self._tmp = None if data_dir else tempfile.TemporaryDirectory(prefix="apiary-test-")
        self.data_dir = Path(data_dir or self._tmp.name)  # type: ignore[union-attr]
        self.store = f"chdb://{self.data_dir / 'clickhouse'}" if store == "chdb" else store
        self.port = free_port()
        self.grpc_port = free_port()
        self._server: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._tenants: list[Tenant] = []
        self._failure: BaseException | None = None
        self.started_in_s = 0.0
        self._session = secrets.token_hex(4)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def grpc_endpoint(self) -> str:
        return f"http://{HOST}:{self.grpc_port}"

    def start(self, timeout: float = 120.0) -> "EmbeddedApiary":
        started = time.perf_counter()
        import uvicorn

        from apiary.cli import _listen
        from apiary.server.app import create_app, open_context
        from apiary.server.guard import protocol_with_header_timeout
        from apiary.server.settings import Settings

        settings = Settings()
        settings.data_dir, settings.host, settings.port = self.data_dir, HOST, self.port
        settings.store, settings.decode_workers = self.store, 0
        settings.xray_port, settings.otlp_grpc_port = 0, self.grpc_port  # daemons are per tenant
        settings.retention_days, settings.cors_origins, settings.exposure_asked = 0, ["*"], ""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        sock = _listen(HOST, self.port)
        ctx = open_context(settings)
        self.app = create_app(settings, ctx)
        config = uvicorn.Config(self.app, log_level="warning", access_log=False, lifespan="on",
                                timeout_graceful_shutdown=5, http=protocol_with_header_timeout(settings.header_timeout_s))
        self._server = uvicorn.Server(config)
        self._loop = asyncio.new_event_loop()

        def run() -> None:
            try:
                self._loop.run_until_complete(self._server.serve(sockets=[sock]))  # type: ignore[union-attr]
            except BaseException as exc:  # noqa: BLE001 - reported by start() / stop()
                self._failure = exc
            finally:
                sock.close()

        self._thread = threading.Thread(target=run, name="apiary-testing-server", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if self._failure is not None or not self._thread.is_alive():
                raise RuntimeError(f"Apiary did not start: {self._failure!r}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"Apiary did not start within {timeout} s")
            time.sleep(0.005)
        self.started_in_s = time.perf_counter() - started
        return self

    def _call(self, coro: Any, timeout: float = 60.0) -> Any:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def tenant(self, name: str) -> Tenant:
        """A new environment (named after ``name``, made unique) with a key and an X-Ray daemon of its own."""
        from apiary.receivers.xray.daemon import Daemon

        environment = f"{len(self._tenants) + 1}-{re.sub(r'[^A-Za-z0-9_.-]+', '-', name)[:80]}".strip("-")
        if self.store.startswith("clickhouse"):  # a server outlives the session: never reuse an earlier one's name
            environment = f"{self._session}-{environment}"
        key = self.app.state.apiary.meta.create_key(environment)
        port = free_udp_and_tcp_port()
        daemon = Daemon(_TenantXRay(self.app.state.xray, environment), HOST, port)  # type: ignore[arg-type]
        self._call(daemon.start())
        tenant = Tenant(environment, key, port, daemon)
        self._tenants.append(tenant)
        return tenant

    def release(self, tenant: Tenant) -> None:
        """Stop the tenant's daemon (its data stays: a failed test's telemetry can still be read)."""
        if tenant.daemon is not None and self._thread is not None and self._thread.is_alive():
            self._call(tenant.daemon.stop())
            tenant.daemon = None

    def stop(self) -> None:
        if self._server is None or self._thread is None:
            return
        for tenant in self._tenants:
            self.release(tenant)
        self._server.should_exit = True
        self._thread.join(60)
        if self._loop is not None and not self._loop.is_closed() and not self._thread.is_alive():
            self._loop.close()
        self._server = None
        if self._tmp is not None:
            self._tmp.cleanup()

    def __enter__(self) -> "EmbeddedApiary":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
