"""DescribeLogGroups with many log groups: this tree beside an earlier Apiary (--baseline-rev), in the same run.

    python bench/log_groups.py --baseline-rev 1335142                 # 10,000 groups, both stores
    python bench/log_groups.py --groups 2000 --stores duckdb --runs 5 --baseline-rev HEAD~3

For each store, N log groups of one stream each are
written in bulk into each server's data directory (the schema made by this tree's log store), so both servers -- `apiary serve`
from this tree and from --baseline-rev, both on loopback, driven by boto3 -- hold the same catalogue. Then, in
alternating rounds (median of --runs), each answers DescribeLogGroups (50 a page) for the first page and for a page
in the middle of the listing (by its nextToken). This tree also walks every page of DescribeLogGroups and of
ListLogGroups (1,000 a page); those walks are timed once, as the before tree would take minutes per walk.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from apiary.store.base import LogGroup, LogStream  # noqa: E402
from bench.logs import ROOT, apiary_server, checkout  # noqa: E402

ENV = "bench"


def group_name(i: int) -> str:
    return f"/service-{i % 97:02d}/group-{i:06d}"


def write_catalogue(store_kind: str, data_dir: Path, chdb_dir: Path, n: int) -> None:
    """The catalogue the servers will open: N groups of one stream each (the stream's stored bytes set, so a group
    has bytes to sum), written as rows in bulk -- through the store's API, a CreateLogGroup at a time, 10,000 groups
    and streams take many minutes on a loaded machine -- into a database whose schema this tree's log store made."""
    import pyarrow as pa

    now = int(time.time() * 1000)
    groups = [LogGroup(group_name(i), now) for i in range(n)]
    streams = [LogStream(g.name, "s", now, now, now, now, 10 + i % 90) for i, g in enumerate(groups)]
    if store_kind == "duckdb":
        import duckdb

        from apiary.store.duckdb import DuckDBLogStore, DuckDBStore

        data_dir.mkdir(parents=True)
        spans = DuckDBStore(data_dir / "spans.duckdb")
        asyncio.run(DuckDBLogStore(spans).close())  # its schema
        spans.close_sync()
        db = duckdb.connect(str(data_dir / "spans.duckdb"))
        try:
            db.register("_bench_groups", pa.Table.from_pylist([{"_env": ENV, "name": g.name, "created_ms": now}
                                                              for g in groups]))
            db.execute("INSERT INTO log_groups BY NAME SELECT * FROM _bench_groups")
            rows = pa.Table.from_pylist([{"_env": ENV, "log_group": s.log_group, "name": s.name, "created_ms": now,
                                          "first_event_ms": now, "last_event_ms": now, "last_ingestion_ms": now,
                                          "stored_bytes": s.stored_bytes} for s in streams])
            db.register("_bench_streams", rows)
            db.execute("INSERT INTO log_streams BY NAME SELECT * FROM _bench_streams")
        finally:
            db.close()
        return
    from apiary.store.clickhouse import ClickHouseLogStore, connect
    from apiary.store.clickhouse.logs import _GROUPS, _STREAMS

    client = connect(f"chdb://{chdb_dir}")
    try:
        logs = ClickHouseLogStore(client, fsync=False)
        client.insert_arrow("log_groups", pa.Table.from_pylist([logs._group_row(ENV, g) for g in groups],
                                                               schema=_GROUPS))
        client.insert_arrow("log_streams", pa.Table.from_pylist([logs._stream_row(ENV, s) for s in streams],
                                                                schema=_STREAMS))
        asyncio.run(logs.close())
    finally:
        client.close()


def walk(call: Callable[..., dict[str, Any]], **kwargs: Any) -> int:
    """Every page of a listing; the number of groups seen."""
    seen = 0
    while True:
        r = call(**kwargs)
        seen += len(r["logGroups"])
        if "nextToken" not in r:
            return seen
        kwargs["nextToken"] = r["nextToken"]


def shown(page: dict[str, Any]) -> list[tuple[str, int]]:
    """What both trees must agree on: the page's groups and their stored bytes (not when each was written)."""
    return [(g["logGroupName"], g["storedBytes"]) for g in page["logGroups"]]


def interleaved(fns: list[Callable[[], Any]], runs: int) -> list[float]:
    """Median ms of each of ``fns``, called in turn within every round (one untimed warm-up call each)."""
    for fn in fns:
        fn()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(runs):
        for i, fn in enumerate(fns):
            t = time.perf_counter()
            fn()
            times[i].append((time.perf_counter() - t) * 1000)
    return [statistics.median(t) for t in times]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--groups", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=5, help="alternating rounds (median reported)")
    ap.add_argument("--stores", default="duckdb,chdb")
    ap.add_argument("--baseline-rev", required=True, help="the earlier Apiary to compare with (a git revision)")
    args = ap.parse_args()
    middle = "n/" + group_name(args.groups // 2)  # both trees' DescribeLogGroups token: the last name shown
    print(f"N = {args.groups:,} log groups of one stream each; DescribeLogGroups limit 50; median of {args.runs} "
          f"alternating rounds; ratio = {args.baseline_rev} / this tree")
    print(f"{'store':8}{'page':>8}{'before ms':>11}{'now ms':>9}{'ratio':>10}   this tree, every page: "
          "DescribeLogGroups (50) / ListLogGroups (1,000)")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        before = checkout(args.baseline_rev, tmp)
        for kind in args.stores.split(","):
            dirs = {source: (tmp / f"data-{kind}-{source.name}", tmp / f"chdb-{source.name}") for source in (ROOT, before)}
            for source in (ROOT, before):  # a ClickHouse directory does not open as a copy: each is written
                write_catalogue(kind, *dirs[source], args.groups)
            with contextlib.ExitStack() as stack:
                now = stack.enter_context(apiary_server(tmp, kind, ROOT))
                old = stack.enter_context(apiary_server(tmp, kind, before))
                for label, kwargs in (("first", {}), ("middle", {"nextToken": middle})):
                    assert shown(now.describe_log_groups(limit=50, **kwargs)) == \
                        shown(old.describe_log_groups(limit=50, **kwargs)), "the trees answer different pages"
                    before_ms, now_ms = interleaved([lambda: old.describe_log_groups(limit=50, **kwargs),
                                                     lambda: now.describe_log_groups(limit=50, **kwargs)], args.runs)
                    extra = ""
                    if label == "first":
                        t = time.perf_counter()
                        assert walk(now.describe_log_groups, limit=50) == args.groups
                        d_s = time.perf_counter() - t
                        t = time.perf_counter()
                        assert walk(now.list_log_groups, limit=1000) == args.groups
                        extra = f"   {d_s:.1f} s / {time.perf_counter() - t:.2f} s"
                    print(f"{kind:8}{label:>8}{before_ms:11.1f}{now_ms:9.1f}{before_ms / now_ms:9.0f}x{extra}",
                          flush=True)


if __name__ == "__main__":
    main()
