"""``apiary traces search`` against a running server, as a user types it."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.traces.conftest import Planted


def run(planted: Planted, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "apiary", "traces", "search", "--url", planted.server.url,
                           "--key", planted.server.key, "--last", "1h", *args], capture_output=True, text=True, timeout=120)


def test_the_cli_lists_the_planted_traces_with_n_of_m(planted: Planted) -> None:
    done = run(planted, "--span", "c: name = checkout", "--span", "d: name = db-query", "--span", "d: db.rows >= 3",
               "--match", "d under c")
    assert done.returncode == 0, done.stderr
    assert planted.traces["db_under_checkout"].trace_id in done.stdout
    assert planted.traces["rootless_checkout"].trace_id not in done.stdout  # its db call has 1 row
    assert "web: POST /checkout" in done.stdout and "500.0 ms" in done.stdout
    assert done.stdout.rstrip().endswith("1 of 1 traces matched")


def test_the_cli_json_and_limit(planted: Planted) -> None:
    done = run(planted, "--span", "c: name = checkout", "--limit", "1", "--json")
    doc = json.loads(done.stdout)
    assert doc["returned"] == 1 and doc["matched"] == 4


def test_the_cli_says_what_is_wrong(planted: Planted) -> None:
    done = run(planted, "--span", "c name = checkout")
    assert done.returncode == 1 and "write NAME: COLUMN OP VALUE" in done.stderr
    done = run(planted, "--span", "c: name = checkout", "--match", "c and x")
    assert done.returncode == 1 and "'x' is not a span condition" in done.stderr and "HTTP 400" in done.stderr
