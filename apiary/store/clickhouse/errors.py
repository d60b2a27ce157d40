"""The scale-out error store: error items and their occurrences in the span store's ClickHouse database.

* ``error_occurrences``: MergeTree ``ORDER BY (_env, item_id, id)`` -- an
  item's page of occurrences is one range of the key; by uuid or by trace
  it is a scan of the environment, as rare as a user opening one.
* ``error_items``: ReplacingMergeTree on a version column; every change to
  an item inserts its new state, start-up reads the latest (``FINAL``), and
  the items are held in memory (`ErrorStoreBase`).

A report is acknowledged after its occurrences' insert returned (written,
``fsync_after_insert``). Items are inserted first: a failure between the two
inserts leaves an item counting an occurrence the client will send again,
never an occurrence without its item. As with logs, ids are assigned by this
process, so one Apiary node writes a database's errors.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import asdict
from datetime import timezone
from typing import Any, Sequence

import pyarrow as pa

from apiary.query.dialects.logs import ClickHouseLogDialect
from apiary.store.base import ErrorItem
from apiary.store.clickhouse.client import Client
from apiary.store.error_store import ITEM_COLUMNS, ErrorStoreBase, _Expire

TS = "DateTime64(6, 'UTC')"
_INT = {"id", "counter", "total_occurrences", "first_occurrence_id", "last_occurrence_id", "activating_occurrence_id"}
_FLOAT = {"first_occurrence_timestamp", "last_occurrence_timestamp", "last_activated_timestamp"}
_OPTIONAL_FLOAT = {"last_resolved_timestamp", "last_muted_timestamp"}
_OPTIONAL_TEXT = {"framework", "platform", "language", "last_trace_id"}


def _item_type(name: str) -> tuple[str, pa.DataType]:
    if name in _INT:
        return "Int64", pa.int64()
    if name in _FLOAT:
        return "Float64", pa.float64()
    if name in _OPTIONAL_FLOAT:
        return "Nullable(Float64)", pa.float64()
    if name in _OPTIONAL_TEXT:
        return "Nullable(String)", pa.string()
    return "String", pa.string()


_ITEMS = pa.schema([(c, _item_type(c)[1]) for c in ITEM_COLUMNS] + [("deleted", pa.uint8()), ("version", pa.uint64())])


class ClickHouseErrorStore(ErrorStoreBase):
    dialect = "clickhouse"

    def __init__(self, client: Client, *, max_pending_rows: int = 100_000, fsync: bool = True) -> None:
        self.client = client
        self._bind = ClickHouseLogDialect().bind
        self._versions = itertools.count(time.time_ns())
        durable = f"fsync_after_insert = {int(fsync)}, fsync_part_directory = {int(fsync)}"
        cols = ", ".join(f"`{c}` {_item_type(c)[0]}" for c in ITEM_COLUMNS)
        client.command(f"""CREATE TABLE IF NOT EXISTS error_items ({cols}, deleted UInt8, version UInt64)
                           ENGINE = ReplacingMergeTree(version) ORDER BY (env, id) SETTINGS {durable}""")
        client.command(f"""CREATE TABLE IF NOT EXISTS error_occurrences (_env LowCardinality(String), id Int64,
                           item_id Int64, `timestamp` {TS}, uuid String, item_key String, title String,
                           level LowCardinality(String), environment LowCardinality(String),
                           framework Nullable(String), platform Nullable(String), language Nullable(String),
                           exception_class Nullable(String), trace_id Nullable(String), span_id Nullable(String),
                           data String)
                           ENGINE = MergeTree ORDER BY (_env, item_id, id) SETTINGS {durable}""")
        super().__init__(max_pending_rows=max_pending_rows)

    def _load(self, items: dict[tuple[str, int], ErrorItem]) -> int:
        t = self.client.query_arrow(f"SELECT {', '.join(f'`{c}`' for c in ITEM_COLUMNS)} FROM error_items FINAL "
                                    "WHERE deleted = 0")
        for row in t.to_pylist():
            item = ErrorItem(**row)
            items[(item.env, item.id)] = item
        top = self.client.query_arrow("SELECT max(id) AS top FROM error_occurrences").column(0)[0].as_py()
        return (top or 0) + 1

    def _item_rows(self, items: list[ErrorItem], deleted: bool) -> pa.Table:
        rows = [{**asdict(it), "deleted": int(deleted), "version": next(self._versions)} for it in items]
        return pa.Table.from_pylist(rows, schema=_ITEMS)

    def _persist(self, occurrences: pa.Table | None, items: list[ErrorItem], expiries: list[_Expire],
                 gone: list[tuple[str, int]]) -> None:
        if items:
            self.client.insert_arrow("error_items", self._item_rows(items, False))
        if occurrences is not None:
            self.client.insert_arrow("error_occurrences", occurrences)  # the commit point
        for e in expiries:
            cutoff = e.cutoff.astimezone(timezone.utc).replace(tzinfo=None)
            n = int(self.client.query_arrow(f"SELECT count() AS n FROM error_occurrences WHERE `timestamp` < {{c:{TS}}}",
                                            {"c": cutoff}).column(0)[0].as_py())
            if n:
                self.client.command(f"DELETE FROM error_occurrences WHERE `timestamp` < {{c:{TS}}}", {"c": cutoff})
            e.removed = n
        if gone:
            with self._lock:
                dropped = [self._items[k] for k in gone if k in self._items]
            if dropped:
                self.client.insert_arrow("error_items", self._item_rows(dropped, True))

    def query(self, sql: str, params: Sequence[Any] = ()) -> pa.Table:
        """SQL bound by `ClickHouseLogDialect` (``{pN:Type}``), its values in order."""
        return self.client.query_arrow(sql, {f"p{i + 1}": v for i, v in enumerate(params)})

    def _close_backend(self) -> None:
        """The client belongs to the span store, which closes it."""
