"""The scale-out span store: ClickHouse, through the thin client in ``client.py``.

Layout (``docs/scale-out.md`` has the DDL and a clustered variant):

* One span MergeTree per environment (``spans_e_<12 hex>``, `span_tables`), and ``spans``, the name the query
  layer reads, a ``Merge`` table over them: ClickHouse writes every column of a table in every part, so a
  table shared by every environment made each insert pay for all their columns together (a calm
  environment's 20 rows: 99 ms into 37 columns, 509 ms into 787). Each table is
  ``PARTITION BY toDate(timestamp)``,
  ``ORDER BY (_env, _dataset, toStartOfHour(timestamp), timestamp)``. Nearly
  every query is "one dataset of one environment over a time range", which
  that key answers by reading only the granules of those hours; whole days
  fall away by partition. ``_env``, ``_dataset`` and the span's repetitive
  strings (name, service, kind, library, annotation type) are
  ``LowCardinality``: dictionary-encoded, compared as integers.
* Attribute keys get typed columns as they arrive, with the DuckDB store's
  catalogue semantics: (name, type) -> physical column, a second type gets a
  second column, past ``max_columns`` keys go to the ``_attrs`` JSON column,
  and one environment takes at most ``max_env_columns`` of them (``env_columns``);
  only its own table has them, ``spans`` has every one.
  A physical name is a hash of (name, type) (``a_<12 hex>``), so several
  Apiary nodes adding the same key concurrently agree on the column and
  ``ADD COLUMN IF NOT EXISTS`` makes the race harmless.
* ``trace_index`` (AggregatingMergeTree ordered by ``trace_id``) maps a trace
  to its environment, datasets and time range; ``trace()`` reads one index
  granule, then only the granules of those datasets and seconds in the environment's own table, so its
  cost does not grow with the table. Measured on chdb up to 5 M spans
  (``python -m tests.clickhouse.measure``, figures in docs/scale-out.md) a
  plain scan of ``trace.trace_id`` was still faster -- the fixed cost of two
  statements dominates there -- so the crossover is yet to be measured at scale.
* The catalogue (``attribute_columns``, ``dataset_columns``, ``datasets``)
  lives in ClickHouse, so every node sees what any node wrote; reads go to
  the tables (merged with this node's fresher in-memory last-seen times).
* Retention: ``TTL timestamp + retention`` on every span table when the server has one, and
  ``delete_older_than`` as a lightweight DELETE for explicit calls.

Writes: group commit (``GroupCommitter``), one batched Arrow ``INSERT`` per
environment in a group, acknowledged after the insert returns -- ClickHouse has then written
the part (``fsync_after_insert`` makes that reach the disk, as DuckDB's
commit does). ``async_insert`` with ``wait_for_async_insert=1`` gives the
same acknowledgement, but it solves a problem this process does not have:
it batches many small clients on the server, while group commit already
hands ClickHouse one large block per group. Measured here on chdb at 1 M
spans (``python -m tests.clickhouse.measure``): group commit 265 k spans/s,
one async insert per request 34 k, one plain insert per request 30 k -- so
group commit it is; a server fed by many nodes can still turn ``async_insert`` on.

A batch past ``WIDE_COLUMNS`` columns (a flood of 1,000-attribute spans) costs the writer far more than
its rows (``_physical_for`` per key, the overflow folding, a wide insert): as in the DuckDB store's
loader, each environment may have ``ENV_PENDING_COST`` of such work queued before it is answered 429
(`EnvironmentOverloaded`), and the group commit writes each costly batch alone, environments taking
turns (`apiary.store.load_shares`), so another environment's insert never waits behind a backlog of them
nor takes on their columns. Its statements go one at a time: between two of them the ordinary groups that
came meanwhile are committed, and it waits for reads and ordinary batches to pause (`apiary.store.costly_gate`).

Order within a commit: the environment's table (and ``spans``) widened, catalogue and ``trace_index``,
then the spans. A failure before the spans insert leaves at most a harmless column, catalogue or
index entry; an environment's spans insert is the commit point of its batches. ``non_replicated_deduplication_window``
drops an identical block sent again when a retry follows an insert whose
answer was lost.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Iterator, Mapping, Sequence

import pyarrow as pa
import pyarrow.compute as pc

from apiary.model.span import (
    CORE_FIELDS, CORE_NAMES, DATASET_COLUMN, INGEST_COLUMN, INTERNAL_NAMES, OVERFLOW_COLUMN, SpanBatch, column_type,
)
from apiary.store.base import (
    ColumnInfo,
    DatasetInfo,
    EnvironmentOverloaded,
    StoreUnavailable,
    wide_cost,
)
from apiary.store import read_scope
from apiary.store.catalogue_cap import MAX_DATASET_COLUMNS, CatalogueCap
from apiary.store.clickhouse import trace_summary
from apiary.store.clickhouse.client import Client, ClickHouseError, connect, quote
from apiary.store.clickhouse.span_tables import LEGACY, SCOPE_PARAM, SpanTables, table_for
from apiary.store.costly_gate import CostlyGate
from apiary.store.group_commit import GroupCommitter
from apiary.store.load_shares import COSTLY_RETRY_AFTER_S, ENV_PENDING_COST, WIDE_COLUMNS

log = logging.getLogger(__name__)

ENV_COLUMN = "_env"
#: 2: ``spans`` has ``_ingest_timestamp``, when the store accepted the span (NULL for older spans).
#: 3: a span table per environment, ``spans`` a ``Merge`` table over them and the shared one from before.
SCHEMA_VERSION = 3
TS = "DateTime64(6, 'UTC')"
_SQL_TYPES = {"string": "Nullable(String)", "integer": "Nullable(Int64)", "float": "Nullable(Float64)",
              "boolean": "Nullable(Bool)", "timestamp": f"Nullable({TS})"}
#: Core strings with few distinct values: dictionary-encoded.
_LOW_CARDINALITY = {"name", "service.name", "span.kind", "library.name", "library.version", "meta.signal_type",
                    "meta.annotation_type", "parent_name"}
_LAST_SEEN_FLUSH_S = 60.0
_INSERT_SETTINGS = {"max_partitions_per_insert_block": 1000}


def physical_name(name: str, typ: str) -> str:
    """The column of attribute (name, type): the same on every node, whatever order keys arrive in."""
    return "a_" + hashlib.sha1(f"{name}\0{typ}".encode()).hexdigest()[:12]


def _core_sql_type(f: pa.Field) -> str:
    if f.name == "timestamp":
        return TS
    typ = _SQL_TYPES[column_type(f.type)]
    return f"LowCardinality({typ})" if f.name in _LOW_CARDINALITY else typ


class ClickHouseStore:
    dialect = "clickhouse"
    parallel_reads = False  # its clients (HTTP session, chdb) are not relied on for concurrent statements

    def __init__(self, client: Client | str, *, max_columns: int = 1000, max_pending_rows: int = 400_000,
                 linger_s: float = 0.02, retention_days: float = 0, fsync: bool = True,
                 on_close: Sequence[Callable[[], Any]] = (), max_env_columns: int | None = None,
                 max_dataset_columns: int = MAX_DATASET_COLUMNS) -> None:
        self.client = connect(client) if isinstance(client, str) else client
        self.max_columns = max_columns
        self.max_env_columns = max_columns if max_env_columns is None else max_env_columns
        self._catalogue_cap = CatalogueCap(max_dataset_columns)
        #: env -> the (name, type) keys that have a typed column for that environment
        self._env_columns: dict[str, set[tuple[str, str]]] = defaultdict(set)
        self._on_close = list(on_close)
        self._lock = threading.Lock()
        self._physical: dict[tuple[str, str], str] = {}
        # (env, dataset) -> (name, type) -> [first_seen, last_seen, last_flushed]; this node's view, for write-back pacing
        self._catalogue: dict[tuple[str, str], dict[tuple[str, str], list[datetime]]] = defaultdict(dict)
        self._listed_read: set[tuple[str, str]] = set()  # datasets whose listed columns ``_catalogue`` holds
        self._datasets: dict[tuple[str, str], list[datetime]] = {}
        #: id -> batch whose spans a failed group already wrote: its retry alone must not write them again
        self._written: dict[int, SpanBatch] = {}
        self._create_schema(fsync)
        if retention_days > 0:
            seconds = int(retention_days * 86400)  # a number from the server's settings, never a request's value
            self._tables.ttl = f"TTL toDateTime(`timestamp`) + toIntervalSecond({seconds})"  # for tables made later
            sources = [(t, "timestamp") for t in self._tables.sources()]
            for table, column in (*sources, ("trace_index", "ts_max"), ("trace_summary", "ts_max")):
                self.client.command(f"ALTER TABLE {table} MODIFY TTL toDateTime({column}) + toIntervalSecond({seconds})",
                                    settings={"materialize_ttl_after_modify": 0})
        self._load_physical()
        #: Reads and ordinary batches in progress: a costly commit's statements go when they pause.
        self._gate = CostlyGate()
        self._writer: GroupCommitter[tuple[str, SpanBatch]] = GroupCommitter(
            self._commit, max_pending_rows=max_pending_rows, linger_s=linger_s, name="apiary-clickhouse-writer",
            between_steps=self._gate.wait_quiet)
        self._closed = False

    # -- schema ---------------------------------------------------------------------------------

    def _create_schema(self, fsync: bool) -> None:
        c = self.client
        cols = [f"{quote(ENV_COLUMN)} LowCardinality(String)", f"{quote(DATASET_COLUMN)} LowCardinality(String)"]
        cols += [f"{quote(f.name)} {_core_sql_type(f)}" for f in CORE_FIELDS]
        cols.append(f"{quote(OVERFLOW_COLUMN)} Nullable(String)")
        cols.append(f"{quote(INGEST_COLUMN)} Nullable({TS})")  # NULL in a table from before version 2
        durable = f", fsync_after_insert = {int(fsync)}, fsync_part_directory = {int(fsync)}"
        self._tables = SpanTables(c, cols, "ENGINE = MergeTree PARTITION BY toDate(`timestamp`) "
                                           "ORDER BY (_env, _dataset, toStartOfHour(`timestamp`), `timestamp`)",
                                  f"SETTINGS non_replicated_deduplication_window = 1000{durable}")
        self._tables.prepare()
        c.command(f"""CREATE TABLE IF NOT EXISTS trace_index (_env LowCardinality(String), trace_id String,
                      _dataset LowCardinality(String), ts_min SimpleAggregateFunction(min, {TS}),
                      ts_max SimpleAggregateFunction(max, {TS}))
                      ENGINE = AggregatingMergeTree ORDER BY (trace_id, _env, _dataset)
                      SETTINGS non_replicated_deduplication_window = 1000{durable}""")
        trace_summary.create(c, durable)
        c.command("""CREATE TABLE IF NOT EXISTS attribute_columns (name String, type LowCardinality(String), physical String)
                     ENGINE = ReplacingMergeTree ORDER BY (name, type, physical)""")
        if not c.query_arrow("SELECT count() AS n FROM system.tables WHERE database = currentDatabase() "
                             "AND name = 'env_columns'").column(0)[0].as_py():
            c.command("""CREATE TABLE IF NOT EXISTS env_columns (_env String, name String, type LowCardinality(String))
                         ENGINE = ReplacingMergeTree ORDER BY (_env, name, type)""")
            has_catalogue = c.query_arrow("SELECT count() AS n FROM system.tables WHERE database = currentDatabase() "
                                          "AND name = 'dataset_columns'").column(0)[0].as_py()
            if has_catalogue:  # before per-environment caps every environment used every typed column it wrote
                c.command(f"""INSERT INTO env_columns SELECT DISTINCT d._env, d.name, d.type FROM dataset_columns AS d
                              INNER JOIN attribute_columns AS a ON a.name = d.name AND a.type = d.type
                              WHERE a.physical != '{OVERFLOW_COLUMN}'""")
        c.command(f"""CREATE TABLE IF NOT EXISTS dataset_columns (_env String, _dataset String, name String,
                      type LowCardinality(String), first_seen SimpleAggregateFunction(min, {TS}),
                      last_seen SimpleAggregateFunction(max, {TS}))
                      ENGINE = AggregatingMergeTree ORDER BY (_env, _dataset, name, type)""")
        c.command(f"""CREATE TABLE IF NOT EXISTS datasets (_env String, name String,
                      created_at SimpleAggregateFunction(min, {TS}), last_written SimpleAggregateFunction(max, {TS}))
                      ENGINE = AggregatingMergeTree ORDER BY (_env, name)""")
        c.command(f"CREATE TABLE IF NOT EXISTS schema_version (version UInt32, applied_at {TS}) ENGINE = MergeTree ORDER BY version")
        have = self.client.query_arrow("SELECT max(version) AS v FROM schema_version").column(0)[0].as_py() or 0
        if have < SCHEMA_VERSION:
            c.command(f"INSERT INTO schema_version VALUES ({{v:UInt32}}, now64(6))", {"v": SCHEMA_VERSION})

    def _load_physical(self) -> None:
        """The shared (name, type) -> column map. A column beats overflow when two nodes raced ('a_' > '_attrs')."""
        t = self.client.query_arrow("SELECT name, type, max(physical) AS physical FROM attribute_columns GROUP BY name, type")
        grants = self.client.query_arrow("SELECT DISTINCT _env, name, type FROM env_columns")
        with self._lock:
            for name, typ, physical in zip(*(t.column(i).to_pylist() for i in range(3))):
                self._physical[(name, typ)] = physical
            for env, name, typ in zip(*(grants.column(i).to_pylist() for i in range(3))):
                self._env_columns[env].add((name, typ))

    def _physical_for(self, env: str, name: str, typ: str, plan: "_ColumnPlan") -> str | None:
        """The column for (name, type) in ``env``, planning to add it if both caps allow; None means overflow.

        As in the DuckDB store, a key past a cap is not recorded (that was a statement per key), the typed
        columns are counted once per commit, not once per key, and what a commit adds is written in one
        statement of each kind (`_add_columns`): three statements per new key took a 1,000-attribute span
        ~100 s to commit on chdb, while every other environment's inserts waited behind it.
        """
        key = (name, typ)
        granted = self._env_columns.get(env, set())
        planned = plan.grants.setdefault(env, set())
        at_cap = len(granted) + len(planned) >= self.max_env_columns
        if key not in granted and key not in planned and not plan.reloaded and not at_cap:
            self._load_physical()  # another node may have added it
            plan.reloaded = True
            granted = self._env_columns.get(env, set())
        physical = self._physical.get(key) or plan.columns.get(key)
        if physical is not None and (key in granted or key in planned):
            return physical
        if len(granted) + len(planned) >= self.max_env_columns:
            return None
        if physical == OVERFLOW_COLUMN:  # overflowed for everyone before per-environment caps
            return None
        if physical is None:
            if plan.typed is None:
                plan.typed = sum(1 for p in self._physical.values() if p != OVERFLOW_COLUMN)
            if plan.typed + len(plan.columns) >= self.max_columns:
                return None
            physical = plan.columns[key] = physical_name(name, typ)
        planned.add(key)
        return physical

    def _add_columns(self, plan: "_ColumnPlan") -> None:
        """The columns and grants a commit planned: one insert per catalogue table, after the tables have them."""
        if plan.columns:
            names, types = zip(*plan.columns)
            self.client.insert_arrow("attribute_columns", pa.table(
                {"name": list(names), "type": list(types), "physical": list(plan.columns.values())}))
        grants = [(env, n, t) for env, keys in plan.grants.items() for n, t in keys]
        if grants:
            self.client.insert_arrow("env_columns", pa.table(
                {"_env": [g[0] for g in grants], "name": [g[1] for g in grants], "type": [g[2] for g in grants]}))
        with self._lock:
            self._physical.update(plan.columns)
            for env, keys in plan.grants.items():
                if keys:
                    self._env_columns[env].update(keys)

    # -- writing --------------------------------------------------------------------------------

    async def append(self, env: str, batch: SpanBatch) -> None:
        if self._closed:
            raise StoreUnavailable("store is closed")
        if batch.num_rows == 0:
            return
        batch.arrive()
        cost = wide_cost(batch, WIDE_COLUMNS)
        if cost and not self._writer.reserve(env, cost, ENV_PENDING_COST):  # this environment's share of the writer
            raise EnvironmentOverloaded(env, retry_after=COSTLY_RETRY_AFTER_S)
        with contextlib.nullcontext() if cost else self._gate.ordinary():  # a costly batch is what the gate holds back
            await self._writer.submit((env, batch), batch.num_rows, key=env, cost=cost)

    @property
    def pending_rows(self) -> int:
        return self._writer.pending_rows

    def writer_stats(self) -> dict[str, int]:
        w = self._writer
        return {"pending_rows": w.pending_rows, "commits": w.commits, "committed_rows": w.committed_rows}

    def _physical_table(self, env: str, batch: SpanBatch, plan: "_ColumnPlan") -> pa.Table:
        table = batch.table
        names: list[str] = []
        arrays: list[Any] = []
        overflow: list[tuple[str, pa.ChunkedArray]] = []
        for name, col in zip(table.column_names, table.columns):
            if name in CORE_NAMES or name == DATASET_COLUMN or name == OVERFLOW_COLUMN:
                if name == "timestamp":
                    col = col.cast(pa.timestamp("us", tz="UTC"))
                elif name == DATASET_COLUMN:
                    col = pc.fill_null(col, "")
                names.append(name)
                arrays.append(col)
                continue
            physical = self._physical_for(env, name, column_type(col.type), plan)
            if physical is None:
                overflow.append((name, col))
            else:
                names.append(physical)
                arrays.append(col)
        if overflow:
            idx = names.index(OVERFLOW_COLUMN)
            arrays[idx] = pa.chunked_array([pa.array(_merge_overflow(arrays[idx], overflow), pa.string())])
        names.insert(0, ENV_COLUMN)
        arrays.insert(0, pa.chunked_array([pa.array([env] * table.num_rows, pa.string())]))
        names.append(INGEST_COLUMN)
        arrays.append(batch.arrival_column().cast(pa.timestamp("us", tz="UTC")))
        return pa.Table.from_arrays(arrays, names=names)

    def _commit(self, group: list[tuple[str, SpanBatch]]) -> Iterator[None]:
        """Each environment's rows into its own table, one insert per environment in the group.

        The group's inserts are several statements, so a later one failing leaves earlier ones written; the
        group committer then retries each batch alone, and a batch already written is not written again
        (`_written`), where the deduplication window would not catch it (alone, it is another block).

        It yields before and between its statements: for a costly batch, the group committer commits the
        ordinary groups that came meanwhile there, and waits for the others' work to pause
        (`apiary.store.costly_gate`). Each step leaves the catalogue as a commit would: a column is in the
        tables before the catalogue names it.
        """
        yield  # a costly batch starts once the ordinary groups queued are committed and the others' work pauses
        retry = len(group) == 1 and self._written.pop(id(group[0][1]), None) is not None
        plan = _ColumnPlan()
        tables = [self._physical_table(env, batch, plan) for env, batch in group]
        by_env: dict[str, list[int]] = defaultdict(list)
        for i, (env, _batch) in enumerate(group):
            by_env[env].append(i)
        targets = {}
        for env, idx in by_env.items():
            typed = {f.name: _SQL_TYPES[column_type(f.type)] for i in idx for f in tables[i].schema
                     if f.name.startswith("a_")}
            targets[env] = self._tables.ensure(env, typed)
        self._add_columns(plan)
        yield
        combined = pa.concat_tables(tables, promote_options="default") if len(tables) > 1 else tables[0]
        combined = combined.combine_chunks()
        self._record_catalogue(_presence(group))
        yield
        tids = combined.column("trace.trace_id")
        if tids.null_count < len(tids):
            keyed = combined.select([ENV_COLUMN, "trace.trace_id", DATASET_COLUMN, "timestamp"]).filter(pc.is_valid(tids))
            index = keyed.group_by([ENV_COLUMN, "trace.trace_id", DATASET_COLUMN]).aggregate(
                [("timestamp", "min"), ("timestamp", "max")])
            index = index.rename_columns(["_env", "trace_id", "_dataset", "ts_min", "ts_max"])
            self.client.insert_arrow("trace_index", index, settings=_INSERT_SETTINGS)
            yield
        written: list[int] = []
        try:
            for env, idx in by_env.items():  # the commit points
                if not retry:
                    rows = [tables[i] for i in idx]
                    rows_table = pa.concat_tables(rows, promote_options="default") if len(rows) > 1 else rows[0]
                    self.client.insert_arrow(targets[env], rows_table.combine_chunks(), settings=_INSERT_SETTINGS)
                written += idx
                yield
            trace_summary.add(self.client, combined, _INSERT_SETTINGS)
        except Exception:
            if len(group) > 1:  # the batch is kept, so its id cannot be another's before its retry pops it
                self._written.update((id(group[i][1]), group[i][1]) for i in written)
            raise

    def _record_catalogue(self, present: dict[tuple[str, str], set[tuple[str, str]]]) -> None:
        """Write new and stale (last-seen) catalogue rows; this node's memory changes only once they are in.

        A new key is listed only while its dataset has room (`CatalogueCap`), counted on what the table
        already lists for it, read the first time this node writes to that dataset."""
        now = datetime.now(timezone.utc)
        self._read_listed(present)
        col_rows: list[tuple[str, str, str, str, datetime, datetime]] = []
        ds_rows: list[tuple[str, str, datetime, datetime]] = []
        listed: dict[tuple[str, str], list[tuple[str, str]]] = {}  # the keys each dataset keeps listing
        with self._lock:
            for (env, ds), cols in present.items():
                entry = self._datasets.get((env, ds))
                if entry is None:
                    ds_rows.append((env, ds, now, now))
                elif (now - entry[2]).total_seconds() > _LAST_SEEN_FLUSH_S:
                    ds_rows.append((env, ds, entry[0], now))
                known = self._catalogue[(env, ds)]
                keep = listed[(env, ds)] = []
                added = 0
                for name, typ in self._catalogue_cap.in_order(cols, len(known)):
                    c = known.get((name, typ))
                    if c is None:
                        if not self._catalogue_cap.admits(env, ds, name, len(known) + added):
                            continue
                        added += 1
                        col_rows.append((env, ds, name, typ, now, now))
                    elif (now - c[2]).total_seconds() > _LAST_SEEN_FLUSH_S:
                        col_rows.append((env, ds, name, typ, c[0], now))
                    keep.append((name, typ))
        ts = pa.timestamp("us", tz="UTC")
        if ds_rows:
            self.client.insert_arrow("datasets", pa.table(
                [pa.array([r[i] for r in ds_rows], t) for i, t in enumerate((pa.string(), pa.string(), ts, ts))],
                names=["_env", "name", "created_at", "last_written"]))
        if col_rows:
            self.client.insert_arrow("dataset_columns", pa.table(
                [pa.array([r[i] for r in col_rows], t) for i, t in enumerate((pa.string(),) * 4 + (ts, ts))],
                names=["_env", "_dataset", "name", "type", "first_seen", "last_seen"]))
        with self._lock:
            for (env, ds), cols in listed.items():
                entry = self._datasets.setdefault((env, ds), [now, now, now])
                entry[1] = now
                if any(r[0] == env and r[1] == ds for r in ds_rows):
                    entry[2] = now
                known = self._catalogue[(env, ds)]
                for key in cols:
                    c = known.setdefault(key, [now, now, now])
                    c[1] = now
            for env, ds, name, typ, _f, _l in col_rows:
                self._catalogue[(env, ds)][(name, typ)][2] = now

    def _read_listed(self, present: dict[tuple[str, str], set[tuple[str, str]]]) -> None:
        """The columns the table lists for each dataset this node has not written to yet, into its memory."""
        with self._lock:
            unread = [key for key in present if key not in self._listed_read]
        for env, ds in unread:
            t = self.client.query_arrow(
                "SELECT name, type, min(first_seen) AS f, max(last_seen) AS l FROM dataset_columns "
                "WHERE _env = {env:String} AND _dataset = {ds:String} GROUP BY name, type", {"env": env, "ds": ds})
            with self._lock:
                known = self._catalogue[(env, ds)]
                for name, typ, first, last in zip(*(t.column(i).to_pylist() for i in range(4))):
                    known.setdefault((name, typ), [_utc(first), _utc(last), _utc(last)])
                self._listed_read.add((env, ds))

    # -- reading --------------------------------------------------------------------------------

    def _read(self, sql: str, params: Mapping[str, Any]) -> pa.Table:
        """A read's statement, seen by the gate that costly commits wait at (`apiary.store.costly_gate`)."""
        with self._gate.ordinary():
            return self.client.query_arrow(sql, params)

    def datasets(self, env: str) -> list[DatasetInfo]:
        t = self._read("SELECT name, min(created_at) AS c, max(last_written) AS w FROM datasets "
                       "WHERE _env = {env:String} GROUP BY name ORDER BY name", {"env": env})
        out = []
        with self._lock:
            for name, created, written in zip(*(t.column(i).to_pylist() for i in range(3))):
                mine = self._datasets.get((env, name))
                out.append(DatasetInfo(name, _utc(created), max(_utc(written), mine[1]) if mine else _utc(written)))
        return out

    def columns(self, env: str, dataset: str | None) -> list[ColumnInfo]:
        sql = ("SELECT name, type, min(first_seen) AS f, max(last_seen) AS l FROM dataset_columns WHERE _env = {env:String}"
               + (" AND _dataset = {ds:String}" if dataset is not None else "") + " GROUP BY name, type")
        t = self._read(sql, {"env": env, "ds": dataset} if dataset is not None else {"env": env})
        rows = list(zip(*(t.column(i).to_pylist() for i in range(4))))
        if any(n not in CORE_NAMES and (n, ty) not in self._physical for n, ty, _, _ in rows):
            self._load_physical()
        with self._lock:
            mine: dict[tuple[str, str], datetime] = {}
            for (e, ds), cols in self._catalogue.items():
                if e == env and (dataset is None or ds == dataset):
                    for key, v in cols.items():
                        mine[key] = max(mine.get(key, v[1]), v[1])
            physical = {k: self._physical[k] for k in self._env_columns.get(env, ()) if k in self._physical}
        out = []
        for name, typ, first, last in rows:
            first, last = _utc(first), _utc(last)
            if (name, typ) in mine:
                last = max(last, mine[(name, typ)])
            if name in CORE_NAMES:
                out.append(ColumnInfo(name, typ, first, last, name))
            else:
                p = physical.get((name, typ), OVERFLOW_COLUMN)
                out.append(ColumnInfo(name, typ, first, last, p, name if p == OVERFLOW_COLUMN else None))
        return sorted(out, key=lambda c: (c.name, c.type))

    def query(self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> pa.Table:
        """``params`` by name, or by position as ``{p1:Type}``, ``{p2:Type}`` ... in ``sql``."""
        named = dict(params) if isinstance(params, Mapping) else {f"p{i + 1}": v for i, v in enumerate(params)}
        env = read_scope.environment()
        if env is None:
            return self._read(sql, named)
        return self._read_for(env, sql, named)

    def _read_for(self, env: str, sql: str, params: Mapping[str, Any]) -> pa.Table:
        """A read whose ``spans`` is ``env``'s spans alone (`SpanTables.scoped`)."""
        return self._read(self._tables.scoped(sql, env, self.client.database), {**params, SCOPE_PARAM: env})

    def trace(self, env: str, trace_id: str) -> pa.Table:
        found = self._read(
            "SELECT groupArray(DISTINCT _dataset) AS ds, min(ts_min) AS lo, max(ts_max) AS hi FROM trace_index "
            "WHERE trace_id = {t:String} AND _env = {env:String}", {"t": trace_id, "env": env}).to_pylist()[0]
        if not found["ds"]:
            return pa.table({})
        where = (f"_env = {{env:String}} AND _dataset IN {{ds:Array(String)}} AND `timestamp` BETWEEN {{lo:{TS}}} "
                 f"AND {{hi:{TS}}} AND `trace.trace_id` = {{t:String}} ORDER BY `timestamp`")
        params = {"env": env, "ds": found["ds"], "lo": found["lo"], "hi": found["hi"], "t": trace_id}
        if self._tables.legacy:  # its spans may be in the table from before, as wide as every environment's
            params["tables"] = [table_for(env), LEGACY]
            raw = self._read(f"SELECT {', '.join(quote(c) for c in self._read_columns(env))} FROM spans "
                             f"WHERE _table IN {{tables:Array(String)}} AND {where}", params)
        else:  # its own table holds exactly its columns
            try:
                raw = self._read(f"SELECT * FROM {table_for(env)} WHERE {where}", params)
            except ClickHouseError as exc:  # indexed, but its table never made (spans of a dropped empty legacy table)
                if "UNKNOWN_TABLE" in str(exc):
                    return pa.table({})
                raise
        return self.to_logical(raw)

    def span_table(self, env: str) -> str:
        """The table ``env``'s spans are written to (``spans`` reads it with every other environment's)."""
        return table_for(env)

    def _read_columns(self, env: str) -> list[str]:
        """The physical columns that can hold ``env``'s spans: the core ones, the overflow and its own typed columns.

        ``spans`` and the table from before per-environment tables (``spans_legacy``) are as wide as every
        environment's columns together; ClickHouse reads only
        the columns a statement names, so naming these keeps a read of one environment as cheap as its own
        width (``SELECT *`` read 786 columns for a trace of a 37-column environment). The grants are read from
        ``env_columns``, where every node records them, so a column another node gave ``env`` is not missed.
        """
        granted = self.client.query_arrow("SELECT DISTINCT name, type FROM env_columns WHERE _env = {env:String}",
                                          {"env": env})
        keys = set(zip(granted.column(0).to_pylist(), granted.column(1).to_pylist()))
        if any(k not in self._physical for k in keys):
            self._load_physical()
        with self._lock:
            typed = sorted({self._physical[k] for k in keys if self._physical.get(k, OVERFLOW_COLUMN) != OVERFLOW_COLUMN})
        return [ENV_COLUMN, DATASET_COLUMN, *(f.name for f in CORE_FIELDS), OVERFLOW_COLUMN, INGEST_COLUMN, *typed]

    def to_logical(self, raw: pa.Table) -> pa.Table:
        """Physical rows -> Honeycomb names: attribute columns renamed, ``_attrs`` spread out, empty columns dropped."""
        if any(n.startswith("a_") and n not in set(self._physical.values()) for n in raw.column_names):
            self._load_physical()
        with self._lock:
            by_physical = {p: n for (n, _t), p in self._physical.items() if p != OVERFLOW_COLUMN}
        names, arrays = [], []
        for name, col in zip(raw.column_names, raw.columns):
            if name in (ENV_COLUMN, OVERFLOW_COLUMN, INGEST_COLUMN) or col.null_count == len(col):
                continue
            if name == DATASET_COLUMN:
                names.append("meta.dataset")
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
                    k = f"{k} (overflow)"
                try:
                    column = pa.array(vals)
                except (pa.ArrowInvalid, pa.ArrowTypeError):
                    column = pa.array([None if v is None else v if isinstance(v, str) else json.dumps(v) for v in vals], pa.string())
                table = table.append_column(k, column)
        return table

    # -- upkeep ---------------------------------------------------------------------------------

    def span_counts(self, env: str) -> dict[str, int]:
        t = self._read_for(env, "SELECT _dataset AS d, count() AS n FROM spans WHERE _env = {env:String} GROUP BY d",
                           {"env": env})
        return dict(zip(t.column("d").to_pylist(), t.column("n").to_pylist()))

    def count(self, env: str | None = None) -> int:
        if env is None:
            return int(self.client.query_arrow("SELECT count() AS n FROM spans").column(0)[0].as_py())
        return int(self._read_for(env, "SELECT count() AS n FROM spans WHERE _env = {env:String}",
                                  {"env": env}).column(0)[0].as_py())

    def delete_older_than(self, cutoff: datetime) -> int:
        """A lightweight DELETE in each span table holding older spans (``spans``, a ``Merge`` table, takes none)."""
        at = {"c": cutoff.astimezone(timezone.utc)}
        t = self.client.query_arrow(f"SELECT _table AS t, count() AS n FROM spans WHERE `timestamp` < {{c:{TS}}} "
                                    "GROUP BY t", at)
        n = 0
        for table, rows in zip(t.column(0).to_pylist(), t.column(1).to_pylist()) if t.num_rows else ():
            self.client.command(f"DELETE FROM {quote(table)} WHERE `timestamp` < {{c:{TS}}}", at)
            n += rows
        if n:
            self.client.command(f"DELETE FROM trace_index WHERE ts_max < {{c:{TS}}}", at)
            trace_summary.expire(self.client, cutoff)
        return n

    async def close(self) -> None:
        self.close_sync()

    def close_sync(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._writer.close()  # commits what is still queued
        self.client.close()
        for fn in self._on_close:
            fn()


@dataclass
class _ColumnPlan:
    """What one commit adds to the catalogue, written together once its tables are laid out."""

    #: (name, type) -> physical column, for keys no node had a column for.
    columns: dict[tuple[str, str], str] = field(default_factory=dict)
    #: env -> (name, type) keys newly given a typed column in that environment.
    grants: dict[str, set[tuple[str, str]]] = field(default_factory=dict)
    #: The catalogue was read again this commit (another node may have added a key).
    reloaded: bool = False
    #: Typed columns before this commit, counted once.
    typed: int | None = None


def _presence(group: list[tuple[str, SpanBatch]]) -> dict[tuple[str, str], set[tuple[str, str]]]:
    """Which (name, type) columns each (env, dataset) received in this group (from Arrow null counts)."""
    present: dict[tuple[str, str], set[tuple[str, str]]] = defaultdict(set)
    for env, batch in group:
        table = batch.table
        datasets = table.column(DATASET_COLUMN)
        names = [n for n in table.column_names if n not in INTERNAL_NAMES]
        bounds = pc.min_max(datasets).as_py()
        if datasets.null_count == 0 and bounds["min"] == bounds["max"]:
            parts = [(datasets[0].as_py(), table)]
        else:
            parts = [(ds, table.filter(pc.equal(datasets, ds))) for ds in pc.unique(datasets).to_pylist() if ds is not None]
        for ds, part in parts:
            cols = present[(env, ds or "")]
            for name in names:
                col = part.column(name)
                if col.null_count < len(col):
                    cols.add((name, column_type(col.type)))
    return present


def _merge_overflow(existing: Any, extra: list[tuple[str, pa.ChunkedArray]]) -> list[str | None]:
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


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


__all__ = ["ClickHouseStore", "ClickHouseError", "physical_name"]
