"""Trace search reads each trace's start, end and counts from the per-trace summary kept at ingest: its answers
must be the spans' own, on both stores, whatever the window cuts, however the traces arrived, after retention
cut traces in two, and after a crash replayed the intake log.

The expected answers are worked out here in Python from the spans sent, not by the store.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from apiary.model.builder import BatchBuilder
from apiary.model.span import SpanBatch
from apiary.query.trace_search import search_traces
from apiary.store.duckdb import DuckDBStore
from tests.clickhouse.conftest import clickhouse_url, drop_database
from tests.server import ApiaryProcess, create_key

ENV = "e"
BASE = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)


@dataclass
class Span:
    trace_id: str
    span_id: str
    parent: str | None
    name: str
    service: str
    start: datetime
    duration_ms: float
    error: bool


def make_traces(seed: int = 5, traces: int = 40) -> list[Span]:
    """Traces of 1-9 spans over ~20 minutes, some lasting minutes (so windows cut them), some without a root."""
    rng = random.Random(seed)
    spans: list[Span] = []
    for t in range(traces):
        tid = f"{t + 1:032x}"
        t0 = BASE + timedelta(seconds=rng.randrange(0, 1200), microseconds=t)
        rootless = t % 7 == 3
        ids = [f"{t + 1:08x}{i:08x}" for i in range(rng.randrange(1, 10))]
        for i, sid in enumerate(ids):
            parent = (None if not rootless else "ffffffffffffffff") if i == 0 else ids[rng.randrange(0, i)]
            spread = 240 if t % 5 == 0 else 2  # every fifth trace lasts minutes
            spans.append(Span(tid, sid, parent, rng.choice(["GET /a", "GET /b", "db"]), rng.choice(["api", "db", "web"]),
                              t0 + timedelta(seconds=rng.uniform(0, spread) if i else 0, microseconds=i),
                              round(rng.lognormvariate(3, 1), 3), rng.random() < 0.15))
    return spans


def to_batch(spans: list[Span]) -> SpanBatch:
    b = BatchBuilder(len(spans))
    for i, s in enumerate(spans):
        b.core["timestamp"][i] = int(s.start.timestamp() * 1_000_000)
        b.core["duration_ms"][i] = s.duration_ms
        b.core["trace.trace_id"][i] = s.trace_id
        b.core["trace.span_id"][i] = s.span_id
        b.core["trace.parent_id"][i] = s.parent
        b.core["name"][i] = s.name
        b.core["service.name"][i] = s.service
        b.core["error"][i] = s.error
        b.dataset[i] = s.service
    return b.build()


def expected(spans: list[Span], start: datetime | None, end: datetime | None, keep: Any = None) -> dict[str, dict]:
    """The rows a search lists, from the spans that start in the window (of the traces ``keep`` accepts)."""
    by_trace: dict[str, list[Span]] = {}
    for s in spans:
        if start is None or start <= s.start < end:  # type: ignore[operator]
            by_trace.setdefault(s.trace_id, []).append(s)
    rows = {}
    for tid, group in by_trace.items():
        if keep is not None and not keep(group):
            continue
        group.sort(key=lambda s: s.start)
        roots = [s for s in group if not s.parent]
        first = roots[0] if roots else group[0]
        t0 = group[0].start
        t1 = max(s.start + timedelta(microseconds=round(s.duration_ms * 1000)) for s in group)
        rows[tid] = {"trace_id": tid, "root_name": first.name, "root_service": first.service, "root_missing": not roots,
                     "start": t0.isoformat().replace("+00:00", "Z"), "duration_ms": (t1 - t0) / timedelta(milliseconds=1),
                     "spans": len(group), "errors": sum(s.error for s in group),
                     "services": sorted({s.service for s in group})}
    return rows


def listed(doc: dict) -> dict[str, dict]:
    return {t["trace_id"]: t for t in doc["traces"]}


@pytest.fixture(params=["duckdb", "clickhouse"])
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if request.param == "duckdb":
        yield lambda: DuckDBStore(tmp_path / "spans.duckdb")
        return
    from apiary.store.clickhouse import ClickHouseStore

    url = clickhouse_url(tmp_path)
    yield lambda: ClickHouseStore(url)
    drop_database(url)


def send_in_pieces(store: Any, spans: list[Span], pieces: int, seed: int = 2) -> None:
    """The spans in shuffled pieces, each loaded before the next: most traces arrive in several loads."""
    shuffled = spans[:]
    random.Random(seed).shuffle(shuffled)

    async def go() -> None:
        for i in range(pieces):
            await store.append(ENV, to_batch(shuffled[i::pieces]))
            store.count(ENV)  # a read: DuckDB loads what was acknowledged before it

    asyncio.run(go())


def search(store: Any, doc: dict) -> dict:
    return search_traces(store, ENV, {"limit": 1000, **doc}).data


WINDOWS = [(0, 1500), (300, 600), (610, 615), (100, 1100), (1199, 1201)]


def test_trace_lists_from_the_summary_are_the_spans_own(open_store: Any) -> None:
    spans = make_traces()
    store = open_store()
    try:
        send_in_pieces(store, spans, 4)
        for lo, hi in WINDOWS:
            start, end = BASE + timedelta(seconds=lo), BASE + timedelta(seconds=hi)
            window = {"start_time": int(start.timestamp()), "end_time": int(end.timestamp())}
            want = expected(spans, start, end)
            doc = search(store, window)
            assert listed(doc) == want, (lo, hi)
            assert doc["matched"] == len(want)
            slowest = search(store, {**window, "order": "slowest", "limit": 3})
            durations = sorted((r["duration_ms"] for r in want.values()), reverse=True)[:3]
            assert [t["duration_ms"] for t in slowest["traces"]] == durations and slowest["matched"] == len(want)
            long = search(store, {**window, "min_trace_duration_ms": 60_000})
            assert set(listed(long)) == {t for t, r in want.items() if r["duration_ms"] >= 60_000}

            conditions = {"a": {"name": "GET /a"}, "e": {"error": True}}
            both = search(store, {**window, "spans": conditions, "match": "a and e"})
            want_both = expected(spans, start, end, lambda g: any(s.name == "GET /a" for s in g) and any(s.error for s in g))
            assert listed(both) == want_both and both["matched"] == len(want_both)
            absent = search(store, {**window, "spans": conditions, "match": "a and not e"})
            want_absent = expected(spans, start, end,
                                   lambda g: any(s.name == "GET /a" for s in g) and not any(s.error for s in g))
            assert listed(absent) == want_absent and absent["matched"] == len(want_absent)
            clean = search(store, {**window, "spans": conditions, "match": "not e"})
            assert set(listed(clean)) == {t for t, r in want.items() if r["errors"] == 0}
        for tid in (spans[0].trace_id, spans[-1].trace_id):  # by id: the whole trace, whatever the window
            doc = search(store, {"trace_id": tid, "start_time": 0, "end_time": 1})
            assert listed(doc) == {tid: expected(spans, None, None)[tid]}
    finally:
        store.close_sync()


def test_retention_that_cuts_traces_keeps_their_summary_exact(open_store: Any) -> None:
    spans = make_traces(seed=9)
    store = open_store()
    try:
        send_in_pieces(store, spans, 3)
        starts: dict[str, list[datetime]] = {}
        for s in spans:
            starts.setdefault(s.trace_id, []).append(s.start)
        longest = sorted(max(starts.values(), key=lambda t: max(t) - min(t)))
        cutoff = longest[len(longest) // 2]  # through the middle of the longest trace
        store.delete_older_than(cutoff)
        kept = [s for s in spans if s.start >= cutoff]
        want = expected(kept, None, None)
        cut = {s.trace_id for s in spans if s.start < cutoff} & set(want)
        assert cut, "the cutoff should cut some traces in two"
        doc = search(store, {"trace_ids": sorted({s.trace_id for s in spans})})
        assert listed(doc) == want and doc["matched"] == len(want)
        window = {"start_time": int(BASE.timestamp()), "end_time": int(BASE.timestamp()) + 1500}
        assert listed(search(store, window)) == want
    finally:
        store.close_sync()


def test_an_older_store_gets_its_summary_built_when_opened(tmp_path: Path) -> None:
    spans = make_traces(seed=4)
    store = DuckDBStore(tmp_path / "spans.duckdb")
    send_in_pieces(store, spans, 2)
    store.query("DROP TABLE trace_summary")  # as a store written before the summary existed
    store.close_sync()
    store = DuckDBStore(tmp_path / "spans.duckdb")
    try:
        window = {"start_time": int(BASE.timestamp()), "end_time": int(BASE.timestamp()) + 1500}
        assert listed(search(store, window)) == expected(spans, None, None)
    finally:
        store.close_sync()


def otlp_body(spans: list[Span]) -> bytes:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    req = ExportTraceServiceRequest()
    for svc in sorted({s.service for s in spans}):
        rs = req.resource_spans.add()
        rs.resource.attributes.add(key="service.name").value.string_value = svc
        scope = rs.scope_spans.add()
        for s in spans:
            if s.service != svc:
                continue
            o = scope.spans.add()
            o.trace_id, o.span_id = bytes.fromhex(s.trace_id), bytes.fromhex(s.span_id)
            if s.parent:
                o.parent_span_id = bytes.fromhex(s.parent)
            o.name = s.name
            o.start_time_unix_nano = int(s.start.timestamp() * 1_000_000) * 1000
            o.end_time_unix_nano = o.start_time_unix_nano + round(s.duration_ms * 1000) * 1000
            if s.error:
                o.status.code = 2
    return req.SerializeToString()


def test_a_kill_after_a_load_replays_spans_and_summary_once(tmp_path: Path) -> None:
    """DuckDB: half the spans loaded, the rest acknowledged and the server killed before it loads them; the restart
    replays the intake log, and the trace list counts every span once."""
    spans = [s for s in make_traces(seed=12) if s.start < BASE + timedelta(seconds=1200)]
    now = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(hours=1)
    shift = now - BASE
    for s in spans:
        s.start += shift
    data = tmp_path / "data"
    server = ApiaryProcess(data, key=create_key(data, ENV))
    headers = {"X-Honeycomb-Team": server.key, "Content-Type": "application/x-protobuf"}
    window = {"start_time": int(now.timestamp()), "end_time": int(now.timestamp()) + 1500, "limit": 1000}
    server.start()
    try:
        first, rest = spans[::2], spans[1::2]
        assert httpx.post(f"{server.url}/v1/traces", content=otlp_body(first), headers=headers, timeout=30).status_code == 200
        r = httpx.post(f"{server.url}/api/traces/search", json=window, headers=headers, timeout=60)  # loads them
        assert r.json()["matched"] == len(expected(first, None, None))
        assert httpx.post(f"{server.url}/v1/traces", content=otlp_body(rest), headers=headers, timeout=30).status_code == 200
        server.kill()  # before the loader's delay has passed
        server.start()
        r = httpx.post(f"{server.url}/api/traces/search", json=window, headers=headers, timeout=60)
        assert r.status_code == 200, r.text
        want = expected(spans, None, None)
        assert listed(r.json()) == want and r.json()["matched"] == len(want)
    finally:
        server.stop()
