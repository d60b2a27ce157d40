"""A ClickHouse trace fetch names its environment's columns, and still sees a column another node added.

``spans`` is shared by every environment, so ``trace()`` reads only the core columns, the overflow and the
typed columns granted to the trace's environment (``env_columns``), never the other environments'. Two
stores on one database stand for two Apiary nodes: the reading one never saw the other's new key in its
memory, and the fetch must still hold it. Run on the real engine (chdb, or ``APIARY_CLICKHOUSE_URL``).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.clickhouse.conftest import clickhouse_url, drop_database
from tests.store.spans import batch


def test_a_trace_holds_its_environment_attributes_and_none_of_another_environments(tmp_path: Path) -> None:
    from apiary.store.clickhouse import ClickHouseStore

    url = clickhouse_url(tmp_path)
    reader, writer = ClickHouseStore(url), ClickHouseStore(url)
    try:
        asyncio.run(reader.append("other", batch([{"other.key": 7}], dataset="svc", trace_id="b" * 32)))
        asyncio.run(writer.append("e", batch([{"http.route": "/a", "user.id": 1}, {"http.route": "/b"}],
                                             dataset="svc", trace_id="a" * 32)))
        trace = reader.trace("e", "a" * 32)
        assert trace.num_rows == 2
        assert trace.column("http.route").to_pylist() == ["/a", "/b"]
        assert trace.column("user.id").to_pylist() == [1, None]
        assert "other.key" not in trace.column_names
        assert reader.trace("other", "b" * 32).column("other.key").to_pylist() == [7]
        assert reader.trace("other", "a" * 32).num_rows == 0, "a trace of one environment is not another's"
    finally:
        writer.close_sync()
        reader.close_sync()
        drop_database(url)
