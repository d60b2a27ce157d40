"""Environments, API keys and other small shared state, in SQLite beside the span store.

Kept apart from the DuckDB file on purpose: DuckDB lets one process open a
file for writing, but ``apiary keys create`` must work while a server runs on
the same data directory. SQLite takes concurrent writers from several
processes, so the CLI and the server share this file safely.

Other modules' small tables (X-Ray sampling rules and statistics, X-Ray
groups, the tags of both, resource policies, indexing rules, trace retrievals,
query specs, results, history and saved queries) are reached through named
repositories (``sampling_rules``, ``sampling_stats``, ``xray_groups``,
``xray_tags``, ``xray_policies``, ``xray_indexing``, ``xray_retrievals``,
``queries``), never through SQL handed in from outside ``apiary.store``.

Keys are stored as SHA-256 digests: they are 32 random characters, so a
slow password hash buys nothing, and a leaked database does not leak keys.
"""

from __future__ import annotations

import functools
import hashlib
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from apiary.store.meta_groups import XRayGroupRows
from apiary.store.meta_indexing import XRayIndexingRows
from apiary.store.meta_policies import XRayPolicyRows
from apiary.store.meta_queries import QueryRows
from apiary.store.meta_retrievals import XRayRetrievalRows
from apiary.store.meta_sampling import SamplingRuleRows, SamplingStatRows
from apiary.store.meta_tags import XRayTagRows

KEY_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
KEY_LENGTH = 32
SCHEMA = """
CREATE TABLE IF NOT EXISTS environments (
    name TEXT PRIMARY KEY,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS api_keys (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    environment TEXT NOT NULL REFERENCES environments(name),
    digest TEXT NOT NULL UNIQUE,
    hint TEXT NOT NULL,
    can_read INTEGER NOT NULL,
    created_at REAL NOT NULL
);
"""


@dataclass(frozen=True)
class ApiKey:
    id: int
    environment: str
    hint: str  # first characters, for telling keys apart in listings
    can_read: bool
    created_at: datetime

    @property
    def masked(self) -> str:
        return self.hint + "…" + "*" * 4


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    return "".join(secrets.choice(KEY_ALPHABET) for _ in range(KEY_LENGTH))


class MetaStore:
    """SQLite-backed; every call opens a short transaction so other processes see it at once."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._local = threading.local()
        self._conn().executescript(SCHEMA)

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            self._local.conn = conn
        return conn

    def close(self) -> None:
        """Close this thread's connection now: a store opened for one call (as a key made by a test) would
        otherwise keep its database and WAL files open until the garbage collector finds it."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            self._local.conn = None
            conn.close()

    class _Tx:
        def __init__(self, conn: sqlite3.Connection) -> None:
            self.conn = conn

        def __enter__(self) -> sqlite3.Connection:
            self.conn.execute("BEGIN IMMEDIATE")
            return self.conn

        def __exit__(self, exc_type: Any, *_: Any) -> None:
            self.conn.execute("ROLLBACK" if exc_type else "COMMIT")

    def _tx(self) -> "MetaStore._Tx":
        return MetaStore._Tx(self._conn())

    # -- for the repositories beside this module (meta_sampling, meta_groups, meta_queries) only --------

    def _run(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """One statement, one transaction."""
        with self._tx() as db:
            return db.execute(sql, params).fetchall()

    def _run_many(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        """One statement for each of ``rows``, all in one transaction."""
        with self._tx() as db:
            db.executemany(sql, rows)

    def _script(self, sql: str) -> None:
        self._conn().executescript(sql)

    # -- named repositories for other modules' small tables --------------------------------------

    @functools.cached_property
    def sampling_rules(self) -> SamplingRuleRows:
        return SamplingRuleRows(self)

    @functools.cached_property
    def sampling_stats(self) -> SamplingStatRows:
        return SamplingStatRows(self)

    @functools.cached_property
    def xray_groups(self) -> XRayGroupRows:
        return XRayGroupRows(self)

    @functools.cached_property
    def xray_tags(self) -> XRayTagRows:
        return XRayTagRows(self)

    @functools.cached_property
    def xray_policies(self) -> XRayPolicyRows:
        return XRayPolicyRows(self)

    @functools.cached_property
    def xray_indexing(self) -> XRayIndexingRows:
        return XRayIndexingRows(self)

    @functools.cached_property
    def xray_retrievals(self) -> XRayRetrievalRows:
        return XRayRetrievalRows(self)

    @functools.cached_property
    def queries(self) -> QueryRows:
        return QueryRows(self)

    # -- environments and keys -------------------------------------------------------------------

    def environments(self) -> list[str]:
        return [r[0] for r in self._conn().execute("SELECT name FROM environments ORDER BY created_at, name")]

    def create_environment(self, name: str) -> bool:
        """True when it was new."""
        with self._tx() as db:
            cur = db.execute("INSERT OR IGNORE INTO environments VALUES (?, ?)", (name, time.time()))
            return cur.rowcount == 1

    def create_key(self, environment: str, *, can_read: bool = True) -> str:
        """Create the environment if new, store a key's digest, and return the key (the only time it is seen)."""
        key = new_key()
        with self._tx() as db:
            db.execute("INSERT OR IGNORE INTO environments VALUES (?, ?)", (environment, time.time()))
            db.execute("INSERT INTO api_keys (environment, digest, hint, can_read, created_at) VALUES (?, ?, ?, ?, ?)",
                       (environment, digest(key), key[:6], int(can_read), time.time()))
        return key

    def keys(self, environment: str | None = None) -> list[ApiKey]:
        sql = "SELECT id, environment, hint, can_read, created_at FROM api_keys"
        rows = (self._conn().execute(sql + " WHERE environment = ? ORDER BY id", (environment,)) if environment
                else self._conn().execute(sql + " ORDER BY environment, id"))
        return [ApiKey(r[0], r[1], r[2], bool(r[3]), datetime.fromtimestamp(r[4], timezone.utc)) for r in rows]

    def lookup(self, key: str) -> ApiKey | None:
        row = self._conn().execute(
            "SELECT id, environment, hint, can_read, created_at FROM api_keys WHERE digest = ?", (digest(key),)).fetchone()
        if row is None:
            return None
        return ApiKey(row[0], row[1], row[2], bool(row[3]), datetime.fromtimestamp(row[4], timezone.utc))

    def iter_environment_keys(self) -> Iterator[tuple[str, ApiKey]]:
        for k in self.keys():
            yield k.environment, k
