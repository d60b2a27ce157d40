"""X-Ray indexing rules as rows of the SQLite metadata store: ``(name, desired sampling percentage, modified_at)``.

Only rules a user changed are stored; the receiver (`apiary.receivers.xray.transaction_search`) knows the rule
X-Ray starts with and answers it until then.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from apiary.store.meta import MetaStore

SCHEMA = """
CREATE TABLE IF NOT EXISTS xray_indexing_rules (
    environment TEXT NOT NULL,
    name TEXT NOT NULL,
    desired_percentage REAL NOT NULL,
    modified_at REAL NOT NULL,
    PRIMARY KEY (environment, name)
);
"""


class XRayIndexingRows:
    def __init__(self, meta: "MetaStore") -> None:
        self._meta = meta
        meta._script(SCHEMA)

    def all(self, env: str) -> dict[str, tuple[float, float]]:
        """Rule name -> (desired percentage, modified at) of the rules changed in the environment."""
        rows = self._meta._run("SELECT name, desired_percentage, modified_at FROM xray_indexing_rules "
                               "WHERE environment = ?", (env,))
        return {r[0]: (r[1], r[2]) for r in rows}

    def put(self, env: str, name: str, desired: float, now: float) -> None:
        self._meta._run("INSERT OR REPLACE INTO xray_indexing_rules VALUES (?, ?, ?, ?)", (env, name, desired, now))
