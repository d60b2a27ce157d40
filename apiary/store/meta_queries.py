"""Query specs, kept results, the history of runs and saved queries, as rows of the SQLite metadata store.

`apiary.query.history.QueryBook` decides ids, JSON forms and how many results
to keep; this repository only stores and reads them. Specs are canonical JSON
text, results the JSON text that is sent back as stored.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from apiary.store.meta import MetaStore

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


class QueryRows:
    def __init__(self, meta: "MetaStore") -> None:
        self._meta = meta
        meta._script(SCHEMA)

    # -- specs and results ----------------------------------------------------------------------

    def add_spec(self, env: str, qid: str, dataset: str, spec_json: str, now: float) -> None:
        """Kept once: the same id is the same spec."""
        self._meta._run("INSERT OR IGNORE INTO query_specs VALUES (?, ?, ?, ?, ?)", (qid, env, dataset, spec_json, now))

    def spec(self, env: str, qid: str) -> tuple[str, str, str] | None:
        """(id, dataset, spec JSON)."""
        rows = self._meta._run("SELECT id, dataset, spec FROM query_specs WHERE environment = ? AND id = ?", (env, qid))
        return (rows[0][0], rows[0][1], rows[0][2]) if rows else None

    def add_result(self, env: str, rid: str, dataset: str, qid: str, data_json: str, now: float, keep: int) -> None:
        """Keep a result, then drop the environment's results older than its newest ``keep``."""
        self._meta._run("INSERT INTO query_results VALUES (?, ?, ?, ?, ?, ?)", (rid, env, dataset, qid, data_json, now))
        self._meta._run("""DELETE FROM query_results WHERE environment = ? AND created_at < (
                               SELECT min(created_at) FROM (SELECT created_at FROM query_results WHERE environment = ?
                               ORDER BY created_at DESC LIMIT ?))""", (env, env, keep))

    def result(self, env: str, rid: str) -> tuple[str, str, str] | None:
        """(dataset, query id, result JSON)."""
        rows = self._meta._run("SELECT dataset, query_id, data FROM query_results WHERE environment = ? AND id = ?",
                               (env, rid))
        return (rows[0][0], rows[0][1], rows[0][2]) if rows else None

    # -- history --------------------------------------------------------------------------------

    def add_run(self, env: str, dataset: str, qid: str, spec_json: str, ran_at: float, elapsed_ms: float,
                result_rows: int | None, error: str | None) -> None:
        self._meta._run("INSERT INTO query_history (environment, dataset, query_id, spec, ran_at, elapsed_ms, result_rows, "
                        "error) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (env, dataset, qid, spec_json, ran_at, elapsed_ms, result_rows, error))

    def runs(self, env: str, limit: int) -> list[tuple[Any, ...]]:
        """Newest first: (id, dataset, query id, spec JSON, ran_at, elapsed_ms, result rows, error)."""
        return self._meta._run("SELECT id, dataset, query_id, spec, ran_at, elapsed_ms, result_rows, error "
                               "FROM query_history WHERE environment = ? ORDER BY id DESC LIMIT ?", (env, limit))

    # -- saved queries --------------------------------------------------------------------------

    def save(self, env: str, name: str, dataset: str, spec_json: str, now: float) -> None:
        """Create or replace the environment's saved query of that name (its created_at is kept)."""
        self._meta._run("""INSERT INTO saved_queries VALUES (?, ?, ?, ?, ?, ?)
                           ON CONFLICT (environment, name) DO UPDATE SET dataset = excluded.dataset, spec = excluded.spec,
                           updated_at = excluded.updated_at""", (env, name, dataset, spec_json, now, now))

    def saved(self, env: str, name: str | None = None) -> list[tuple[str, str, str, float, float]]:
        """By name: (name, dataset, spec JSON, created_at, updated_at); one name, or all of them."""
        sql = "SELECT name, dataset, spec, created_at, updated_at FROM saved_queries WHERE environment = ?"
        rows = (self._meta._run(sql + " AND name = ?", (env, name)) if name is not None
                else self._meta._run(sql + " ORDER BY name", (env,)))
        return [(r[0], r[1], r[2], r[3], r[4]) for r in rows]

    def remove_saved(self, env: str, name: str) -> bool:
        return bool(self._meta._run("DELETE FROM saved_queries WHERE environment = ? AND name = ? RETURNING name",
                                    (env, name)))
