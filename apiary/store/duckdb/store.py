"""The embedded span store: one DuckDB file under the data directory.

Physical layout, chosen by measurement (``bench/schema.py`` prints the
figures; the README has the latest run):

* One wide table per environment, ``spans`` (a view over that environment's
  partitions of ~8 M rows each: ``partitions.py``). Core columns keep their
  Honeycomb names; every attribute key gets its own typed column the first
  time it arrives (``a1``, ``a2`` ... -- DuckDB identifiers are
  case-insensitive, so the attribute name itself cannot be the column name). A filter on a typed
  column reads one compressed column; the alternatives parse or look up
  every row. ``bench/schema.py --rows 2000000`` measured here: string
  equality 3.8 ms typed vs 276 ms in a JSON column (72x) vs 106 ms in a
  MAP (28x); numeric range 2.6 vs 353 vs 117 ms; GROUP BY an attribute
  with P90 46 vs 326 vs 145 ms; and the typed layout also loads fastest
  (2.0 s vs 3.9 s vs 11.3 s). Adding a column to a 10 M row table costs
  ~0.2 s once per new key.
* A key seen with a second type (``http.status_code`` as int here, string
  there) gets a second column; the catalogue records (name, type) pairs.
* An environment's tables hold at most ``max_env_columns`` attribute
  columns (and no more than ``max_columns``; ``env_columns`` records which);
  past it its new keys go into the ``_attrs`` JSON column (the long tail
  stays queryable, only slower), so a client that invents a key per request
  cannot grow its tables without bound. Each environment has tables of its
  own, so one environment's columns neither use up nor widen another's; a
  column's physical name (``a7``) is the same in every environment's tables.
* ``trace_index`` maps a trace id to its partition and time range (one row
  per load and trace, ART-indexed). Fetching a trace reads the index, then,
  in that partition alone, only the row groups whose timestamp zone maps
  overlap that range, so its cost does not grow with the data.
* ``trace_summary`` (``trace_summary.py``) keeps one row per trace (start,
  end, counts, root, services), upserted in each load's transaction, so a
  list of traces reads a row per trace instead of grouping their spans.

Writes: a request's spans are committed to the intake log (``intake_log.py``;
group commit, one fsync for all that queued) and answered; loader workers
then load the log into this file in bulk (``bulk_loader.py``), four whole
row groups at a time under load (``LOAD_ROWS``). Every read first has the
loader take in what its environment had acknowledged before it, so a read
sees every acknowledged span of its environment, and never waits for a
costly batch of another (loads are out of log order; ``bulk_loader.py``).
Reads use their own cursors.

The ``LOAD_WORKERS`` workers load different environments at once, each in a
transaction on a cursor of its own: DuckDB lets transactions that write
different rows commit side by side. What they share is written so that two
loads never write the same row: spans, ``trace_summary`` rows, catalogue rows
and partition counts belong to one environment; the record of what a load
holds is appended (``intake_state`` keeps one row per load, the highest is
the watermark, and ``_compact`` trims the rows below it now and then, in a
transaction of its own); columns and partitions are added in short
transactions of their own, one at a time (``Partitions.schema_lock``), before
the load that needs them.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from apiary.model.span import (
    CORE_FIELDS,
    CORE_NAMES,
    DATASET_COLUMN,
    INGEST_COLUMN,
    INTERNAL_NAMES,
    OVERFLOW_COLUMN,
    SpanBatch,
    column_type,
)
from apiary.model import ipc
from apiary.store.base import ColumnInfo, DatasetInfo, EnvironmentOverloaded, StoreOverloaded, StoreUnavailable, wide_cost
from apiary.store import read_scope
from apiary.store.bulk_loader import BulkLoader, Loaded
from apiary.store.catalogue_cap import MAX_DATASET_COLUMNS, CatalogueCap
from apiary.store.duckdb import trace_summary
from apiary.store.duckdb.env_split import split_shared
from apiary.store.duckdb.partitions import Partition, Partitions
from apiary.store.duckdb.transactions import rollback
from apiary.store.group_commit import GroupCommitter
from apiary.store.intake_log import IntakeLog
from apiary.store.load_shares import COST_TRIGGER, COSTLY_RETRY_AFTER_S, ENV_PENDING_COST, WIDE_COLUMNS
from apiary.store.read_freshness import note_unloaded
from apiary.store.shared_lock import SharedLock

log = logging.getLogger(__name__)

ENV_COLUMN = "_env"
#: WAL size that triggers a checkpoint (DuckDB's default is 16 MB; ~40,000 spans here), and rows per
#: row group (DuckDB's default is 122,880). A commit waits for a running checkpoint, and a checkpoint
#: that finds the last row group partly filled rewrites it, at a cost that grew with the rows already
#: in it: with the default row groups, checkpoints of 163,840 spans took 0.3, 0.8 and 1.3 s in turn.
#: ``python bench/commit.py`` here (groups of 3,584 spans, one writer thread), commit p99 / max and
#: spans/s: 122,880 rows + 64 MB 825 / 1,491 ms, 62,795; 32,768 + 64 MB 293 / 502 ms, 77,967;
#: 16,384 + 16 MB 249 / 301 ms, 80,290; 8,192 + 16 MB 132 / 180 ms, 82,957. Scans over 10 M spans
#: took the same time with 8,192 and 32,768 (P90 per 90 s 359 vs 356 ms, JSON filter 536 vs 532 ms;
#: a one-hour range 15 vs 11 ms); the file is larger (64 vs 43 bytes per span: compression works
#: per row group). Since the intake log took the commit off the request path, only the loader waits
#: for a checkpoint. Loads of whole 32,768-row groups were then measured too: 5.2 against 5.8 us per
#: span and 45 against 72 bytes per span (``bench/commit.py``), server CPU 9.7 against ~12 us per
#: span under ingest load, but in an A/B on 10 M spans the scans were 10-25 % slower (P90 per 90 s
#: 540 vs 471 ms, JSON filter 551 vs 437 ms, a trace by id 9.1 vs 6.2 ms), so 8,192 stays.
CHECKPOINT_THRESHOLD = "16MB"
ROW_GROUP_SIZE = 8_192
CATALOG = "apiary"
#: 2: ``spans`` is a view over partition tables, and ``trace_index`` names each trace's partition.
#: 3: each environment has partition tables of its own (``partitions.py``).
#: 4: every span table has ``_ingest_timestamp``, when the store accepted the span (NULL for older spans).
SCHEMA_VERSION = 4
_SQL_TYPES = {"string": "VARCHAR", "integer": "BIGINT", "float": "DOUBLE", "boolean": "BOOLEAN", "timestamp": "TIMESTAMP"}
#: How often a known column's last-seen time is written back (in memory it is always current).
_LAST_SEEN_FLUSH_S = 60.0
#: A load waits for four row groups' worth of rows (DuckDB writes whole row groups straight to the
#: file, not to its WAL and again at the checkpoint), or for its oldest batch to have waited this
#: long, or for a reader. Four, not one: a load also pays ~17 ms whatever its size (8,192 rows 35 ms,
#: 16,384 55 ms, 24,576 72 ms, in DuckDB alone). ``bench/commit.py``, load CPU per span: 39.4 us for
#: one 512-span request per load, 6.6 for 8,192 spans, 5.0 for 32,768. A load's last row group is
#: usually partial, so fewer loads also leave fewer small row groups (57 against 72 bytes per span).
LOAD_DELAY_S = 1.0
LOAD_ROWS = 4 * ROW_GROUP_SIZE
#: A wide batch's cost (its columns past ``WIDE_COLUMNS``) and each environment's share of it:
#: ``apiary.store.load_shares``, shared with the ClickHouse store. A costly batch is loaded at once rather
#: than after ``LOAD_DELAY_S`` -- alone, environments taking turns, and only when no reader waits for
#: another environment: a read waits for at most the one costly load already running.
LOAD_COST_TRIGGER = COST_TRIGGER
#: Layouts are kept for this many schema fields in all, not for a number of schemas: a layout and its
#: key grow with the schema's fields. When the key was the schema itself, ~450 bytes a field: 1,000
#: schemas of spans with 1,000 new keys each held ~450 MB (500 such spans loaded into a store: RSS
#: +283 MB, and +65 MB with no layout kept).
LAYOUT_CACHE_FIELDS = 100_000
#: Loader workers: one loads costly batches while the other loads everyone else's, so a read never
#: waits for another environment's costly load (``bench/fairness.py``: with one worker, a calm
#: environment's read waited for the flood's load already running, 0.2-0.5 s on a loaded machine).
#: The costly one runs at the decode workers' niceness, for the same reason.
LOAD_WORKERS = 2
COSTLY_LOAD_NICENESS = 10
#: The costly worker rests this many times its last load's length before the next: at most a quarter of
#: the time, about what the flood's loads took when they shared the one loader (``BulkLoader._resting``).
COSTLY_LOAD_REST = 3.0
#: Loads between two trims of ``intake_state`` and ``intake_loaded_ahead`` (each load appends to both).
COMPACT_EVERY_LOADS = 256


def quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _core_sql_type(f: pa.Field) -> str:
    if pa.types.is_timestamp(f.type):
        return "TIMESTAMP"
    return _SQL_TYPES[column_type(f.type)]


class DuckDBStore:
    dialect = "duckdb"
    #: How long a read waits for acknowledged rows to be loaded before it answers 503 instead.
    read_wait_s = 30.0
    #: ``query`` opens a cursor of its own each time: statements may run from several threads at once.
    parallel_reads = True

    def __init__(self, path: str | Path, *, max_columns: int = 1000, max_pending_rows: int = 400_000,
                 linger_s: float = 0.0, max_env_columns: int | None = None,
                 max_dataset_columns: int = MAX_DATASET_COLUMNS) -> None:
        # No linger by default: the intake log's append is cheap whatever its size, and at a fixed
        # 30,000 spans/s waiting 20 ms for more requests only added that much to every answer.
        self.path = str(path)
        self.max_columns = max_columns
        # No table holds every environment's columns, so ``max_columns`` bounds each environment's.
        self.max_env_columns = max_columns if max_env_columns is None else min(max_columns, max_env_columns)
        self._catalogue_cap = CatalogueCap(max_dataset_columns)
        self._max_pending = max_pending_rows
        # The file is attached, not opened directly, because only ATTACH takes a row group size.
        self._root = duckdb.connect(":memory:")
        try:
            self._root.execute(f"ATTACH ? AS {CATALOG} (ROW_GROUP_SIZE {ROW_GROUP_SIZE})", [self.path])
        except duckdb.IOException as exc:
            self._root.close()
            raise StoreUnavailable(f"cannot open {self.path}: {exc}") from None
        self._db = self.cursor()
        self._db.execute(f"SET checkpoint_threshold = '{CHECKPOINT_THRESHOLD}'")
        self._lock = threading.Lock()  # guards the in-memory catalogue
        self._write_lock = SharedLock()  # the loader workers' transactions (shared) against retention's (alone)
        #: Each loader worker's own cursor (a DuckDB connection serves one thread at a time).
        self._cursors = threading.local()
        self._opened: list[duckdb.DuckDBPyConnection] = []
        self._compact_lock = threading.Lock()
        self._since_compact = 0
        self._physical: dict[tuple[str, str], str] = {}
        self._layouts: dict[tuple[str, bytes], _Layout] = {}  # by environment and `_schema_key`
        self._layout_fields = 0  # the fields of the schemas ``_layouts`` holds
        self._typed_columns = 0
        # Catalogue rows a layout adds, written in one statement each: one INSERT per key took ~3 ms.
        self._new_columns: list[list[str]] = []
        self._new_grants: list[list[str]] = []
        #: env -> the (name, type) keys that have a typed column for that environment
        self._env_columns: dict[str, set[tuple[str, str]]] = defaultdict(set)
        # (env, dataset) -> (name, type) -> [first_seen, last_seen, last_flushed]
        self._catalogue: dict[tuple[str, str], dict[tuple[str, str], list[datetime]]] = defaultdict(dict)
        self._datasets: dict[tuple[str, str], list[datetime]] = {}
        self._create_schema()
        trace_summary.create(self._db, self._partitions.tables())
        self._load_catalogue()
        split_shared(self._db, self._partitions, quote, self._grant_found)
        self._intake = IntakeLog(self.path + ".intake")
        self._replay()
        self._loader: BulkLoader[tuple[str, SpanBatch]] = BulkLoader(
            self._load, loaded_seq=self._intake.last_seq, rows=LOAD_ROWS, delay_s=LOAD_DELAY_S,
            max_group_rows=LOAD_ROWS, healthy=self._healthy, set_aside=self._set_aside, cost_trigger=LOAD_COST_TRIGGER,
            workers=LOAD_WORKERS, costly_niceness=COSTLY_LOAD_NICENESS,
            costly_rest=COSTLY_LOAD_REST)
        self._writer: GroupCommitter[tuple[str, SpanBatch]] = GroupCommitter(
            self._log_commit, max_pending_rows=max_pending_rows, linger_s=linger_s)
        self._closed = False

    # -- schema ---------------------------------------------------------------------------------

    def _create_schema(self) -> None:
        cols = [f"{quote(ENV_COLUMN)} VARCHAR", f"{quote(DATASET_COLUMN)} VARCHAR"]
        cols += [f"{quote(f.name)} {_core_sql_type(f)}" for f in CORE_FIELDS]
        cols.append(f"{quote(OVERFLOW_COLUMN)} VARCHAR")
        cols.append(f"{quote(INGEST_COLUMN)} TIMESTAMP")
        db = self._db
        self._partitions = Partitions(db, ", ".join(cols), self._granted_columns_sql)
        # Tables from before schema version 4 get it; their spans keep NULL: their arrival was never recorded.
        self._partitions.add_core_column(INGEST_COLUMN, "TIMESTAMP")
        db.execute("""CREATE TABLE IF NOT EXISTS trace_index (_env VARCHAR, trace_id VARCHAR, ts_min TIMESTAMP,
                      ts_max TIMESTAMP, part INTEGER)""")
        db.execute("ALTER TABLE trace_index ADD COLUMN IF NOT EXISTS part INTEGER")  # NULL: partition 1
        db.execute("CREATE INDEX IF NOT EXISTS trace_index_id ON trace_index (trace_id)")
        db.execute("CREATE TABLE IF NOT EXISTS attribute_columns (name VARCHAR, type VARCHAR, physical VARCHAR, PRIMARY KEY (name, type))")
        db.execute("""CREATE TABLE IF NOT EXISTS dataset_columns (_env VARCHAR, _dataset VARCHAR, name VARCHAR, type VARCHAR,
                      first_seen TIMESTAMP, last_seen TIMESTAMP, PRIMARY KEY (_env, _dataset, name, type))""")
        if not db.execute("SELECT 1 FROM duckdb_tables() WHERE database_name = ? AND table_name = 'env_columns'",
                          [CATALOG]).fetchall():
            # Before per-environment caps every environment used every typed column it had written.
            db.execute("CREATE TABLE env_columns (_env VARCHAR, name VARCHAR, type VARCHAR, PRIMARY KEY (_env, name, type))")
            db.execute(f"""INSERT INTO env_columns SELECT DISTINCT d._env, d.name, d.type FROM dataset_columns d
                           JOIN attribute_columns a ON a.name = d.name AND a.type = d.type
                           WHERE a.physical <> '{OVERFLOW_COLUMN}'""")
        db.execute("""CREATE TABLE IF NOT EXISTS datasets (_env VARCHAR, name VARCHAR, created_at TIMESTAMP,
                      last_written TIMESTAMP, PRIMARY KEY (_env, name))""")
        db.execute("CREATE TABLE IF NOT EXISTS intake_state (loaded_seq BIGINT)")
        if not db.execute("SELECT 1 FROM intake_state").fetchall():
            db.execute("INSERT INTO intake_state VALUES (0)")
        # Intake log entries loaded out of order, past ``loaded_seq`` (``bulk_loader.Loaded``).
        db.execute("CREATE TABLE IF NOT EXISTS intake_loaded_ahead (seq BIGINT)")
        db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER)")
        if not db.execute("SELECT 1 FROM schema_version").fetchall():
            db.execute("INSERT INTO schema_version VALUES (?)", [SCHEMA_VERSION])
        else:
            db.execute("UPDATE schema_version SET version = ? WHERE version < ?", [SCHEMA_VERSION, SCHEMA_VERSION])

    def _load_catalogue(self) -> None:
        for name, typ, physical in self._db.execute("SELECT name, type, physical FROM attribute_columns").fetchall():
            self._physical[(name, typ)] = physical
            self._typed_columns += physical != OVERFLOW_COLUMN
        for env, name, typ in self._db.execute("SELECT _env, name, type FROM env_columns").fetchall():
            self._env_columns[env].add((name, typ))
        for env, ds, name, typ, first, last in self._db.execute(
                "SELECT _env, _dataset, name, type, first_seen, last_seen FROM dataset_columns").fetchall():
            self._catalogue[(env, ds)][(name, typ)] = [_utc(first), _utc(last), _utc(last)]
        for env, name, created, last in self._db.execute("SELECT _env, name, created_at, last_written FROM datasets").fetchall():
            self._datasets[(env, name)] = [_utc(created), _utc(last), _utc(last)]

    def _granted_columns_sql(self, env: str) -> list[str]:
        """The attribute columns of ``env``'s tables, declared: those granted to it."""
        with self._lock:
            physical = [(self._physical[k], k[1]) for k in self._env_columns.get(env, ()) if k in self._physical]
        return [f"{quote(p)} {_SQL_TYPES[typ]}" for p, typ in physical if p != OVERFLOW_COLUMN]

    def _grant_found(self, env: str, columns: list[str]) -> None:
        """Grant ``env`` the typed columns it has values in (a shared partition being split), in the caller's transaction."""
        found = set(columns)
        with self._lock:
            keys = {p: k for k, p in self._physical.items() if p in found}
            new = [k for k in keys.values() if k not in self._env_columns[env]]
            self._env_columns[env].update(new)
        if new:
            _bulk(self._db, "INSERT OR IGNORE INTO env_columns SELECT * FROM _rows", ["_env", "name", "type"],
                  [[env, name, typ] for name, typ in new])

    def _physical_for(self, env: str, name: str, typ: str) -> str | None:
        """The column for (name, type) in ``env``, adding it if both caps allow; None means overflow.

        A key past a cap costs nothing to remember: it is simply not granted, so it overflows each
        time. Recording every overflowing key used to cost a statement per key, and counting the
        columns walked the whole map for each: a span of 100,000 attributes held the loader (and
        every environment's reads behind it) for minutes.
        """
        key = (name, typ)
        granted = self._env_columns.get(env)
        if granted is not None and key in granted:
            return self._physical[key]
        if granted is not None and len(granted) >= self.max_env_columns:
            return None
        physical = self._physical.get(key)
        if physical == OVERFLOW_COLUMN:  # overflowed for everyone before per-environment caps
            return None
        if physical is None:
            physical = f"a{self._typed_columns + 1}"
            self._new_columns.append([name, typ, physical])
            self._typed_columns += 1
            with self._lock:
                self._physical[key] = physical
        self._new_grants.append([env, name, typ])
        with self._lock:
            self._env_columns[env].add(key)
        return physical

    # -- writing --------------------------------------------------------------------------------

    async def append(self, env: str, batch: SpanBatch) -> None:
        if self._closed:
            raise StoreUnavailable("store is closed")
        if batch.num_rows == 0:
            return
        batch.arrive()  # before the intake log, which keeps the time for a replay
        if self._loader.pending_rows + batch.num_rows > self._max_pending:
            raise StoreOverloaded(retry_after=1)
        cost = _load_cost(batch)
        if cost and not self._loader.reserve(env, cost, ENV_PENDING_COST):  # this environment's share of the loader
            raise EnvironmentOverloaded(env, retry_after=COSTLY_RETRY_AFTER_S)
        try:
            await self._writer.submit((env, batch), batch.num_rows)
        except BaseException:
            if cost:
                self._loader.unreserve(env, cost)
            raise

    @property
    def pending_rows(self) -> int:
        return self._writer.pending_rows + self._loader.pending_rows

    def writer_stats(self) -> dict[str, int]:
        w, ld = self._writer, self._loader
        return {"pending_rows": self.pending_rows, "commits": w.commits, "committed_rows": w.committed_rows,
                "loads": ld.loads, "loaded_rows": ld.loaded_rows, "unloaded_rows": ld.pending_rows,
                "loads_failing": int(ld.failing)}

    def _log_commit(self, group: list[tuple[str, SpanBatch]]) -> None:
        """The group commit: one append and fsync of the intake log, then the batches queue for loading.

        An append that fails (ENOSPC) is cut back and not acknowledged; the next starts a new segment,
        so the write path recovers by itself once space is freed (``IntakeLog.append``).
        """
        first = self._intake.append([(env, batch.arrived_us, batch.ipc_stream()) for env, batch in group])
        for n, item in enumerate(group):
            self._loader.add(first + n, item, item[1].num_rows, key=item[0], cost=_load_cost(item[1]))

    def _replay(self) -> None:
        """Load what the intake log holds beyond DuckDB's watermark and not loaded ahead of it: spans
        acknowledged before a crash, each exactly once."""
        loaded = self._db.execute("SELECT max(loaded_seq) FROM intake_state").fetchall()[0][0] or 0
        ahead = {seq for (seq,) in self._db.execute("SELECT seq FROM intake_loaded_ahead WHERE seq > ?", [loaded]).fetchall()}
        group: list[tuple[str, SpanBatch]] = []
        rows, upto, replayed = 0, loaded, 0
        for entry in self._intake.replay(loaded):
            if entry.seq in ahead:
                continue
            group.append((entry.env, SpanBatch(entry.table, arrived_us=entry.arrived_us)))
            rows += entry.table.num_rows
            upto = entry.seq
            replayed += 1
            if rows >= LOAD_ROWS:
                self._load(group, Loaded(upto))
                group, rows = [], 0
        if group:
            self._load(group, Loaded(upto))
        if replayed:
            log.info("loaded %d intake log entries up to %d (acknowledged before the last stop)", replayed, upto)

    def _healthy(self) -> bool:
        """Does the database still take a transaction? (Tells a poisoned batch from a broken disk.)

        It appends the watermark again rather than updating its rows: an update would conflict with a
        trim (``_compact``), or another worker's check, running at the same time.
        """
        db = self._load_cursor()
        try:
            db.execute("BEGIN TRANSACTION")
            db.execute("INSERT INTO intake_state SELECT max(loaded_seq) FROM intake_state")
            db.execute("COMMIT")
            return True
        except duckdb.Error:
            try:
                db.execute("ROLLBACK")
            except duckdb.Error:
                pass
            return False

    def _load_cursor(self) -> duckdb.DuckDBPyConnection:
        """The calling thread's own cursor for loads (each loader worker has one)."""
        cur = getattr(self._cursors, "cur", None)
        if cur is None:
            cur = self._cursors.cur = self.cursor()
            with self._lock:
                self._opened.append(cur)
        return cur

    def _set_aside(self, seq: int, item: tuple[str, SpanBatch], exc: BaseException) -> None:
        """Keep a batch DuckDB refuses in a file of its own (the loader then records it as loaded)."""
        aside = Path(self._intake.dir) / "set-aside"
        aside.mkdir(exist_ok=True)
        env, batch = item
        table = batch.table.replace_schema_metadata({"environment": env, "error": str(exc)})
        (aside / f"{seq:016d}.arrows").write_bytes(ipc.to_ipc(table))

    def flush(self, env: str | None = None) -> None:
        """Return once every acknowledged span of ``env`` (of every environment for None) is in DuckDB;
        every read starts with it, for its own environment only: a read never waits for a costly batch
        of another environment's. A compiled query's environment is the request's (``read_scope``).

        A read never answers without saying it lacks acknowledged rows. When DuckDB refuses loads
        (disk full), it answers at once with what is loaded and notes how many acknowledged rows it
        misses (``read_freshness``: the answer is marked as behind). When loads are only slow, it
        waits ``read_wait_s`` and then fails with 503 and Retry-After.
        """
        if self._loader.flush(self.read_wait_s, env):
            return
        if self._loader.failing:
            note_unloaded(self._loader.pending_rows_of(env))
            return
        raise StoreUnavailable(f"{self._loader.pending_rows_of(env)} acknowledged spans are not loaded yet, so this "
                               "read would be incomplete; retry shortly", retry_after=5)

    def _layout(self, env: str, schema: pa.Schema) -> "_Layout":
        """How a batch of this schema maps onto the spans table; worked out once per schema.

        Requests from one service share a schema, and a column's physical name never changes once
        given, so the loader looks each schema up instead of walking its columns for every batch.
        With ``_runs``, renaming and the catalogue's null counts fell from ~0.9 to ~0.2 us per span
        of the loader's CPU, all of it holding the GIL the event loop needs.
        """
        key = (env, _schema_key(schema))
        layout = self._layouts.get(key)
        if layout is not None:
            return layout
        with self._partitions.schema_lock:  # columns are added one layout at a time
            return self._new_layout(key, schema)

    def _new_layout(self, key: tuple[str, bytes], schema: pa.Schema) -> "_Layout":
        layout = self._layouts.get(key)
        if layout is not None:
            return layout
        env = key[0]
        names, overflow, timestamps, present = [ENV_COLUMN], [], [], []
        for i, f in enumerate(schema):
            typ = column_type(f.type)
            if f.name not in INTERNAL_NAMES:
                present.append((i, (f.name, typ)))
            if f.name in CORE_NAMES or f.name in INTERNAL_NAMES:
                if pa.types.is_timestamp(f.type):
                    timestamps.append(i)
                names.append(f.name)
                continue
            physical = self._physical_for(env, f.name, typ)
            if physical is None:
                overflow.append(i)
            else:
                names.append(physical)
        if self._new_columns or self._new_grants:
            self._add_columns()
        layout = _Layout(names, overflow, timestamps, present, schema.get_field_index(OVERFLOW_COLUMN))
        self._layout_fields += len(schema)
        if self._layout_fields > LAYOUT_CACHE_FIELDS:
            self._layouts.clear()
            self._layout_fields = len(schema)
        self._layouts[key] = layout
        return layout

    def _add_columns(self) -> None:
        """The columns and grants a layout added, in one transaction: one commit per ALTER cost ~2.5 ms."""
        columns, grants = self._new_columns, self._new_grants
        self._new_columns, self._new_grants = [], []
        db = self._load_cursor()
        db.execute("BEGIN TRANSACTION")
        try:
            with self._lock:
                physical = dict(self._physical)
            for env, name, typ in grants:
                self._partitions.add_column(env, f"{quote(physical[(name, typ)])} {_SQL_TYPES[typ]}", db)
            if columns:
                _bulk(db, "INSERT OR IGNORE INTO attribute_columns SELECT * FROM _rows", ["name", "type", "physical"], columns)
            if grants:
                _bulk(db, "INSERT OR IGNORE INTO env_columns SELECT * FROM _rows", ["_env", "name", "type"], grants)
            db.execute("COMMIT")
        except BaseException:
            rollback(db)
            with self._lock:  # forget what was not written, so the next load tries again
                for name, typ, _ in columns:
                    self._physical.pop((name, typ), None)
                for env, name, typ in grants:
                    self._env_columns[env].discard((name, typ))
            self._typed_columns -= len(columns)
            self._layouts.clear()
            self._layout_fields = 0
            raise

    @staticmethod
    def _physical_table(env: str, table: pa.Table, layout: "_Layout") -> pa.Table:
        """Rename attribute columns to their physical columns; fold overflowing keys into ``_attrs``."""
        arrays: list[pa.Array | pa.ChunkedArray] = table.columns
        for i in layout.timestamps:
            arrays[i] = arrays[i].cast(pa.timestamp("us"))
        if layout.overflow:
            extra = [(table.schema.field(i).name, arrays[i]) for i in layout.overflow]
            arrays[layout.attrs] = pa.chunked_array([pa.array(_merge_overflow(arrays[layout.attrs], extra), pa.string())])
            drop = set(layout.overflow)
            arrays = [a for i, a in enumerate(arrays) if i not in drop]
        arrays.insert(0, pa.chunked_array([pa.repeat(env, table.num_rows)], pa.string()))
        return pa.Table.from_arrays(arrays, names=layout.names)

    def _load(self, group: list[tuple[str, SpanBatch]], loaded: Loaded) -> None:
        """One transaction: the group's spans, their traces, the catalogue, and which intake entries it holds."""
        with self._write_lock.shared():
            self._load_locked(group, loaded)
        self._intake.release(loaded.watermark)
        with self._compact_lock:
            self._since_compact += 1
            due = self._since_compact >= COMPACT_EVERY_LOADS
            if due:
                self._since_compact = 0
        if due:
            self._compact()

    def _record_loaded(self, db: duckdb.DuckDBPyConnection, loaded: Loaded) -> None:
        """Inside a load's transaction: the watermark, and the entries loaded ahead of it, appended (another
        worker's load may be writing its own at the same time: an update of one row would conflict)."""
        db.execute("INSERT INTO intake_state VALUES (?)", [loaded.watermark])
        if loaded.ahead:
            _bulk(db, "INSERT INTO intake_loaded_ahead SELECT * FROM _rows", ["seq"], [[seq] for seq in loaded.ahead])

    def _compact(self) -> None:
        """Trim the watermark rows below the highest and the entries loaded ahead of it (start-up skips them
        anyway), in a transaction of its own; only one runs at a time, so no two delete the same rows."""
        db = self._load_cursor()
        with self._compact_lock:
            try:
                db.execute("BEGIN TRANSACTION")
                (mark,) = db.execute("SELECT max(loaded_seq) FROM intake_state").fetchall()[0]
                db.execute("DELETE FROM intake_state WHERE loaded_seq < ?", [mark])
                db.execute("DELETE FROM intake_loaded_ahead WHERE seq <= ?", [mark])
                db.execute("COMMIT")
            except duckdb.Error:  # the rows stay, to be trimmed next time; they cost start-up nothing wrong
                rollback(db)
                log.warning("could not trim the loader's records", exc_info=True)

    def _load_locked(self, group: list[tuple[str, SpanBatch]], loaded: Loaded) -> None:
        db = self._load_cursor()
        if not group:
            db.execute("BEGIN TRANSACTION")
            try:
                self._record_loaded(db, loaded)
                db.execute("COMMIT")
            except BaseException:
                rollback(db)
                raise
            return
        runs = [(env, table, self._layout(env, table.schema)) for env, table in _runs(group)]
        per_env: dict[str, list[pa.Table]] = defaultdict(list)
        for env, table, layout in runs:
            per_env[env].append(self._physical_table(env, table, layout))
        presence = self._presence(runs)
        spans = {env: pa.concat_tables(tables, promote_options="default") if len(tables) > 1 else tables[0]
                 for env, tables in per_env.items()}
        parts = {env: self._partitions.ready(db, env, table.num_rows) for env, table in spans.items()}
        db.execute("BEGIN TRANSACTION")
        try:
            for env, table in spans.items():
                self._insert(db, env, table, parts[env])
            self._record_catalogue(db, presence)
            self._record_loaded(db, loaded)
            db.execute("COMMIT")
        except BaseException:
            rollback(db)
            self._partitions.reload(set(spans), db)
            raise

    def _insert(self, db: duckdb.DuckDBPyConnection, env: str, spans: pa.Table, part: Partition) -> None:
        """Inside a load's transaction: ``env``'s spans into its own partition, their traces into the index and the summary."""
        # DuckDB reads a registered table through the Arrow C stream, chunk by chunk: one contiguous
        # chunk cut the INSERT's CPU per span by ~40% (measured on 8 requests of 512 spans).
        spans = spans.combine_chunks()
        times = pc.min_max(spans.column("timestamp")).as_py()
        db.register("_incoming", spans)
        db.register("_traces", _trace_ranges(spans))
        try:
            db.execute(f"INSERT INTO {part.table} BY NAME SELECT * FROM _incoming")
            db.execute("INSERT INTO trace_index BY NAME SELECT *, ?::INTEGER AS part FROM _traces", [part.part])
            trace_summary.add(db, spans)
            self._partitions.loaded(part, spans.num_rows, times["min"], times["max"], db)
        finally:
            db.unregister("_incoming")
            db.unregister("_traces")

    @staticmethod
    def _presence(runs: list[tuple[str, pa.Table, "_Layout"]]) -> dict[tuple[str, str], set[tuple[str, str]]]:
        """Which (name, type) columns each (env, dataset) received in this group.

        Worked out from Arrow null counts (free once an array is built) rather than a query: a column
        with no nulls is in every dataset of its run, and only a column with some is split by dataset.
        """
        present: dict[tuple[str, str], set[tuple[str, str]]] = defaultdict(set)
        for env, table, layout in runs:
            datasets = table.column(DATASET_COLUMN)
            every = [present[(env, ds)] for ds in pc.unique(datasets).to_pylist() if ds is not None]
            arrays, rows = table.columns, table.num_rows
            for i, column in layout.present:
                nulls = arrays[i].null_count
                if nulls == rows:
                    continue
                if nulls == 0 and datasets.null_count == 0:  # in every dataset the run holds
                    for cols in every:
                        cols.add(column)
                    continue
                for ds in pc.unique(pc.filter(datasets, pc.is_valid(arrays[i]))).to_pylist():
                    if ds is not None:
                        present[(env, ds)].add(column)
        return present

    def _record_catalogue(self, db: duckdb.DuckDBPyConnection, present: dict[tuple[str, str], set[tuple[str, str]]]) -> None:
        now = datetime.now(timezone.utc)
        naive = now.replace(tzinfo=None)
        new_cols: list[list[Any]] = []
        touched_cols: list[list[Any]] = []
        new_ds: list[list[Any]] = []
        touched_ds: list[list[Any]] = []
        with self._lock:
            for (env, ds), cols in present.items():
                ds_entry = self._datasets.get((env, ds))
                if ds_entry is None:
                    self._datasets[(env, ds)] = [now, now, now]
                    new_ds.append([env, ds, naive, naive])
                else:
                    ds_entry[1] = now
                    if (now - ds_entry[2]).total_seconds() > _LAST_SEEN_FLUSH_S:
                        ds_entry[2] = now
                        touched_ds.append([naive, env, ds])
                known = self._catalogue[(env, ds)]
                for col in self._catalogue_cap.in_order(cols, len(known)):
                    entry = known.get(col)
                    if entry is None:
                        if not self._catalogue_cap.admits(env, ds, col[0], len(known)):
                            continue
                        known[col] = [now, now, now]
                        new_cols.append([env, ds, col[0], col[1], naive, naive])
                    else:
                        entry[1] = now
                        if (now - entry[2]).total_seconds() > _LAST_SEEN_FLUSH_S:
                            entry[2] = now
                            touched_cols.append([naive, env, ds, col[0], col[1]])
        # One statement per kind of change: DuckDB's executemany runs a statement per row.
        if new_ds:
            _bulk(db, "INSERT OR IGNORE INTO datasets SELECT * FROM _rows", ["_env", "name", "created_at", "last_written"], new_ds)
        if touched_ds:
            _bulk(db, "UPDATE datasets SET last_written = _rows.t FROM _rows WHERE datasets._env = _rows.e AND datasets.name = _rows.d",
                  ["t", "e", "d"], touched_ds)
        if new_cols:
            _bulk(db, "INSERT OR IGNORE INTO dataset_columns SELECT * FROM _rows",
                  ["_env", "_dataset", "name", "type", "first_seen", "last_seen"], new_cols)
        if touched_cols:
            _bulk(db, "UPDATE dataset_columns SET last_seen = _rows.t FROM _rows WHERE dataset_columns._env = _rows.e "
                      "AND dataset_columns._dataset = _rows.d AND dataset_columns.name = _rows.n AND dataset_columns.type = _rows.ty",
                  ["t", "e", "d", "n", "ty"], touched_cols)

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A connection of its own to the same database, for another writer thread or a reader."""
        cur = self._root.cursor()
        cur.execute(f"USE {CATALOG}")
        return cur

    # -- reading --------------------------------------------------------------------------------

    def datasets(self, env: str) -> list[DatasetInfo]:
        self.flush(env)
        with self._lock:
            items = [(ds, v[0], v[1]) for (e, ds), v in self._datasets.items() if e == env]
        return sorted((DatasetInfo(ds, c, lw) for ds, c, lw in items), key=lambda d: d.name)

    def columns(self, env: str, dataset: str | None) -> list[ColumnInfo]:
        self.flush(env)
        merged: dict[tuple[str, str], list[datetime]] = {}
        with self._lock:
            for (e, ds), cols in self._catalogue.items():
                if e != env or (dataset is not None and ds != dataset):
                    continue
                for key, (first, last, _) in cols.items():
                    have = merged.get(key)
                    merged[key] = [first, last] if have is None else [min(have[0], first), max(have[1], last)]
            physical = {k: self._physical[k] for k in self._env_columns.get(env, ())}
        out = []
        for (name, typ), (first, last) in merged.items():
            if name in CORE_NAMES:
                out.append(ColumnInfo(name, typ, first, last, name))
            else:
                p = physical.get((name, typ), OVERFLOW_COLUMN)
                out.append(ColumnInfo(name, typ, first, last, p, name if p == OVERFLOW_COLUMN else None))
        return sorted(out, key=lambda c: (c.name, c.type))

    def query(self, sql: str, params: Sequence[Any] = ()) -> pa.Table:
        return self._read(sql, params, read_scope.environment())

    def _read(self, sql: str, params: Sequence[Any], env: str | None) -> pa.Table:
        """A statement over what ``env`` (every environment for None) has acknowledged.

        ``spans`` names ``env``'s own view (its partitions alone) when it has one: the query layer's SQL
        needs no table name of its own, and filters on ``_env`` as before. Outside any environment, and
        for one that has loaded nothing yet, it is the view over every partition.
        """
        self.flush(env)
        cur = self.cursor()
        path = None if env is None else self._partitions.search_path(env)
        if path is not None:
            try:
                cur.execute("SET search_path = ?", [path])
            except duckdb.CatalogException:  # its first load is not committed yet: the view over every partition
                pass
        try:
            return _arrow(cur, sql, params)
        finally:
            cur.close()

    def trace(self, env: str, trace_id: str) -> pa.Table:
        self.flush(env)
        cur = self.cursor()
        try:
            found = cur.execute("SELECT coalesce(part, 1), min(ts_min), max(ts_max) FROM trace_index "
                                "WHERE trace_id = ? AND _env = ? GROUP BY 1 ORDER BY 1", [trace_id, env]).fetchall()
            pieces = []
            for part, lo, hi in found:
                table = self._partitions.table_of(part)
                if table is None:  # dropped by retention since
                    continue
                try:
                    pieces.append(_arrow(cur, f'SELECT * FROM {table} WHERE _env = ? AND "timestamp" BETWEEN ? AND ? '
                                              'AND "trace.trace_id" = ? ORDER BY "timestamp"', [env, lo, hi, trace_id]))
                except duckdb.CatalogException:  # dropped by retention between the lookup and the read
                    continue
        finally:
            cur.close()
        if not pieces:
            return pa.table({})
        raw = pieces[0] if len(pieces) == 1 else pa.concat_tables(pieces, promote_options="default").sort_by("timestamp")
        return self.to_logical(raw)

    def to_logical(self, raw: pa.Table) -> pa.Table:
        """Physical rows -> Honeycomb names: attribute columns renamed, ``_attrs`` spread out, empty columns dropped."""
        with self._lock:
            by_physical = {p: n for (n, _t), p in self._physical.items() if p != OVERFLOW_COLUMN}
        names, arrays = [], []
        for name, col in zip(raw.column_names, raw.columns):
            if name in (ENV_COLUMN, OVERFLOW_COLUMN, INGEST_COLUMN) or col.null_count == len(col):
                continue
            if name == DATASET_COLUMN:
                names.append("meta.dataset")
            elif pa.types.is_timestamp(col.type):
                col = col.cast(pa.timestamp("us", tz="UTC"))
                names.append(name)
            else:
                names.append(by_physical.get(name, name))
            arrays.append(col)
        table = pa.Table.from_arrays(arrays, names=names) if arrays else pa.table({})
        if OVERFLOW_COLUMN in raw.column_names and raw.column(OVERFLOW_COLUMN).null_count < raw.num_rows:
            extra: dict[str, list[Any]] = {}
            docs = raw.column(OVERFLOW_COLUMN).to_pylist()
            for i, doc in enumerate(docs):
                for k, v in (json.loads(doc) if doc else {}).items():
                    extra.setdefault(k, [None] * len(docs))[i] = v
            for k, vals in extra.items():
                if k in table.column_names:
                    # Same key, another type: keep the typed column, show the odd values beside it.
                    k = f"{k} (overflow)"
                try:
                    column = pa.array(vals)  # typed when the key's values agree
                except (pa.ArrowInvalid, pa.ArrowTypeError):
                    column = pa.array([None if v is None else v if isinstance(v, str) else json.dumps(v) for v in vals], pa.string())
                table = table.append_column(k, column)
        return table

    # -- upkeep ---------------------------------------------------------------------------------

    def span_counts(self, env: str) -> dict[str, int]:
        """Rows per dataset of one environment."""
        t = self._read(f"SELECT {quote(DATASET_COLUMN)} AS d, count(*) AS n FROM spans WHERE _env = ? GROUP BY 1", [env], env)
        return dict(zip(t.column("d").to_pylist(), t.column("n").to_pylist()))

    def count(self, env: str | None = None) -> int:
        if env is None:
            return self.query("SELECT count(*) AS n FROM spans").column(0)[0].as_py()
        return self._read("SELECT count(*) AS n FROM spans WHERE _env = ?", [env], env).column(0)[0].as_py()

    def delete_older_than(self, cutoff: datetime) -> int:
        naive = cutoff.astimezone(timezone.utc).replace(tzinfo=None)
        self.flush()
        with self._write_lock.alone():
            cur = self.cursor()
            try:
                cur.execute("BEGIN TRANSACTION")
                try:
                    old = self._partitions.older_than(naive)
                    n = sum(p.rows for p in old)
                    self._partitions.drop(cur, old)
                    for table in self._partitions.tables():
                        n += cur.execute(f'DELETE FROM {table} WHERE "timestamp" < ?', [naive]).fetchall()[0][0]
                    cur.execute("DELETE FROM trace_index WHERE ts_max < ?", [naive])
                    trace_summary.expire(cur, naive, self._partitions.tables())
                    self._partitions.recount(cur)
                    cur.execute("COMMIT")
                except BaseException:
                    cur.execute("ROLLBACK")
                    self._partitions.reload()
                    raise
                return int(n)
            finally:
                cur.close()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._stop_writing()
        try:
            self._db.execute("CHECKPOINT")
        except duckdb.Error:  # a checkpoint is an optimisation; the WAL already holds every commit
            log.warning("checkpoint on close failed", exc_info=True)
        self._db.close()
        self._root.close()

    def close_sync(self) -> None:
        """For CLI tools that never started an event loop."""
        if not self._closed:
            self._closed = True
            self._stop_writing()
            self._db.close()
            self._root.close()

    def _stop_writing(self) -> None:
        """Commit what is queued to the intake log, load the log into DuckDB, then stop both threads."""
        self._writer.close()
        self._loader.close()
        self._intake.close()
        with self._lock:
            opened, self._opened = self._opened, []
        for cur in opened:
            cur.close()


def _load_cost(batch: SpanBatch) -> int:
    return wide_cost(batch, WIDE_COLUMNS)


def _merge_overflow(existing: pa.ChunkedArray | pa.Array, extra: list[tuple[str, pa.ChunkedArray]]) -> list[str | None]:
    docs = existing.to_pylist()
    columns = [(name, col.to_pylist()) for name, col in extra]
    out: list[str | None] = []
    for i, doc in enumerate(docs):
        obj = json.loads(doc) if doc else {}
        for name, values in columns:
            if values[i] is not None:
                obj[name] = values[i]
        out.append(json.dumps(obj, separators=(",", ":")) if obj else None)
    return out


def _arrow(cur: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any]) -> pa.Table:
    rel = cur.sql(sql, params=list(params))
    if rel is None:  # a statement with no result set
        return pa.table({})
    # DuckDB 2 renamed arrow() to to_arrow_table().
    fetch = getattr(rel, "to_arrow_table", None) or rel.arrow
    return fetch()


def _bulk(db: duckdb.DuckDBPyConnection, sql: str, names: list[str], rows: list[list[Any]]) -> None:
    table = pa.table({name: [r[i] for r in rows] for i, name in enumerate(names)})
    db.register("_rows", table)
    try:
        db.execute(sql)
    finally:
        db.unregister("_rows")


def _schema_key(schema: pa.Schema) -> bytes:
    """A schema as the layout cache knows it: its IPC form.

    Hashing a ``pa.Schema`` builds a Python object per field: 1.0 ms for a 1,023-field span, twice per
    load, all of it holding the GIL. Its IPC form takes ~0.15 ms and, unlike its printed form, cannot
    be forged by a key holding a newline and a type's name.
    """
    return schema.serialize().to_pybytes()


def _runs(group: list[tuple[str, SpanBatch]]) -> list[tuple[str, pa.Table]]:
    """The group's batches, concatenated per environment and schema, each row with its batch's arrival time.

    A load's batches come from a few services, each with its own schema: the loader then renames
    columns and reads null counts a few times per load rather than once per request.
    """
    runs: list[tuple[str, pa.Schema, list[SpanBatch]]] = []
    for env, batch in group:
        schema = batch.table.schema
        for run_env, run_schema, batches in runs:
            if run_env == env and run_schema.equals(schema):
                batches.append(batch)
                break
        else:
            runs.append((env, schema, [batch]))
    out = []
    for env, _, batches in runs:
        table = pa.concat_tables([b.table for b in batches]) if len(batches) > 1 else batches[0].table
        arrival = pa.chunked_array([b.arrival_column() for b in batches], pa.timestamp("us"))
        out.append((env, table.append_column(INGEST_COLUMN, arrival)))
    return out


@dataclass(frozen=True)
class _Layout:
    """A batch schema's place in the spans table (``DuckDBStore._layout``)."""

    names: list[str]  #: physical column names, ``_env`` first, then the batch's kept columns in order
    overflow: list[int]  #: columns past the cap, folded into ``_attrs``
    timestamps: list[int]  #: core timestamp columns, stored without their time zone
    present: list[tuple[int, tuple[str, str]]]  #: (column, (name, type)) for the catalogue
    attrs: int  #: the ``_attrs`` column


def _trace_ranges(spans: pa.Table) -> pa.Table:
    """``trace_index`` rows of a commit: each trace's first and last timestamp.

    Grouped by Arrow, so DuckDB inserts a few rows per trace instead of running a GROUP BY over the
    whole commit. That statement took ~3 ms of a 512-span commit. ``bench/commit.py`` (8,192-row
    groups): 28.9 -> 27.9 us per span at 512 spans per commit, 11.1 -> 10.5 at 3,584.
    """
    part = spans.select([ENV_COLUMN, "trace.trace_id", "timestamp"])
    part = part.filter(pc.is_valid(part.column("trace.trace_id")))
    ranges = part.group_by([ENV_COLUMN, "trace.trace_id"], use_threads=False).aggregate(
        [("timestamp", "min"), ("timestamp", "max")])
    return ranges.select([ENV_COLUMN, "trace.trace_id", "timestamp_min", "timestamp_max"]).rename_columns(
        ["_env", "trace_id", "ts_min", "ts_max"])


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value

