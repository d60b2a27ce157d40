"""One span MergeTree per environment, and ``spans`` as a ``Merge`` table over them for the query layer.

ClickHouse writes every column of a table in every part it writes, so a shared table as wide as every
environment's attributes together made a calm environment's 20-row insert pay for a flooding environment's
hundreds of columns (99 / 231 / 509 ms into tables of 37 / 287 / 787 columns, measured on chdb). Each
environment's spans therefore go into a table of their own, holding the core columns and only the typed columns
that environment was granted (``env_columns``); a flood widens only the flooder's table.

* The table's name is derived from the environment's (``spans_e_<12 hex of sha1>``), so every node writing an
  environment agrees on its table without asking any other; ``CREATE TABLE IF NOT EXISTS`` and ``ADD COLUMN IF
  NOT EXISTS`` make nodes racing to create or widen it harmless. Physical column names are the store's
  (``physical_name``), the same in every table.
* ``spans`` is a ``Merge`` table over every source table, as wide as all of them: the query layer's SQL
  (``FROM spans WHERE _env = ...``) is unchanged, a column a source lacks reads NULL there, and each source's
  primary key (``_env`` first) skips the other environments' tables after one index lookup each.
* A read acting for one environment (``read_scope``) reads that environment's table alone: `scoped` puts a
  ``spans`` CTE in front of the query layer's SQL, which the name then resolves to. Through the ``Merge``
  table, a calm environment's reads had slowed by 70-80 % once a flooding environment's 275-column table
  joined it (3.8 / 4.9 / 5.7 ms -> 7.0 / 8.4 / 9.6 ms for its three statements, ``bench/fairness.py`` on
  chdb): the ``Merge`` table's structure is as wide as every environment's, and it visits every source.
* A store from before (``spans`` itself a MergeTree) has it renamed to ``spans_legacy``, one atomic statement,
  kept as one more source so its rows stay readable until retention ages them out. A restart after a crash
  between the rename and the creation of the ``Merge`` table finishes the job (`prepare` runs every start).
"""

from __future__ import annotations

import hashlib
import re
from typing import Iterable

from apiary.store.clickhouse.client import Client, ClickHouseError, quote

MERGED = "spans"
LEGACY = "spans_legacy"
_PREFIX = "spans_e_"
#: The tables ``spans`` reads: every environment's, and the one a store from before left.
SOURCES = r"^spans_(e_[0-9a-f]{12}|legacy)$"
#: The parameter a scoped read binds its environment to.
SCOPE_PARAM = "apiary_scope_env"
#: Where a ``spans`` CTE goes in a statement: after its own ``WITH [RECURSIVE]``, if it has one.
_WITH = re.compile(r"\s*WITH\s+(RECURSIVE\s+)?", re.IGNORECASE)


def table_for(env: str) -> str:
    """The span table of ``env``: the same on every node, from the name alone.

    Two environments whose names share the 48-bit prefix would share a table, still apart by ``_env``, the
    first column of its sort key, which every read filters on."""
    return _PREFIX + hashlib.sha1(env.encode()).hexdigest()[:12]


class SpanTables:
    """Creates and widens the per-environment tables, keeping ``spans`` (the ``Merge`` table) as wide as them all.

    ``core`` is the column list every span table has (`` `name` type`` SQL); ``engine`` the MergeTree clause that
    follows it (partitioning and key), ``settings`` its ``SETTINGS ...`` clause, and ``ttl`` a ``TTL ...`` clause
    or empty (set once the server's retention is known). What this node knows of each
    table's columns is cached, so a commit whose columns are all known issues no DDL.
    """

    def __init__(self, client: Client, core: list[str], engine: str, settings: str) -> None:
        self.client = client
        self.core = core
        self.engine = engine
        self.settings = settings
        self.ttl = ""
        self._columns: dict[str, set[str]] = {}  # table -> its column names, as this node last saw them
        self.legacy = False

    # -- start-up -------------------------------------------------------------------------------

    def prepare(self) -> None:
        """Move a shared ``spans`` MergeTree aside, then make sure ``spans`` is the ``Merge`` table over all sources."""
        engine = self._engine(MERGED)
        if engine is not None and engine != "Merge":
            try:
                self.client.command(f"RENAME TABLE {MERGED} TO {LEGACY}")  # atomic: a crash leaves one name or the other
            except ClickHouseError:
                if self._engine(MERGED) not in (None, "Merge"):  # not another node moving it at the same moment
                    raise
        if self._engine(LEGACY) is not None:
            if not self.client.query_arrow(f"SELECT count() AS n FROM {LEGACY}").column(0)[0].as_py():
                self.client.command(f"DROP TABLE IF EXISTS {LEGACY}")  # nothing to keep readable
            else:
                self.legacy = True
        sources = self._source_columns()
        merged = [c for cols in sources.values() for c in cols]
        self.client.command(f"CREATE TABLE IF NOT EXISTS {MERGED} ({', '.join(self._unique(self.core + merged))}) "
                            f"ENGINE = Merge(currentDatabase(), '{SOURCES}')")
        have = {quote(n) for n in self._describe(MERGED)}
        missing = [c for c in self._unique(merged) if _key(c) not in have]
        if missing:  # a crash between widening a source and widening ``spans``
            self._add(MERGED, missing)
        self._columns = {t: set(self._describe(t)) for t in [*sources, MERGED]}

    def scoped(self, sql: str, env: str | None, database: str) -> str:
        """``sql`` with ``spans`` naming ``env``'s spans alone (bound as `SCOPE_PARAM`); unchanged for None or
        for a table this node has not seen.

        With a table from before still kept, the environment's spans may be in it too: ``spans`` is then the
        ``Merge`` table's rows from those two sources. A table this node has not seen (another node made it) is
        read through the ``Merge`` table, which is as right and only slower."""
        if env is None:
            return sql
        table = table_for(env)
        if self.legacy:
            source = f"SELECT * FROM {quote(database)}.{MERGED} WHERE _table IN ('{table}', '{LEGACY}') AND "
        elif table in self._columns:
            source = f"SELECT * FROM {quote(database)}.{table} WHERE "
        else:
            return sql
        source += f"_env = {{{SCOPE_PARAM}:String}}"  # a table may hold two environments (`table_for`)
        head = _WITH.match(sql)
        if head is None and sql.lstrip().startswith("("):  # ``WITH ... (SELECT ...) UNION ...`` does not parse
            return f"WITH {MERGED} AS ({source}) SELECT * FROM ({sql})"
        if head is None:
            return f"WITH {MERGED} AS ({source}) {sql}"
        return f"WITH {head.group(1) or ''}{MERGED} AS ({source}), {sql[head.end():]}"

    def sources(self) -> list[str]:
        """Every table ``spans`` reads, as the database lists them now (other nodes may have added some)."""
        t = self.client.query_arrow("SELECT name FROM system.tables WHERE database = currentDatabase() "
                                    "AND match(name, {p:String}) ORDER BY name", {"p": SOURCES})
        return t.column(0).to_pylist()

    # -- writing --------------------------------------------------------------------------------

    def ensure(self, env: str, typed: dict[str, str]) -> str:
        """``env``'s table, created or widened to hold the ``typed`` columns (physical name -> SQL type).

        ``spans`` is widened first: a column a query may name must be there before any source holds a value in it.
        """
        table = table_for(env)
        known = self._columns.get(table)
        if known is not None and all(p in known for p in typed):
            return table
        merged = self._columns[MERGED]
        if any(p not in merged for p in typed):
            self._add(MERGED, [f"{quote(p)} {typ}" for p, typ in typed.items() if p not in merged])
            merged.update(typed)
        if known is None:
            typed_sql = [f"{quote(p)} {typ}" for p, typ in typed.items()]
            self.client.command(f"CREATE TABLE IF NOT EXISTS {table} ({', '.join(self.core + typed_sql)}) "
                                f"{self.engine} {self.ttl} {self.settings}")
            known = self._columns[table] = set(self._describe(table))  # another node may have made it wider
        wanted = [f"{quote(p)} {typ}" for p, typ in typed.items() if p not in known]
        if wanted:
            self._add(table, wanted)
            known.update(typed)
        return table

    def _add(self, table: str, columns: Iterable[str]) -> None:
        self.client.command(f"ALTER TABLE {table} " + ", ".join(f"ADD COLUMN IF NOT EXISTS {c}" for c in columns))

    # -- reading the database's own catalogue ---------------------------------------------------

    def _engine(self, table: str) -> str | None:
        t = self.client.query_arrow("SELECT engine FROM system.tables WHERE database = currentDatabase() "
                                    "AND name = {t:String}", {"t": table})
        return t.column(0)[0].as_py() if t.num_rows else None

    def _describe(self, table: str) -> list[str]:
        t = self.client.query_arrow("SELECT name FROM system.columns WHERE database = currentDatabase() "
                                    "AND table = {t:String} ORDER BY position", {"t": table})
        return t.column(0).to_pylist() if t.num_rows else []

    def _source_columns(self) -> dict[str, list[str]]:
        """Each source table's columns as ``name type`` SQL."""
        t = self.client.query_arrow("SELECT table, name, type FROM system.columns WHERE database = currentDatabase() "
                                    "AND match(table, {p:String}) ORDER BY table, position", {"p": SOURCES})
        out: dict[str, list[str]] = {}
        for table, name, typ in zip(*(t.column(i).to_pylist() for i in range(3))) if t.num_rows else ():
            out.setdefault(table, []).append(f"{quote(name)} {typ}")
        return out

    @staticmethod
    def _unique(columns: list[str]) -> list[str]:
        seen: dict[str, str] = {}
        for c in columns:
            seen.setdefault(_key(c), c)
        return list(seen.values())


def _key(column: str) -> str:
    """The quoted name of a `` `name` type`` column definition."""
    return column[:column.index("` ") + 1]
