"""What one ``httpx.get`` to a loopback server costs the test process, as httpx makes it and as tests/conftest.py
makes it (the same call, given one SSL context made up front).

``httpx.get`` builds a client per call, and the client an SSL context read from the CA bundle, even for an
``http://`` URL that never uses it. The tests make thousands of such calls (readiness polls and ``eventually``
loops among them) on the cores their servers need. The server here is the standard library's, answering
``200 ok``; rounds alternate which way goes first. Printed: the median CPU (user + system) and wall time per
call of each way, and their ratio, shared context / httpx's default.

    python bench/http_client_calls.py --calls 50 --rounds 5
"""

from __future__ import annotations

import argparse
import functools
import http.server
import statistics
import threading
import time
from typing import Any, Callable

import httpx


class Ok(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - the standard library's name
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: Any) -> None:
        pass


def per_call(get: Callable[..., httpx.Response], url: str, calls: int) -> tuple[float, float]:
    """(CPU ms, wall ms) per call over ``calls`` calls."""
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(calls):
        get(url).raise_for_status()
    return (time.process_time() - cpu) * 1000 / calls, (time.perf_counter() - wall) * 1000 / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Ok)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    ways = {"httpx.get (a context per call)": httpx.get,
            "one shared SSL context": functools.partial(httpx.get, verify=httpx.create_ssl_context())}
    got: dict[str, list[tuple[float, float]]] = {name: [] for name in ways}
    for r in range(args.rounds):
        for name, get in (list(ways.items()) if r % 2 == 0 else list(reversed(ways.items()))):
            got[name].append(per_call(get, url, args.calls))
    medians = {name: (statistics.median(c for c, _ in runs), statistics.median(w for _, w in runs))
               for name, runs in got.items()}
    for name, (cpu, wall) in medians.items():
        print(f"{name:32}  CPU {cpu:6.1f} ms   wall {wall:6.1f} ms per call  (median of {args.rounds} x {args.calls})")
    (old_c, old_w), (new_c, new_w) = medians.values()
    print(f"{'ratio shared / per call':32}  CPU {new_c / old_c:6.2f}      wall {new_w / old_w:6.2f}")
    server.shutdown()


if __name__ == "__main__":
    main()
