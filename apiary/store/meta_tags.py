"""Tags of X-Ray groups and sampling rules, as rows of the SQLite metadata store: one JSON object per resource.

A resource is named within its environment as ``group/<name>`` or ``sampling-rule/<name>`` (the tail of its
ARN), so a tag set follows its resource whatever region a client signs for. The receiver
(`apiary.receivers.xray.tags`) checks AWS's rules and merges; this repository only keeps the result.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Mapping

if TYPE_CHECKING:
    from apiary.store.meta import MetaStore

SCHEMA = """
CREATE TABLE IF NOT EXISTS xray_tags (
    environment TEXT NOT NULL,
    resource TEXT NOT NULL,
    tags TEXT NOT NULL,
    PRIMARY KEY (environment, resource)
);
"""


class XRayTagRows:
    def __init__(self, meta: "MetaStore") -> None:
        self._meta = meta
        meta._script(SCHEMA)

    def get(self, env: str, resource: str) -> dict[str, str]:
        rows = self._meta._run("SELECT tags FROM xray_tags WHERE environment = ? AND resource = ?", (env, resource))
        return dict(json.loads(rows[0][0])) if rows else {}

    def put(self, env: str, resource: str, tags: Mapping[str, str]) -> None:
        """Replace the resource's tags whole; none removes its row."""
        if not tags:
            self.remove(env, resource)
            return
        self._meta._run("INSERT OR REPLACE INTO xray_tags VALUES (?, ?, ?)",
                        (env, resource, json.dumps(dict(tags), sort_keys=True, ensure_ascii=False)))

    def remove(self, env: str, resource: str) -> None:
        self._meta._run("DELETE FROM xray_tags WHERE environment = ? AND resource = ?", (env, resource))
