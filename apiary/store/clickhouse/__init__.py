"""The ClickHouse store (scale-out): spans, logs, errors, the catalogue and shared metadata in one ClickHouse database."""

from apiary.store.clickhouse.client import ClickHouseError, connect, parse_url
from apiary.store.clickhouse.errors import ClickHouseErrorStore
from apiary.store.clickhouse.logs import ClickHouseLogStore
from apiary.store.clickhouse.meta import ClickHouseMeta
from apiary.store.clickhouse.store import ClickHouseStore

__all__ = ["ClickHouseError", "ClickHouseErrorStore", "ClickHouseLogStore", "ClickHouseMeta", "ClickHouseStore",
           "connect", "parse_url"]
