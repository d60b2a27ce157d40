"""Query specs, their results, the history of runs and saved queries -- in the SQLite meta store.

Specs get the id Honeycomb would give the same spec twice: a digest of the
environment, dataset and canonical JSON, so re-creating a query is free.
Results are kept (the Query Data API fetches them by id) but pruned to the
newest ``KEEP_RESULTS`` per environment.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

from apiary.query import result_json
from apiary.store.meta import MetaStore

KEEP_RESULTS = 200
SCHEMA = """
CREATE TABLE IF NOT EXISTS query_specs (
    id TEXT NOT NULL, environment TEXT NOT NULL, dataset TEXT NOT NULL, spec TEXT NOT NULL, created_at REAL NOT NULL,
    PRIMARY KEY (environment, id)
);
CREATE TABLE IF NOT EXISTS query_results (
    id TEXT NOT NULL, environment TEXT NOT NULL, dataset TEXT NOT NULL, query_id TEXT NOT NULL,
    data TEXT NOT NULL, created_at REAL NOT NULL, PRIMARY KEY (environment, id)
);
CREATE TABLE IF NOT EXISTS query_history (
    id INTEGER PRIMARY KEY AUTOINCREMENT, environment TEXT NOT NULL, dataset TEXT NOT NULL, query_id TEXT NOT NULL,
    spec TEXT NOT NULL, ran_at REAL NOT NULL, elapsed_ms REAL NOT NULL, result_rows INTEGER, error TEXT
);
CREATE INDEX IF NOT EXISTS query_history_env ON query_history (environment, id);
CREATE TABLE IF NOT EXISTS saved_queries (
    environment TEXT NOT NULL, name TEXT NOT NULL, dataset TEXT NOT NULL, spec TEXT NOT NULL,
    created_at REAL NOT NULL, updated_at REAL NOT NULL, PRIMARY KEY (environment, name)
);
"""


def canonical(spec: dict[str, Any]) -> str:
    return json.dumps(spec, sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True)
class StoredQuery:
    id: str
    dataset: str
    spec: dict[str, Any]


class QueryBook:
    def __init__(self, meta: MetaStore) -> None:
        self.meta = meta
        meta.executescript(SCHEMA)

    # -- specs and results ----------------------------------------------------------------------

    def add_spec(self, env: str, dataset: str, spec: dict[str, Any]) -> str:
        text = canonical(spec)
        qid = hashlib.sha256(f"{env}\0{dataset}\0{text}".encode()).hexdigest()[:12]
        self.meta.execute("INSERT OR IGNORE INTO query_specs VALUES (?, ?, ?, ?, ?)", (qid, env, dataset, text, time.time()))
        return qid

    def spec(self, env: str, qid: str) -> StoredQuery | None:
        rows = self.meta.execute("SELECT id, dataset, spec FROM query_specs WHERE environment = ? AND id = ?", (env, qid))
        return StoredQuery(rows[0][0], rows[0][1], json.loads(rows[0][2])) if rows else None

    def add_result(self, env: str, dataset: str, qid: str, data_json: bytes) -> str:
        """Keep a result's JSON (``result_json.dumps`` of its data); returns its id."""
        rid = secrets.token_hex(6)
        self.meta.execute("INSERT INTO query_results VALUES (?, ?, ?, ?, ?, ?)",
                          (rid, env, dataset, qid, data_json.decode(), time.time()))
        self.meta.execute("""DELETE FROM query_results WHERE environment = ? AND created_at < (
                                 SELECT min(created_at) FROM (SELECT created_at FROM query_results WHERE environment = ?
                                 ORDER BY created_at DESC LIMIT ?))""", (env, env, KEEP_RESULTS))
        return rid

    def result(self, env: str, rid: str) -> tuple[str, str, result_json.Stored] | None:
        """Dataset, query id and the result's JSON, kept as text: it is sent as it was stored."""
        rows = self.meta.execute("SELECT dataset, query_id, data FROM query_results WHERE environment = ? AND id = ?", (env, rid))
        return (rows[0][0], rows[0][1], result_json.Stored(rows[0][2])) if rows else None

    # -- history --------------------------------------------------------------------------------

    def record_run(self, env: str, dataset: str, qid: str, spec: dict[str, Any], elapsed_ms: float,
                   result_rows: int | None, error: str | None = None) -> None:
        self.meta.execute("INSERT INTO query_history (environment, dataset, query_id, spec, ran_at, elapsed_ms, result_rows, error) "
                          "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (env, dataset, qid, canonical(spec), time.time(), elapsed_ms,
                                                              result_rows, error))

    def history(self, env: str, limit: int = 50) -> list[dict[str, Any]]:
        rows = self.meta.execute("SELECT id, dataset, query_id, spec, ran_at, elapsed_ms, result_rows, error FROM query_history "
                                 "WHERE environment = ? ORDER BY id DESC LIMIT ?", (env, limit))
        return [{"id": r[0], "dataset": r[1], "query_id": r[2], "query": json.loads(r[3]), "ran_at": r[4],
                 "elapsed_ms": round(r[5], 3), "result_rows": r[6], "error": r[7]} for r in rows]

    # -- saved queries --------------------------------------------------------------------------

    def save(self, env: str, name: str, dataset: str, spec: dict[str, Any]) -> None:
        now = time.time()
        self.meta.execute("""INSERT INTO saved_queries VALUES (?, ?, ?, ?, ?, ?)
                             ON CONFLICT (environment, name) DO UPDATE SET dataset = excluded.dataset, spec = excluded.spec,
                             updated_at = excluded.updated_at""", (env, name, dataset, canonical(spec), now, now))

    def saved(self, env: str, name: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT name, dataset, spec, created_at, updated_at FROM saved_queries WHERE environment = ?"
        rows = (self.meta.execute(sql + " AND name = ?", (env, name)) if name is not None
                else self.meta.execute(sql + " ORDER BY name", (env,)))
        return [{"name": r[0], "dataset": r[1], "query": json.loads(r[2]), "created_at": r[3], "updated_at": r[4]} for r in rows]

    def delete(self, env: str, name: str) -> bool:
        return bool(self.meta.execute("DELETE FROM saved_queries WHERE environment = ? AND name = ? RETURNING name", (env, name)))
