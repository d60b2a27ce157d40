"""What StartQuery pays to choose log groups by tags (``SOURCE logGroupTags``) beside choosing them by name prefix
(``SOURCE logGroups(namePrefix: ...)``, the baseline), on the same log groups, in the same run.

    python bench/source_tags.py                         # 10,000 log groups, both stores
    python bench/source_tags.py --groups 2000 --stores duckdb --runs 50

Creates N log groups in a log store (10,000 is the most one SOURCE may select on AWS), each with three tags, then
times, in alternation (`interleaved_medians_ms`), the two steps StartQuery takes before it starts a query:
compiling the query text and selecting the environment's log groups with its SOURCE command -- once with two tag
filters (a wildcard and a negation among their values), once with two name prefixes that select as many groups.
The ratio is tags over prefixes; both select their groups from the store's catalogue in memory, so this is the
whole difference a user sees.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from apiary.query import insights  # noqa: E402
from bench.timing import interleaved_medians_ms  # noqa: E402

ENV = "bench"
TEAMS = ("web", "api", "batch", "data")
BY_TAGS = ("SOURCE logGroupTags([{key: 'team', values: ['web', 'API*']}, {key: 'env', values: ['!dev']}]) "
           "| stats count(*) by @log")
BY_PREFIX = "SOURCE logGroups(namePrefix: ['/web/', '/api/']) | stats count(*) by @log"


def group_name(i: int) -> str:
    return f"/{TEAMS[i % len(TEAMS)]}/service-{i:05d}"


async def fill(store: Any, n: int) -> None:
    """N groups, submitted together so the writer commits them in groups, as a burst of CreateLogGroup calls is."""
    envs = ("prod", "staging", "dev")
    await asyncio.gather(*(store.create_group(ENV, group_name(i), {
        "team": TEAMS[i % len(TEAMS)], "env": envs[i % len(envs)], "owner": f"owner-{i % 97}"}) for i in range(n)))


def open_store(name: str, tmp: Path) -> tuple[Any, Any]:
    """(log store, close) of one kind in ``tmp``."""
    if name == "duckdb":
        from apiary.store.duckdb import DuckDBLogStore, DuckDBStore

        spans = DuckDBStore(tmp / "bench.duckdb")
        return DuckDBLogStore(spans), spans.close_sync
    from apiary.store.clickhouse import ClickHouseLogStore, connect

    client = connect(f"chdb://{tmp / 'chdb'}")
    return ClickHouseLogStore(client, fsync=False), client.close


def selected(store: Any, text: str) -> list[str]:
    """What StartQuery does with a SOURCE query before the query runs: compile it, then select the groups."""
    compiled = insights.compile_query(text, None, store.dialect)
    assert compiled.source is not None
    return compiled.source.select([g.name for g in store.groups(ENV)], lambda name: store.tags(ENV, name))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--groups", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=20, help="timed rounds (median reported)")
    ap.add_argument("--stores", default="duckdb,clickhouse")
    args = ap.parse_args()
    print(f"N = {args.groups:,} log groups with 3 tags each; median of {args.runs} interleaved rounds; "
          "ratio = SOURCE logGroupTags / SOURCE logGroups(namePrefix)")
    print(f"{'store':12}{'groups chosen':>14}{'tags ms':>10}{'prefix ms':>11}{'ratio':>8}{'fill s':>8}")
    for name in args.stores.split(","):
        with tempfile.TemporaryDirectory() as tmp_name:
            store, close = open_store(name, Path(tmp_name))
            try:
                t = time.perf_counter()
                asyncio.run(fill(store, args.groups))
                filled = time.perf_counter() - t
                by_tags, by_prefix = selected(store, BY_TAGS), selected(store, BY_PREFIX)
                # the same groups, so the two selections do the same work downstream: web and api, no dev
                assert set(by_tags) == {g for g in by_prefix if store.tags(ENV, g)["env"] != "dev"}, "selections differ"
                tags_ms, prefix_ms = interleaved_medians_ms([lambda: selected(store, BY_TAGS),
                                                             lambda: selected(store, BY_PREFIX)], args.runs)
                print(f"{name:12}{len(by_tags):>14,}{tags_ms:10.2f}{prefix_ms:11.2f}{tags_ms / prefix_ms:7.2f}x"
                      f"{filled:8.1f}", flush=True)
            finally:
                asyncio.run(store.close())
                close()


if __name__ == "__main__":
    main()
