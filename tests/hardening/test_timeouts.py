"""Slowloris: connections that send their headers a byte at a time are closed by the server.

A bounded number of connections, on 127.0.0.1, for a bounded time; a well-behaved request is served meanwhile.
"""

from __future__ import annotations

import select
import socket
import time

import httpx

from tests.hardening.conftest import Start

SLOW = 40
SILENT = 10
HEADER_TIMEOUT_S = 2
GIVE_UP_S = 30  # the test's own bound: far past the timeout, so only a server that never closes fails


def _closed(s: socket.socket) -> bool:
    poller = select.poll()  # not select(): a test worker that has opened many files holds descriptors past 1024
    poller.register(s, select.POLLIN)
    if not poller.poll(0):
        return False
    try:
        return s.recv(4096) == b""
    except OSError:
        return True


def test_slow_and_silent_connections_are_closed_after_the_header_timeout(start: Start) -> None:
    served = start("duckdb", {"dev": False}, "--header-timeout", str(HEADER_TIMEOUT_S))
    port = served.proc.port
    slow = [socket.create_connection(("127.0.0.1", port)) for _ in range(SLOW)]
    silent = [socket.create_connection(("127.0.0.1", port)) for _ in range(SILENT)]
    for s in slow:
        s.sendall(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    open_ = set(slow + silent)
    try:
        deadline = time.monotonic() + GIVE_UP_S
        served_meanwhile = False
        while open_ and time.monotonic() < deadline:
            for s in list(open_):
                if _closed(s):
                    open_.discard(s)
                elif s in slow:
                    try:
                        s.sendall(b"X")  # one more byte of a header that never ends
                    except OSError:
                        open_.discard(s)
            if not served_meanwhile:
                served_meanwhile = httpx.get(f"{served.url}/api/health", timeout=10).status_code == 200
            time.sleep(0.5)
        assert not open_, f"{len(open_)} of {SLOW + SILENT} connections still open after {GIVE_UP_S} s"
        assert served_meanwhile
    finally:
        for s in slow + silent:
            s.close()
    assert httpx.get(f"{served.url}/api/health", timeout=10).status_code == 200


def test_a_keep_alive_connection_gets_a_fresh_header_timeout_per_request(start: Start) -> None:
    served = start("duckdb", {"dev": False}, "--header-timeout", str(HEADER_TIMEOUT_S))
    with httpx.Client(base_url=served.url, timeout=10) as client:
        for _ in range(3):  # one connection, requests spaced under the keep-alive timeout
            assert client.get("/api/health").status_code == 200
            time.sleep(1)
        assert client.get("/api/health").status_code == 200
