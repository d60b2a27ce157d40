"""The span table, cut into partitions of ~8 M rows behind one ``spans`` view.

Every DuckDB statement on a table visits each of its row groups' zone maps,
~0.8 us apiece, even when a filter lets it read only one: on 100 M spans in
one table (12,401 row groups of 8,192 rows), fetching one trace took 13-19 ms
warm and 45 ms cold where 10 M took 5.6, and even a ``rowid`` range over
101 rows took 10 ms. A trace is fetched from the partition(s) that
``trace_index`` names, so that cost stays that of one partition however much
data the store holds. Scans read the view: DuckDB plans a UNION ALL of the
partitions and pushes every filter into each.

Partitions fill in load order; the loader starts a new one in the same
transaction as the load that would overflow the current one. All partitions
have the same columns (a new attribute column is added to every one), so the
view is a plain ``UNION ALL BY NAME``. Retention drops a partition whose
newest span is past the cutoff instead of deleting its rows.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime

import duckdb

#: Rows per partition: 1,024 row groups of 8,192.
PARTITION_ROWS = 1024 * 8_192
VIEW = "spans"


@dataclass
class Partition:
    part: int
    rows: int
    ts_min: datetime | None
    ts_max: datetime | None

    @property
    def table(self) -> str:
        return table_name(self.part)


def table_name(part: int) -> str:
    return f"spans_p{part:04d}"


class Partitions:
    """The partition list, in memory and in ``span_partitions``; changed only by the loader thread."""

    def __init__(self, db: duckdb.DuckDBPyConnection, columns_sql: str) -> None:
        self._db = db
        self._lock = threading.Lock()
        db.execute("""CREATE TABLE IF NOT EXISTS span_partitions (part INTEGER PRIMARY KEY, rows BIGINT,
                      ts_min TIMESTAMP, ts_max TIMESTAMP)""")
        self.reload()
        if not self._parts:
            self._migrate_or_create(columns_sql)

    def reload(self) -> None:
        """The list as committed: after a rolled-back transaction that had changed it in memory."""
        parts = [Partition(*r) for r in self._db.execute(
            "SELECT part, rows, ts_min, ts_max FROM span_partitions ORDER BY part").fetchall()]
        with self._lock:
            self._parts = parts

    def _migrate_or_create(self, columns_sql: str) -> None:
        """A new store gets its first partition; a store from before partitions has its table renamed."""
        db = self._db
        kind = db.execute("SELECT table_type FROM information_schema.tables WHERE table_catalog = current_database() "
                          "AND table_name = ?", [VIEW]).fetchall()
        db.execute("BEGIN TRANSACTION")
        if kind and kind[0][0] == "BASE TABLE":
            db.execute(f"ALTER TABLE {VIEW} RENAME TO {table_name(1)}")
            rows, lo, hi = _extent(db, table_name(1))
        else:
            db.execute(f"CREATE TABLE {table_name(1)} ({columns_sql})")
            rows, lo, hi = 0, None, None
        db.execute("INSERT INTO span_partitions VALUES (1, ?, ?, ?)", [rows, lo, hi])
        self._parts = [Partition(1, rows, lo, hi)]
        self._write_view()
        db.execute("COMMIT")

    @property
    def active(self) -> Partition:
        return self._parts[-1]

    def tables(self) -> list[str]:
        with self._lock:
            return [p.table for p in self._parts]

    def table_of(self, part: int) -> str | None:
        with self._lock:
            return next((p.table for p in self._parts if p.part == part), None)

    # -- inside the loader's transaction --------------------------------------------------------

    def for_load(self, rows: int) -> Partition:
        """The partition a load of ``rows`` goes into, starting a new one if the active one is full."""
        active = self.active
        if active.rows and active.rows + rows > PARTITION_ROWS:
            new = Partition(active.part + 1, 0, None, None)
            self._db.execute(f"CREATE TABLE {new.table} AS SELECT * FROM {active.table} LIMIT 0")
            self._db.execute("INSERT INTO span_partitions VALUES (?, 0, NULL, NULL)", [new.part])
            with self._lock:
                self._parts.append(new)
            self._write_view()
            return new
        return active

    def loaded(self, part: Partition, rows: int, lo: datetime, hi: datetime) -> None:
        part.rows += rows
        part.ts_min = lo if part.ts_min is None else min(part.ts_min, lo)
        part.ts_max = hi if part.ts_max is None else max(part.ts_max, hi)
        self._db.execute("UPDATE span_partitions SET rows = ?, ts_min = ?, ts_max = ? WHERE part = ?",
                         [part.rows, part.ts_min, part.ts_max, part.part])

    def add_column(self, column_sql: str) -> None:
        for table in self.tables():
            self._db.execute(f"ALTER TABLE {table} ADD COLUMN {column_sql}")

    # -- retention ------------------------------------------------------------------------------

    def older_than(self, cutoff: datetime) -> list[Partition]:
        """Partitions, other than the active one, whose every span is older than ``cutoff``."""
        with self._lock:
            return [p for p in self._parts[:-1] if p.ts_max is None or p.ts_max < cutoff]

    def drop(self, cur: duckdb.DuckDBPyConnection, parts: list[Partition]) -> None:
        """In the caller's transaction: drop the partitions' tables and rows, then the view without them."""
        gone = {p.part for p in parts}
        for p in parts:
            cur.execute(f"DROP TABLE {p.table}")
            cur.execute("DELETE FROM span_partitions WHERE part = ?", [p.part])
        with self._lock:
            self._parts = [p for p in self._parts if p.part not in gone]
        self._write_view(cur)

    def recount(self, cur: duckdb.DuckDBPyConnection) -> None:
        """After a DELETE: the partitions' rows and time ranges as stored."""
        for p in list(self._parts):
            rows, lo, hi = _extent(cur, p.table)
            cur.execute("UPDATE span_partitions SET rows = ?, ts_min = ?, ts_max = ? WHERE part = ?", [rows, lo, hi, p.part])
            p.rows, p.ts_min, p.ts_max = rows, lo, hi

    def _write_view(self, cur: duckdb.DuckDBPyConnection | None = None) -> None:
        body = " UNION ALL BY NAME ".join(f"SELECT * FROM {t}" for t in self.tables())
        (cur or self._db).execute(f"CREATE OR REPLACE VIEW {VIEW} AS {body}")


def _extent(cur: duckdb.DuckDBPyConnection, table: str) -> tuple[int, datetime | None, datetime | None]:
    """Rows and time range of a partition table, as stored."""
    rows, lo, hi = cur.execute(f'SELECT count(*), min("timestamp"), max("timestamp") FROM {table}').fetchall()[0]
    return rows, lo, hi
