"""The span tables: each environment's spans in partitions of its own, ~8 M rows each.

Every DuckDB statement on a table visits each of its row groups' zone maps,
~0.8 us apiece, even when a filter lets it read only one: on 100 M spans in
one table (12,401 row groups of 8,192 rows), fetching one trace took 13-19 ms
warm and 45 ms cold where 10 M took 5.6, and even a ``rowid`` range over
101 rows took 10 ms. A trace is fetched from the partition(s) that
``trace_index`` names, so that cost stays that of one partition however much
data the store holds.

Each environment has a schema of its own (``spans_e0001``, named in
``span_environments``) holding its partition tables (``p0001`` ...; numbers
are unique across environments, so ``trace_index`` names a table by number)
and a ``spans`` view over them. DuckDB's insert and commit work per column of
the table, not of the batch: when every environment shared one table, one
environment's 250 attribute columns made another's 20-span export 21.6x
slower to become readable (48.5x at 536 columns, ``bench/table_width.py``).
Now a table has only the core columns and the attribute columns granted to
its environment, and a read acting for an environment (``read_scope``) finds
that environment's view first on its search path, so the query layer's SQL
(``FROM spans``) is unchanged and touches no other environment's table. The
``spans`` view of the main schema is all partitions of all environments
(``UNION ALL BY NAME`` fills absent columns with NULL), for reads made outside
any environment (the CLI, tests); ``spans_template`` gives it, and every new
environment's first table, the core columns.

Partitions fill in load order. The loader workers load environments at once,
each in a transaction of its own on its own cursor, so a new partition (a
table, a row of ``span_partitions``, the views rewritten) is made in a short
transaction of its own before the load that would overflow the current one,
under ``schema_lock``: two transactions that both rewrite the ``spans`` view
would conflict. A crash between the two leaves an empty partition, which the
next load fills. Retention drops
a partition whose newest span is past the cutoff instead of deleting its rows.
A partition with no environment is one shared by all from before this layout;
``env_split.py`` moves its rows into the environments' own at start.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Callable

import duckdb

from apiary.store.duckdb.transactions import rollback

#: Rows per partition: 1,024 row groups of 8,192.
PARTITION_ROWS = 1024 * 8_192
VIEW = "spans"
TEMPLATE = "spans_template"
CATALOG = "apiary"


@dataclass
class Partition:
    part: int
    rows: int
    ts_min: datetime | None
    ts_max: datetime | None
    env: str | None = None  #: None: shared by every environment (a store from before per-environment partitions)
    schema: str | None = None

    @property
    def table(self) -> str:
        if self.schema is None:
            return shared_table_name(self.part)
        return f"{self.schema}.p{self.part:04d}"


def shared_table_name(part: int) -> str:
    return f"spans_p{part:04d}"


class Partitions:
    """The partition list, in memory and in ``span_partitions``; changed by the loader workers (each
    environment by one at a time), retention and start-up."""

    def __init__(self, db: duckdb.DuckDBPyConnection, columns_sql: str,
                 env_columns: Callable[[str], list[str]]) -> None:
        """``columns_sql`` declares the core columns; ``env_columns(env)`` the attribute columns granted to ``env``."""
        self._db = db
        self._columns_sql = columns_sql
        self._env_columns = env_columns
        self._lock = threading.Lock()
        #: Held while partitions are made (and by the store while it adds columns): schema changes one at a time.
        self.schema_lock = threading.RLock()
        db.execute("""CREATE TABLE IF NOT EXISTS span_partitions (part INTEGER PRIMARY KEY, rows BIGINT,
                      ts_min TIMESTAMP, ts_max TIMESTAMP)""")
        db.execute("ALTER TABLE span_partitions ADD COLUMN IF NOT EXISTS _env VARCHAR")  # NULL: shared
        db.execute("CREATE TABLE IF NOT EXISTS span_environments (_env VARCHAR PRIMARY KEY, schema_name VARCHAR)")
        db.execute(f"CREATE TABLE IF NOT EXISTS {TEMPLATE} ({columns_sql})")
        self.reload()
        if not self._parts:
            self._adopt_single_table()

    def reload(self, envs: set[str] | None = None, cur: duckdb.DuckDBPyConnection | None = None) -> None:
        """The list as committed: after a rolled-back transaction that had changed it in memory.

        With ``envs``, only those environments' partitions: another worker's load of another environment
        may have changed its own in memory, not committed yet.
        """
        db = cur or self._db
        schemas = dict(db.execute("SELECT _env, schema_name FROM span_environments").fetchall())
        parts = [Partition(part, rows, lo, hi, env, schemas.get(env) if env is not None else None)
                 for part, rows, lo, hi, env in db.execute(
                     "SELECT part, rows, ts_min, ts_max, _env FROM span_partitions ORDER BY part").fetchall()]
        with self._lock:
            if envs is not None:
                parts = sorted([p for p in self._parts if p.env not in envs] + [p for p in parts if p.env in envs],
                               key=lambda p: p.part)
                schemas = {**self._schemas, **{e: s for e, s in schemas.items() if e in envs}}
            self._schemas: dict[str, str] = schemas
            self._parts = parts

    def _adopt_single_table(self) -> None:
        """A store from before partitions has its one table renamed into a shared partition; else the view is made."""
        db = self._db
        kind = db.execute("SELECT table_type FROM information_schema.tables WHERE table_catalog = current_database() "
                          "AND table_schema = 'main' AND table_name = ?", [VIEW]).fetchall()
        db.execute("BEGIN TRANSACTION")
        if kind and kind[0][0] == "BASE TABLE":
            db.execute(f"ALTER TABLE {VIEW} RENAME TO {shared_table_name(1)}")
            rows, lo, hi = extent(db, shared_table_name(1))
            db.execute("INSERT INTO span_partitions VALUES (1, ?, ?, ?, NULL)", [rows, lo, hi])
            self._parts = [Partition(1, rows, lo, hi)]
        self._write_views(db, set())
        db.execute("COMMIT")

    def schema_of(self, env: str) -> str | None:
        """The schema holding ``env``'s partitions and its ``spans`` view; None before its first load."""
        with self._lock:
            return self._schemas.get(env)

    def search_path(self, env: str) -> str | None:
        """What a reader acting for ``env`` sets as its search path: its own ``spans`` first, then the rest."""
        schema = self.schema_of(env)
        return None if schema is None else f"{CATALOG}.{schema},{CATALOG}.main"

    def tables(self, env: str | None = None) -> list[str]:
        """Every partition table, or ``env``'s own."""
        with self._lock:
            return [p.table for p in self._parts if env is None or p.env == env]

    def table_of(self, part: int) -> str | None:
        with self._lock:
            return next((p.table for p in self._parts if p.part == part), None)

    def shared(self) -> list[Partition]:
        """Partitions from before per-environment partitions, oldest first."""
        with self._lock:
            return [p for p in self._parts if p.env is None]

    def _active(self, env: str) -> Partition | None:
        with self._lock:
            return next((p for p in reversed(self._parts) if p.env == env), None)

    # -- inside the loader's transaction --------------------------------------------------------

    def ready(self, cur: duckdb.DuckDBPyConnection, env: str, rows: int) -> Partition:
        """Before a load's transaction: ``env``'s partition for ``rows``, a new one made and committed first
        when its active one is full (or it has none)."""
        active = self._active(env)
        if active is not None and not (active.rows and active.rows + rows > PARTITION_ROWS):
            return active
        with self.schema_lock:
            cur.execute("BEGIN TRANSACTION")
            try:
                part = self.for_load(env, rows, cur)
                cur.execute("COMMIT")
            except BaseException:
                rollback(cur)
                self.reload({env}, cur)
                raise
        return part

    def for_load(self, env: str, rows: int, cur: duckdb.DuckDBPyConnection | None = None) -> Partition:
        """In the caller's transaction: ``env``'s partition a load of ``rows`` goes into, starting a new one if
        its active one is full."""
        active = self._active(env)
        if active is not None and not (active.rows and active.rows + rows > PARTITION_ROWS):
            return active
        db = cur or self._db
        schema = self.schema_of(env)
        if schema is None:
            schema = self._new_schema(env, db)
        with self._lock:
            number = max((p.part for p in self._parts), default=0) + 1
        new = Partition(number, 0, None, None, env, schema)
        if active is None:
            db.execute(f"CREATE TABLE {new.table} ({', '.join([self._columns_sql, *self._env_columns(env)])})")
        else:
            db.execute(f"CREATE TABLE {new.table} AS SELECT * FROM {active.table} LIMIT 0")
        db.execute("INSERT INTO span_partitions VALUES (?, 0, NULL, NULL, ?)", [new.part, env])
        with self._lock:
            self._parts.append(new)
        self._write_views(db, {env})
        return new

    def _new_schema(self, env: str, db: duckdb.DuckDBPyConnection) -> str:
        taken = set(self._schemas.values())
        n = len(taken) + 1
        while f"spans_e{n:04d}" in taken:
            n += 1
        schema = f"spans_e{n:04d}"
        db.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        db.execute("INSERT INTO span_environments VALUES (?, ?)", [env, schema])
        with self._lock:
            self._schemas[env] = schema
        return schema

    def loaded(self, part: Partition, rows: int, lo: datetime, hi: datetime,
               cur: duckdb.DuckDBPyConnection | None = None) -> None:
        part.rows += rows
        part.ts_min = lo if part.ts_min is None else min(part.ts_min, lo)
        part.ts_max = hi if part.ts_max is None else max(part.ts_max, hi)
        (cur or self._db).execute("UPDATE span_partitions SET rows = ?, ts_min = ?, ts_max = ? WHERE part = ?",
                         [part.rows, part.ts_min, part.ts_max, part.part])

    def add_column(self, env: str, column_sql: str, cur: duckdb.DuckDBPyConnection | None = None) -> None:
        """A column granted to ``env``: added to its tables alone (a first table is made with it)."""
        for table in self.tables(env):
            (cur or self._db).execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {column_sql}")

    def add_core_column(self, name: str, sql_type: str) -> None:
        """At start: a core column added to the template and every partition that lacks it (shared ones too, so
        the move out of them copies it), in one transaction, and the views rewritten to show it."""
        db = self._db
        with self._lock:
            tables = {TEMPLATE: TEMPLATE, **{p.table: p.table for p in self._parts}}
        have = {f"{s}.{t}" if s != "main" else t for s, t in db.execute(
            "SELECT schema_name, table_name FROM duckdb_columns() WHERE database_name = ? AND column_name = ?",
            [CATALOG, name]).fetchall()}
        lacking = [t for t in tables if t not in have]
        if not lacking:
            return
        db.execute("BEGIN TRANSACTION")
        try:
            for table in lacking:
                db.execute(f'ALTER TABLE {table} ADD COLUMN "{name}" {sql_type}')
            self._write_views(db, set(self._schemas))
            db.execute("COMMIT")
        except BaseException:
            rollback(db)
            raise

    # -- retention and the move out of shared partitions ----------------------------------------

    def older_than(self, cutoff: datetime) -> list[Partition]:
        """Partitions, other than each environment's active one, whose every span is older than ``cutoff``."""
        with self._lock:
            active = {p.env: p.part for p in self._parts if p.env is not None}
            return [p for p in self._parts if active.get(p.env) != p.part and (p.ts_max is None or p.ts_max < cutoff)]

    def drop(self, cur: duckdb.DuckDBPyConnection, parts: list[Partition]) -> None:
        """In the caller's transaction: drop the partitions' tables and rows, then the views without them."""
        gone = {p.part for p in parts}
        for p in parts:
            cur.execute(f"DROP TABLE {p.table}")
            cur.execute("DELETE FROM span_partitions WHERE part = ?", [p.part])
        with self._lock:
            self._parts = [p for p in self._parts if p.part not in gone]
        self._write_views(cur, {p.env for p in parts if p.env is not None})

    def recount(self, cur: duckdb.DuckDBPyConnection) -> None:
        """After a DELETE: the partitions' rows and time ranges as stored."""
        for p in list(self._parts):
            rows, lo, hi = extent(cur, p.table)
            cur.execute("UPDATE span_partitions SET rows = ?, ts_min = ?, ts_max = ? WHERE part = ?", [rows, lo, hi, p.part])
            p.rows, p.ts_min, p.ts_max = rows, lo, hi

    def _write_views(self, cur: duckdb.DuckDBPyConnection, envs: set[str]) -> None:
        """The main ``spans`` view over every partition, and the views of ``envs`` over their own."""
        every = " UNION ALL BY NAME ".join(f"SELECT * FROM {t}" for t in [TEMPLATE, *self.tables()])
        cur.execute(f"CREATE OR REPLACE VIEW main.{VIEW} AS {every}")
        for env in envs:
            schema, own = self.schema_of(env), self.tables(env)
            if schema is None:
                continue
            body = " UNION ALL BY NAME ".join(f"SELECT * FROM {t}" for t in own) if own else f"SELECT * FROM main.{TEMPLATE}"
            cur.execute(f"CREATE OR REPLACE VIEW {schema}.{VIEW} AS {body}")


def extent(cur: duckdb.DuckDBPyConnection, table: str) -> tuple[int, datetime | None, datetime | None]:
    """Rows and time range of a partition table, as stored."""
    rows, lo, hi = cur.execute(f'SELECT count(*), min("timestamp"), max("timestamp") FROM {table}').fetchall()[0]
    return rows, lo, hi
