"""The log and error store contract, told once and run on DuckDB and on ClickHouse (chdb, or a server with
APIARY_CLICKHOUSE_URL): ordered reads and paging, message filters, the catalogue surviving a restart,
retention per log group and server-wide, Logs Insights answering alike, error items and their occurrences."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from apiary.model.error import ErrorOccurrence, item_key
from apiary.model.log import build_batch
from apiary.query import insights
from apiary.query.filter_pattern import MessageFilter
from apiary.store.base import ErrorStore, LogStore
from tests.clickhouse.conftest import clickhouse_url, drop_database

Stores = Callable[[], tuple[LogStore, ErrorStore, Callable[[], None]]]
NOW = datetime.now(timezone.utc).replace(microsecond=0)


@pytest.fixture(params=["duckdb", "clickhouse"])
def open_stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stores]:
    """Opens (and reopens, at the same place) a log store and an error store; the third value closes both."""
    if request.param == "duckdb":
        from apiary.store.duckdb import DuckDBStore
        from apiary.store.duckdb import DuckDBErrorStore
        from apiary.store.duckdb import DuckDBLogStore

        def duck() -> tuple[LogStore, ErrorStore, Callable[[], None]]:
            spans = DuckDBStore(tmp_path / "spans.duckdb")
            return DuckDBLogStore(spans), DuckDBErrorStore(spans), spans.close_sync

        yield duck
        return
    from apiary.store.clickhouse import ClickHouseErrorStore, ClickHouseLogStore, connect

    url = clickhouse_url(tmp_path)

    def clickhouse() -> tuple[LogStore, ErrorStore, Callable[[], None]]:
        client = connect(url)
        return ClickHouseLogStore(client, fsync=False), ClickHouseErrorStore(client, fsync=False), client.close

    yield clickhouse
    drop_database(url)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def events(group: str, stream: str, lines: list[tuple[datetime, str]], trace_id: str | None = None) -> Any:
    n = len(lines)
    return build_batch({"timestamp": [int(t.timestamp() * 1e6) for t, _ in lines],
                        "ingestion_time": [int(NOW.timestamp() * 1e6)] * n, "log_group": [group] * n,
                        "log_stream": [stream] * n, "message": [m for _, m in lines], "trace_id": [trace_id] * n,
                        "source": ["cloudwatch"] * n})


async def close(logs: LogStore, errors: ErrorStore, done: Callable[[], None]) -> None:
    await logs.close()
    await errors.close()
    done()


def test_events_read_back_in_order_with_filters_paging_and_a_restart(open_stores: Stores) -> None:
    t0 = NOW - timedelta(minutes=10)
    web = [(t0 + timedelta(seconds=i), f"GET /p/{i} {[200, 500][i % 2]}") for i in range(10)]
    api = [(t0 + timedelta(seconds=i), json.dumps({"level": ["INFO", "ERROR"][i % 2], "i": i})) for i in range(10)]

    async def write() -> None:
        logs, errors, done = open_stores()
        assert await logs.create_group("e", "app") and not await logs.create_group("e", "app")
        await logs.create_stream("e", "app", "web")
        await logs.ensure_stream("e", "app", "api")
        await logs.put_retention("e", "app", 30)
        await logs.append("e", events("app", "web", web, trace_id="ab" * 16))
        await logs.append("e", events("app", "api", api))
        await close(logs, errors, done)

    async def read() -> None:
        logs, errors, done = open_stores()  # everything below survived the restart
        assert [g.name for g in logs.groups("e")] == ["app"] and logs.groups("other") == []
        group = logs.group("e", "app")
        assert group is not None and group.retention_days == 30 and group.stored_bytes > 0
        web_stream = logs.stream("e", "app", "web")
        assert web_stream is not None and web_stream.first_event_ms == int(t0.timestamp() * 1000)
        assert [s.name for s in logs.streams("e", "app")] == ["api", "web"]

        every = logs.events("e", "app").to_pylist()
        assert len(every) == 20 and [r["timestamp_us"] for r in every] == sorted(r["timestamp_us"] for r in every)
        same_ms = [r["log_stream"] for r in every[:2]]
        assert same_ms == ["web", "api"]  # one millisecond, in commit order (seq)
        page = logs.events("e", "app", limit=7).to_pylist()
        last = (page[-1]["timestamp_us"], page[-1]["seq"])
        rest = logs.events("e", "app", after=last).to_pylist()
        assert [r["seq"] for r in page + rest] == [r["seq"] for r in every]
        newest = logs.events("e", "app", ["web"], descending=True, limit=3, detail=True).to_pylist()
        assert [r["message"] for r in newest] == [m for _, m in web[-3:]][::-1] and newest[0]["trace_id"] == "ab" * 16

        def messages(f: MessageFilter) -> list[str]:
            return [r["message"] for r in logs.events("e", "app", message_filter=f).to_pylist()]

        assert messages(MessageFilter(required=("500",))) == [m for _, m in web if "500" in m]
        assert messages(MessageFilter(any_of=("/p/1 ", "/p/3 "))) == ["GET /p/1 500", "GET /p/3 500"]
        assert messages(MessageFilter(json_object=True, excluded=("INFO",))) == [m for _, m in api if "ERROR" in m]
        assert messages(MessageFilter(regexes=(r"/p/[2-3] ",))) == ["GET /p/2 200", "GET /p/3 500"]
        window = logs.events("e", "app", start_ms=int(t0.timestamp() * 1000) + 2000,
                             end_ms=int(t0.timestamp() * 1000) + 4000).num_rows
        assert window == 4

        top = logs.max_seq("e", "app")
        assert top == max(r["seq"] for r in every)
        assert logs.event_counts("e") == {("app", "web"): 10, ("app", "api"): 10}
        assert logs.trace_logs("e", "ab" * 16).num_rows == 10 and logs.count("e") == 20 and logs.count() == 20
        await logs.append("e", events("app", "web", [(t0 - timedelta(minutes=1), "late but newest")]))
        tail = logs.events_after_seq("e", "app", None, top, 100).to_pylist()
        assert [r["message"] for r in tail] == ["late but newest"] and tail[0]["seq"] > top  # seq goes on
        await logs.delete_stream("e", "app", "web")
        assert logs.stream("e", "app", "web") is None and logs.count("e") == 10
        await close(logs, errors, done)
        logs, errors, done = open_stores()
        assert [s.name for s in logs.streams("e", "app")] == ["api"]
        await logs.delete_group("e", "app")
        assert logs.groups("e") == [] and logs.count("e") == 0
        await close(logs, errors, done)

    run(write())
    run(read())


def test_log_group_tags_survive_a_restart_and_go_with_their_group(open_stores: Stores) -> None:
    """Tags committed with a new group or by `retag` are read back after a restart; deleting the group drops them,
    so a group made again under the name starts with none."""
    async def write() -> None:
        logs, errors, done = open_stores()
        assert await logs.create_group("e", "web", {"team": "web"}) and await logs.create_group("e", "api")
        assert await logs.retag("e", "api", lambda tags: {**tags, "team": "api", "env": "prod"}) == {
            "team": "api", "env": "prod"}
        assert await logs.retag("e", "missing", lambda tags: {"a": "b"}) is None
        await close(logs, errors, done)

    async def read() -> None:
        logs, errors, done = open_stores()
        assert logs.tags("e", "web") == {"team": "web"} and logs.tags("e", "api") == {"team": "api", "env": "prod"}
        assert logs.tags("other", "web") == {} and logs.tags("e", "missing") == {}
        await logs.retag("e", "api", lambda tags: {})
        await logs.delete_group("e", "web")
        await logs.create_group("e", "web")
        await close(logs, errors, done)
        logs, errors, done = open_stores()
        assert logs.tags("e", "web") == {} and logs.tags("e", "api") == {}
        await close(logs, errors, done)

    run(write())
    run(read())


def test_retention_per_group_and_server_wide(open_stores: Stores) -> None:
    old, recent = NOW - timedelta(days=1, hours=2), NOW - timedelta(hours=2)

    async def go() -> None:
        logs, errors, done = open_stores()
        for group in ("short", "kept"):
            await logs.ensure_stream("e", group, "s")
            await logs.append("e", events(group, "s", [(old, f"{group} old")]))
            await logs.append("e", events(group, "s", [(recent, f"{group} recent")]))
        await logs.put_retention("e", "short", 1)
        assert await logs.delete_expired() == 1
        assert [r["message"] for r in logs.events("e", "short").to_pylist()] == ["short recent"]
        assert [r["message"] for r in logs.events("e", "kept").to_pylist()] == ["kept old", "kept recent"]
        assert await logs.delete_older_than(NOW - timedelta(days=1)) == 1
        assert [r["message"] for r in logs.events("e", "kept").to_pylist()] == ["kept recent"]
        await close(logs, errors, done)

    run(go())


def occurrence(title: str, at: datetime, trace_id: str | None = None, level: str = "error") -> ErrorOccurrence:
    return ErrorOccurrence(int(at.timestamp() * 1e6), f"{title}-{at.timestamp()}-{trace_id}",
                           item_key("production", None, None, [], title), title, level, "production", "flask",
                           "linux", "python", None, trace_id, None, json.dumps({"body": {"message": {"body": title}}}))


def test_error_items_occurrences_status_and_retention(open_stores: Stores) -> None:
    async def go() -> None:
        logs, errors, done = open_stores()
        await errors.report("e", [occurrence("boom", NOW - timedelta(minutes=m), "cd" * 16) for m in (3, 2, 1)])
        await errors.report("e", [occurrence("old news", NOW - timedelta(days=3), level="warning")])
        await errors.report("other", [occurrence("boom", NOW)])
        [boom, old] = errors.items("e")
        assert (boom.title, boom.total_occurrences, old.title) == ("boom", 3, "old news")
        assert [i.total_occurrences for i in errors.items("other")] == [1]
        resolved = await errors.set_status("e", boom.id, "resolved", None)
        assert resolved is not None and resolved.status == "resolved"
        await close(logs, errors, done)

        logs, errors, done = open_stores()  # items and ids survive a restart
        boom = next(i for i in errors.items("e") if i.title == "boom")
        assert boom.status == "resolved" and errors.items("e", status="active")[0].title == "old news"
        await errors.report("e", [occurrence("boom", NOW)])
        boom = errors.item("e", boom.id)
        assert boom is not None and boom.status == "active" and boom.total_occurrences == 4  # it came back
        rows = errors.occurrences("e", boom.id)
        assert len(rows) == 4 and rows[0]["id"] > rows[-1]["id"] and rows[0]["data"]["body"]["message"]["body"] == "boom"
        assert len({r["id"] for r in rows}) == 4
        by_uuid = errors.occurrence("e", rows[1]["uuid"])
        assert by_uuid is not None and by_uuid["id"] == rows[1]["id"]
        assert errors.occurrence("e", str(rows[1]["id"]))["uuid"] == rows[1]["uuid"]  # type: ignore[index]
        assert errors.occurrence("other", rows[1]["uuid"]) is None
        assert [r["trace_id"] for r in errors.trace_errors("e", "cd" * 16)] == ["cd" * 16] * 3
        start = NOW - timedelta(minutes=30)
        counts = Counter({(r["item_id"], r["b"]): r["n"] for r in errors.occurrence_counts("e", [boom.id], start, 600)})
        assert counts == Counter({(boom.id, 2): 3, (boom.id, 3): 1})  # three in the third 10-minute bucket, one now
        assert await errors.delete_older_than(NOW - timedelta(days=1)) == 1
        assert [i.title for i in errors.items("e")] == ["boom"]  # the item with no occurrence left is gone
        await close(logs, errors, done)
        logs, errors, done = open_stores()
        assert [i.title for i in errors.items("e")] == ["boom"]
        await close(logs, errors, done)

    run(go())


def test_insights_answers_alike_on_every_store(open_stores: Stores) -> None:
    t0 = NOW.replace(second=0) - timedelta(minutes=30)
    lines = [(t0 + timedelta(seconds=20 * i), json.dumps({"level": ["INFO", "ERROR"][i % 2], "latency": i * 10,
                                                         "path": f"/api/{i}", "cached?": i == 4})) for i in range(12)]
    lines += [(t0 + timedelta(seconds=20 * i + 1), f"plain line {i}") for i in range(6)]
    lines.sort()

    async def go() -> None:
        logs, errors, done = open_stores()
        await logs.ensure_stream("e", "app", "s")
        await logs.append("e", events("app", "s", lines))

        def ask(text: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
            compiled = insights.compile_query(text, None, logs.dialect)
            sql, params, counts_sql, counts_params = insights.to_sql(
                compiled, "e", ["app"], int(t0.timestamp()) - 60, int(NOW.timestamp()))
            return logs.query(sql, params).to_pylist(), logs.query(counts_sql, counts_params).to_pylist()[0]

        rows, counts = ask("stats count(*) as n by bin(1m)")
        assert {r["bin(1m)"].replace(tzinfo=timezone.utc) if r["bin(1m)"].tzinfo is None else r["bin(1m)"]: r["n"]
                for r in rows} == Counter(t.replace(second=0) for t, _ in lines)
        assert (counts["scanned"], counts["matched"]) == (18, 18)
        rows, counts = ask('filter level = "ERROR" and latency > 20 | parse path "/api/*" as n '
                           '| fields @message, n | sort latency desc | limit 2')
        assert [int(r["n"]) for r in rows] == [11, 9] and counts["matched"] == 5
        rows, _ = ask("filter @message like /plain line [0-2]/ | stats count(*) as c, pct(latency, 50) as p")
        assert rows[0]["c"] == 3 and rows[0]["p"] is None
        rows, _ = ask('filter ispresent(level) | stats avg(latency) as a, max(latency) as m, earliest(path) as first '
                      'by level | sort level')
        assert [(r["level"], r["a"], r["m"], r["first"]) for r in rows] == [
            ("ERROR", 60.0, 110.0, "/api/1"), ("INFO", 50.0, 100.0, "/api/0")]
        rows, _ = ask("filter `cached?` = 'true' | fields path as `where?`")  # a '?' in names is no placeholder
        assert [r["where?"] for r in rows] == ["/api/4"]
        await close(logs, errors, done)

    run(go())
