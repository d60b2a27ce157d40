"""Moving a store's shared span partitions into per-environment ones, once, at start.

Until schema version 3 every environment's spans went into the same partition tables, with every
environment's attribute columns. At start, each shared partition is split: each environment's rows
go into that environment's own partitions (with only the columns it has values in), its
``trace_index`` rows are pointed there, and the shared table is dropped -- one transaction per
shared partition, so a split cut short by a crash resumes where it stopped and loses nothing.
"""

from __future__ import annotations

import logging
from typing import Callable

import duckdb

from apiary.store.duckdb.partitions import TEMPLATE, Partition, Partitions
from apiary.store.duckdb.transactions import rollback

log = logging.getLogger(__name__)


def split_shared(db: duckdb.DuckDBPyConnection, partitions: Partitions, quote: Callable[[str], str],
                 grant: Callable[[str, list[str]], None]) -> None:
    """Split every shared partition; ``grant(env, physical_columns)`` records the typed columns ``env`` has values in."""
    core = {name for (name,) in db.execute(f"SELECT column_name FROM (DESCRIBE {TEMPLATE})").fetchall()}
    for shared in partitions.shared():
        _split_one(db, partitions, shared, core, quote, grant)


def _split_one(db: duckdb.DuckDBPyConnection, partitions: Partitions, shared: Partition, core: set[str],
               quote: Callable[[str], str], grant: Callable[[str, list[str]], None]) -> None:
    described = db.execute(f"SELECT column_name, column_type FROM (DESCRIBE {shared.table})").fetchall()
    attributes = [(name, typ) for name, typ in described if name not in core]
    envs = [env for (env,) in db.execute(f"SELECT DISTINCT _env FROM {shared.table} WHERE _env IS NOT NULL ORDER BY 1").fetchall()]
    moved = 0
    db.execute("BEGIN TRANSACTION")
    try:
        for env in envs:
            counts = db.execute(
                f'SELECT count(*), min("timestamp"), max("timestamp")'
                f'{"".join(f", count({quote(n)})" for n, _ in attributes)} FROM {shared.table} WHERE _env = ?', [env]).fetchall()[0]
            rows, lo, hi = counts[:3]
            used = [(n, typ) for (n, typ), c in zip(attributes, counts[3:]) if c]
            grant(env, [n for n, _ in used])
            part = partitions.for_load(env, rows)
            for name, typ in used:
                partitions.add_column(env, f"{quote(name)} {typ}")
            columns = ", ".join(quote(n) for n in [*sorted(core), *(n for n, _ in used)])
            db.execute(f"INSERT INTO {part.table} BY NAME SELECT {columns} FROM {shared.table} WHERE _env = ?", [env])
            partitions.loaded(part, rows, lo, hi)
            db.execute("UPDATE trace_index SET part = ? WHERE coalesce(part, 1) = ? AND _env = ?", [part.part, shared.part, env])
            moved += rows
        partitions.drop(db, [shared])
        db.execute("COMMIT")
    except BaseException:
        rollback(db)
        partitions.reload()
        raise
    log.info("moved %d spans of %d environment(s) out of shared partition %s", moved, len(envs), shared.table)
