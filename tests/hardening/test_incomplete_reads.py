"""A read never answers without acknowledged rows: it waits for them, or fails saying so.

(The ClickHouse store acknowledges a write once ClickHouse has it, so its reads are complete by
construction; the DuckDB store loads acknowledged batches from its intake log in the background.)
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from apiary.store.base import StoreUnavailable
from apiary.store.duckdb import DuckDBStore
from tests.store.spans import batch


def test_a_read_that_would_miss_acknowledged_spans_fails_instead(tmp_path: Path) -> None:
    async def go() -> None:
        store = DuckDBStore(tmp_path / "spans.duckdb")
        await store.append("e", batch([{"k": 1}]))
        assert store.count("e") == 1
        store.read_wait_s = 0.5
        with store._write_lock.alone():  # the loader is held up, as behind a long load or retention
            await store.append("e", batch([{"k": 2}], trace_id="cd" * 16))  # acknowledged: in the intake log
            with pytest.raises(StoreUnavailable, match="1 acknowledged spans are not loaded yet"):
                store.count("e")
        assert store.count("e") == 2  # once the loader goes on, the read has both
        await store.close()

    asyncio.run(go())
