"""X-Ray trace retrievals (StartTraceRetrieval) as rows of the SQLite metadata store.

A retrieval is what was asked -- trace ids and a time range -- and whether it was cancelled; the spans are read
from the span store when the results are listed. The receiver (`apiary.receivers.xray.retrieval`) makes the
tokens and prunes old retrievals.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from apiary.store.meta import MetaStore

SCHEMA = """
CREATE TABLE IF NOT EXISTS xray_trace_retrievals (
    environment TEXT NOT NULL,
    token TEXT NOT NULL,
    trace_ids TEXT NOT NULL,
    start_time REAL NOT NULL,
    end_time REAL NOT NULL,
    created_at REAL NOT NULL,
    cancelled INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (environment, token)
);
"""


class RetrievalRow(NamedTuple):
    trace_ids: list[str]
    start: float
    end: float
    created_at: float
    cancelled: bool


class XRayRetrievalRows:
    def __init__(self, meta: "MetaStore") -> None:
        self._meta = meta
        meta._script(SCHEMA)

    def add(self, env: str, token: str, trace_ids: list[str], start: float, end: float, now: float,
            older_than: float) -> None:
        """Keep a new retrieval, and drop the environment's retrievals created before ``older_than``."""
        with self._meta._tx() as db:
            db.execute("DELETE FROM xray_trace_retrievals WHERE environment = ? AND created_at < ?", (env, older_than))
            db.execute("INSERT INTO xray_trace_retrievals VALUES (?, ?, ?, ?, ?, ?, 0)",
                       (env, token, json.dumps(trace_ids), start, end, now))

    def get(self, env: str, token: str) -> RetrievalRow | None:
        rows = self._meta._run("SELECT trace_ids, start_time, end_time, created_at, cancelled FROM xray_trace_retrievals "
                               "WHERE environment = ? AND token = ?", (env, token))
        if not rows:
            return None
        ids, start, end, created, cancelled = rows[0]
        return RetrievalRow(json.loads(ids), start, end, created, bool(cancelled))

    def cancel(self, env: str, token: str) -> bool:
        """False when the environment has no such retrieval."""
        return bool(self._meta._run("UPDATE xray_trace_retrievals SET cancelled = 1 WHERE environment = ? AND token = ? "
                                    "RETURNING token", (env, token)))
