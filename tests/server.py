"""Start a real ``apiary serve`` process on a free loopback port, as a user would."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import httpx


def instrument_launcher() -> list[str]:
    """``opentelemetry-instrument`` run by this interpreter (the venv's script may carry another venv's #!);
    the test is skipped where opentelemetry-distro is not installed."""
    import pytest  # here: the bench scripts import this module without pytest

    script = Path(sys.executable).parent / "opentelemetry-instrument"
    if not script.exists():
        found = shutil.which("opentelemetry-instrument")
        if found is None:
            pytest.skip("opentelemetry-instrument is not installed (pip install opentelemetry-distro)")
        script = Path(found)
    return [sys.executable, str(script)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def create_key(data_dir: Path, env: str = "dev", ingest_only: bool = False, store: str = "duckdb") -> str:
    """A key made in this process, as ``apiary keys create`` makes it (tests/test_cli_keys.py tests the command):
    a CLI process per key cost its imports, seconds of CPU each while the suite's servers start beside it.
    On ClickHouse the client is closed at once: chdb lets one process at a time open its directory."""
    if store == "duckdb":
        from apiary.store.meta import MetaStore

        data_dir.mkdir(parents=True, exist_ok=True)
        meta = MetaStore(data_dir / "meta.sqlite")
        try:
            return meta.create_key(env, can_read=not ingest_only)
        finally:
            meta.close()  # a test worker makes hundreds of keys: their files must not pile up in its descriptors
    from apiary.store.clickhouse import ClickHouseMeta, connect

    client = connect(store)
    try:
        return ClickHouseMeta(client).create_key(env, can_read=not ingest_only)
    finally:
        client.close()


@dataclass
class ApiaryProcess:
    data_dir: Path
    port: int = field(default_factory=free_port)
    extra_args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    key: str = ""
    proc: subprocess.Popen[str] | None = None
    log_path: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 90.0) -> "ApiaryProcess":
        """Waits for ``/api/health``. The bound is a failure deadline, not a speed check: with the suite's workers
        sharing two cores a server has been seen to need over 30 s to import and open its store."""
        self.log_path = self.data_dir.parent / f"apiary-{self.port}.log"
        log = open(self.log_path, "a")
        cmd = [sys.executable, "-m", "apiary", "serve", "--data", str(self.data_dir), "--port", str(self.port),
               "--host", "127.0.0.1", *self.extra_args]
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, text=True,
                                     # Tests never take the real X-Ray daemon or OTLP/gRPC port; their tests pass the flags.
                                     env={**os.environ, "APIARY_XRAY_PORT": "0", "APIARY_OTLP_GRPC_PORT": "0", **self.env})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"apiary serve exited with {self.proc.returncode}:\n{self.log_path.read_text()}")
            try:
                if httpx.get(f"{self.url}/api/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"apiary serve did not start in {timeout}s:\n{self.log_path.read_text()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def output(self) -> str:
        return self.log_path.read_text() if self.log_path and self.log_path.exists() else ""


@contextlib.contextmanager
def serving(data_dir: Path, env: str = "dev") -> Iterator[ApiaryProcess]:
    """A running server whose ``key`` is ``env``'s, stopped on leaving."""
    proc = ApiaryProcess(data_dir, key=create_key(data_dir, env))
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()
