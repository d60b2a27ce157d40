"""Run `flask_app.py` in a subprocess with a test's ``apiary.env``, as a developer runs their app."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import httpx

from apiary.testing.server import free_port

APP = Path(__file__).resolve().parent / "flask_app.py"
#: A trace id a test can name in its expected messages: every test has its own environment.
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"
INSTRUMENTATION = ("OTEL_", "AWS_", "ROLLBAR_")


@contextlib.contextmanager
def running_app(env: dict[str, str], log: Path, breakage: str = "") -> Iterator[str]:
    """The app on a free port with ``env`` (and ``BREAK``); its base URL. Stopped with SIGTERM (flushes)."""
    port = free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith(INSTRUMENTATION)}
    out = open(log, "ab")
    proc = subprocess.Popen([sys.executable, str(APP), str(port)], stdout=out, stderr=subprocess.STDOUT,
                            env={**clean, **env, "BREAK": breakage, "PYTHONUNBUFFERED": "1"})
    out.close()
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the app exited with {proc.returncode}:\n{log.read_text()}")
            try:  # a connection, not a request: a request would be traced, and be telemetry the test did not ask for
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the app did not answer within 60 s:\n{log.read_text()}")
            time.sleep(0.05)
        yield base
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def call(base: str, path: str, trace_id: str = TRACE_ID) -> httpx.Response:
    """A request as a traced caller (a browser with both propagators) sends it: ``traceparent`` and
    ``X-Amzn-Trace-Id`` carrying the same trace, under the caller's span ``CALLER_SPAN``."""
    headers = {"traceparent": f"00-{trace_id}-{CALLER_SPAN}-01",
               "X-Amzn-Trace-Id": f"Root=1-{trace_id[:8]}-{trace_id[8:]};Parent={CALLER_SPAN};Sampled=1"}
    return httpx.get(base + path, headers=headers, timeout=10)


def new_trace_id() -> str:
    return secrets.token_hex(16)
