"""X-Ray groups' rows (name, filter expression, insights flags), per environment, in the metadata store's SQLite file.

On the ClickHouse store they stay in the node's local SQLite file, as the other small tables do
(``apiary/store/clickhouse/meta.py``).
"""

from __future__ import annotations

from typing import Any, Protocol

SCHEMA = """
CREATE TABLE IF NOT EXISTS xray_groups (
    environment TEXT NOT NULL,
    name TEXT NOT NULL,
    filter_expression TEXT NOT NULL,
    insights_enabled INTEGER NOT NULL DEFAULT 0,
    notifications_enabled INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (environment, name)
);
"""

#: (name, filter expression, insights enabled, notifications enabled)
GroupRow = tuple[str, str, bool, bool]


class SmallTables(Protocol):
    """What `apiary.store.meta.MetaStore` (and the ClickHouse one) offer other modules' small tables."""

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]: ...

    def executescript(self, sql: str) -> None: ...


class GroupTable:
    def __init__(self, meta: SmallTables) -> None:
        self.meta = meta
        meta.executescript(SCHEMA)

    def list(self, env: str) -> list[GroupRow]:
        rows = self.meta.execute("SELECT name, filter_expression, insights_enabled, notifications_enabled FROM xray_groups "
                                 "WHERE environment = ? ORDER BY name", (env,))
        return [(n, f, bool(i), bool(no)) for n, f, i, no in rows]

    def insert(self, env: str, row: GroupRow) -> bool:
        """False when the environment has a group of that name already."""
        name, expr, insights, notifications = row
        return bool(self.meta.execute("INSERT OR IGNORE INTO xray_groups VALUES (?, ?, ?, ?, ?) RETURNING name",
                                      (env, name, expr, int(insights), int(notifications))))

    def update(self, env: str, row: GroupRow) -> None:
        name, expr, insights, notifications = row
        self.meta.execute("UPDATE xray_groups SET filter_expression = ?, insights_enabled = ?, notifications_enabled = ? "
                          "WHERE environment = ? AND name = ?", (expr, int(insights), int(notifications), env, name))

    def delete(self, env: str, name: str) -> bool:
        """False when there was no such group."""
        return bool(self.meta.execute("DELETE FROM xray_groups WHERE environment = ? AND name = ? RETURNING name",
                                      (env, name)))
