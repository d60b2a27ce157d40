"""Statements from different threads run side by side, as they do on a ClickHouse server.

A read must not wait for another tenant's long insert: on a server each request has its
own connection; in-process (chdb) each statement borrows one of a few sessions. A session
keeps its own ``USE``, so clients of different databases on one path never trade theirs.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from apiary.store.clickhouse.client import Client, connect

from tests.clickhouse.conftest import SERVER_URL

# About three seconds of sleeping, one row at a time; ClickHouse caps a block's sleep, not the query's.
_SLOW = ("SELECT sum(sleepEachRow(0.01)) FROM numbers(300) "
         "SETTINGS max_block_size = 1, function_sleep_max_microseconds_per_block = 100000000")


def test_a_short_statement_runs_while_a_long_one_is_running(ch_url: str) -> None:
    client = connect(ch_url)
    try:
        client.command("CREATE TABLE marks (n UInt32) ENGINE = MergeTree ORDER BY n")
        slow_done = threading.Event()

        def slow() -> None:
            client.query_arrow(_SLOW)
            slow_done.set()

        worker = threading.Thread(target=slow)
        worker.start()
        try:
            # The long statement is seen running by a statement of our own, and an insert and a read
            # both finish before it does: neither waited for it.
            seen = 0
            for _ in range(200):
                seen = client.query_arrow("SELECT count() AS n FROM system.processes "
                                          "WHERE query LIKE '%sleepEachRow%' AND query NOT LIKE '%system.processes%'"
                                          ).column("n")[0].as_py()
                if seen or slow_done.is_set():
                    break
                time.sleep(0.01)
            client.command("INSERT INTO marks VALUES (7)")
            count = client.query_arrow("SELECT count() AS n FROM marks").column("n")[0].as_py()
            assert seen == 1 and count == 1
            assert not slow_done.is_set(), "the short statements waited for the long one"
        finally:
            worker.join()
        assert slow_done.is_set()
    finally:
        client.close()


def test_clients_of_two_databases_keep_their_own(ch_url: str) -> None:
    first = connect(ch_url)
    second_url = ch_url + ("_b" if SERVER_URL else "?database=apiary_b")
    second = connect(second_url)
    try:
        for client, name in ((first, "one"), (second, "two")):
            client.command("CREATE TABLE owner (name String) ENGINE = MergeTree ORDER BY name")
            client.command("INSERT INTO owner VALUES ({name:String})", {"name": name})

        def ask(client_name: tuple[Client, str]) -> bool:
            client, name = client_name
            found = client.query_arrow("SELECT name FROM owner").column("name").to_pylist()
            return found == [name]

        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(ask, [(first, "one"), (second, "two")] * 40))
        assert answers == [True] * 80
    finally:
        if SERVER_URL:
            second.command(f"DROP DATABASE IF EXISTS `{second.database}`")
        first.close()
        second.close()
