"""X-Ray groups as rows of the SQLite metadata store: ``(name, filter expression, insights, notifications)``.

The receiver (`apiary.receivers.xray.groups`) validates names and parses
expressions; this repository only keeps them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from apiary.store.meta import MetaStore

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


class XRayGroupRows:
    def __init__(self, meta: "MetaStore") -> None:
        self._meta = meta
        meta._script(SCHEMA)

    def all(self, env: str) -> list[tuple[str, str, bool, bool]]:
        """The environment's groups by name (the implicit Default group only once its insights were configured)."""
        rows = self._meta._run("SELECT name, filter_expression, insights_enabled, notifications_enabled FROM xray_groups "
                               "WHERE environment = ? ORDER BY name", (env,))
        return [(r[0], r[1], bool(r[2]), bool(r[3])) for r in rows]

    def add(self, env: str, name: str, filter_expression: str, insights: bool, notifications: bool) -> bool:
        """False when the environment already has a group of that name (nothing is changed)."""
        return bool(self._meta._run("INSERT OR IGNORE INTO xray_groups VALUES (?, ?, ?, ?, ?) RETURNING name",
                                    (env, name, filter_expression, int(insights), int(notifications))))

    def replace(self, env: str, name: str, filter_expression: str, insights: bool, notifications: bool) -> None:
        self._meta._run("UPDATE xray_groups SET filter_expression = ?, insights_enabled = ?, notifications_enabled = ? "
                        "WHERE environment = ? AND name = ?", (filter_expression, int(insights), int(notifications), env, name))

    def remove(self, env: str, name: str) -> bool:
        """False when there was no such group."""
        return bool(self._meta._run("DELETE FROM xray_groups WHERE environment = ? AND name = ? RETURNING name",
                                    (env, name)))
