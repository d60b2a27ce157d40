"""The small interfaces every store implements (DuckDB embedded, ClickHouse scale-out), one per signal.

Receivers only ``append`` (or ``report``); read paths only ask for columns,
datasets, one trace, or run SQL the query compiler produced for ``dialect``.
Keeping them this small is what lets a second backend exist at all. `Store`
holds spans, `LogStore` log events with their groups and streams (CloudWatch
Logs' catalogue), `ErrorStore` error items and their occurrences (Rollbar's).
"""

from __future__ import annotations

import errno
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Callable, Mapping, Protocol, Sequence

if TYPE_CHECKING:
    from apiary.query.filter_pattern import MessageFilter
    from apiary.store.lookup_tables import LookupTable, Parsed

import pyarrow as pa

from apiary.model.error import ErrorOccurrence
from apiary.model.log import LogBatch
from apiary.model.span import SpanBatch


class StoreOverloaded(Exception):
    """Too much is waiting to be committed: the client should retry later."""

    def __init__(self, retry_after: int = 1) -> None:
        super().__init__(f"store is overloaded, retry after {retry_after}s")
        self.retry_after = retry_after


class EnvironmentOverloaded(StoreOverloaded):
    """One environment has as much costly load work queued as its share allows: it, not the server, should wait.

    Told apart from `StoreOverloaded` so that the intake can refuse that environment's next requests
    before their bodies are read and decoded (`apiary.receivers.body_budget`), and leave the others alone.
    """

    def __init__(self, environment: str, retry_after: int = 1) -> None:
        super().__init__(retry_after)
        self.environment = environment
        self.args = (f"environment {environment!r} has as much costly work (wide batches) waiting to be loaded as its "
                     f"share of the loader allows; retry after {retry_after}s",)


def wide_cost(batch: SpanBatch, wide_columns: int) -> int:
    """A batch's load cost: its columns past ``wide_columns`` (the loader's work grows with columns, not rows)."""
    return max(0, batch.table.num_columns - wide_columns)


class StoreUnavailable(Exception):
    """The store cannot commit right now (closing, or its database is unreachable)."""

    def __init__(self, message: str, retry_after: int = 5) -> None:
        super().__init__(message)
        self.retry_after = retry_after


#: Seconds a client is asked to wait after a failed commit. The OTel Python exporter waits what
#: Retry-After says between attempts, for at most its timeout (10 s by default): 2 s gives it five
#: attempts to find the disk freed, where 5 s gave two.
RETRY_AFTER_FAILURE_S = 2


def is_disk_full(exc: BaseException | None) -> bool:
    """ENOSPC (or a quota), whether Python raised it or a database reports it in its message.

    The exceptions it led to count too (``__context__``): a ROLLBACK after a COMMIT that could not
    write its log fails in turn ("no transaction is active"), and that second error must not pass a
    full disk off as a batch the database refused.
    """
    seen = 0
    while exc is not None and seen < 8:
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        text = str(exc)
        # DuckDB says ENOSPC in words; ClickHouse reserves space first and says NOT_ENOUGH_SPACE (code 243).
        if any(sign in text for sign in ("No space left on device", "Disk quota exceeded", "NOT_ENOUGH_SPACE")):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


def as_unavailable(exc: BaseException) -> Exception:
    """The exception a receiver answers for a commit that failed: 503 with Retry-After in its protocol.

    A failed commit stored nothing of the request, and the client still holds the data: telling it
    to retry (OTLP's UNAVAILABLE, AWS's ServiceUnavailableException) loses nothing, where a 500 made
    OTLP exporters drop the batch.
    """
    if isinstance(exc, (StoreOverloaded, StoreUnavailable)):
        return exc
    if is_disk_full(exc):
        return StoreUnavailable("the server's disk is full: nothing of this request was stored; "
                                "retry once space is freed", retry_after=RETRY_AFTER_FAILURE_S)
    return StoreUnavailable(f"the store could not commit this request ({type(exc).__name__}): nothing of it "
                            "was stored; retry", retry_after=RETRY_AFTER_FAILURE_S)


@dataclass(frozen=True)
class ColumnInfo:
    """One column of a dataset, as Honeycomb's columns API describes it."""

    name: str
    type: str  # string | integer | float | boolean | timestamp
    first_seen: datetime
    last_seen: datetime
    #: The physical column holding it; for keys past the column cap, the overflow JSON column.
    physical: str
    #: Set when the value lives inside the overflow JSON object under this key.
    json_key: str | None = None


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    created_at: datetime
    last_written: datetime


class Store(Protocol):
    dialect: str
    #: Whether ``query`` may be called from several threads at once (the engine then overlaps statements).
    parallel_reads: bool

    async def append(self, env: str, batch: SpanBatch) -> None:
        """Return only once every row of ``batch`` is durably committed."""

    def datasets(self, env: str) -> list[DatasetInfo]: ...

    def span_counts(self, env: str) -> dict[str, int]:
        """Rows (spans, events, links) per dataset."""

    def columns(self, env: str, dataset: str | None) -> list[ColumnInfo]:
        """Columns of one dataset, or of every dataset of ``env`` when ``dataset`` is None."""

    def trace(self, env: str, trace_id: str) -> pa.Table:
        """Every row of one trace (spans, events, links), oldest first, under Honeycomb's column names."""

    def query(self, sql: str, params: Sequence[Any]) -> pa.Table:
        """Run SQL compiled for ``dialect``; values only ever travel in ``params``."""

    def delete_older_than(self, cutoff: datetime) -> int: ...

    async def close(self) -> None: ...


@dataclass(frozen=True)
class LogGroup:
    name: str
    created_ms: int
    retention_days: int | None = None
    stored_bytes: int = 0


@dataclass(frozen=True)
class LogStream:
    log_group: str
    name: str
    created_ms: int
    first_event_ms: int | None = None
    last_event_ms: int | None = None
    last_ingestion_ms: int | None = None
    stored_bytes: int = 0


class LogStore(Protocol):
    """Log events of groups and streams. Events are ordered by (timestamp, seq); ``seq`` is the commit order."""

    dialect: str

    def group(self, env: str, name: str) -> LogGroup | None: ...

    def groups(self, env: str, prefix: str = "", *, after: str = "", limit: int | None = None,
               keep: Callable[[str], bool] | None = None) -> list[LogGroup]:
        """The groups whose names start with ``prefix``, by name: those after ``after``, that ``keep`` keeps (a test
        of the name), at most ``limit`` -- one page of DescribeLogGroups or ListLogGroups costs that page."""

    def stream(self, env: str, group: str, name: str) -> LogStream | None: ...

    def streams(self, env: str, group: str, prefix: str = "") -> list[LogStream]: ...

    async def create_group(self, env: str, name: str, tags: Mapping[str, str] | None = None) -> bool:
        """False when it already exists. ``tags`` are committed with the group (CreateLogGroup's ``tags``)."""

    def tags(self, env: str, group: str) -> dict[str, str]:
        """The group's tags (none for a group without any, or no such group)."""

    async def retag(self, env: str, group: str,
                    change: Callable[[dict[str, str]], dict[str, str]]) -> dict[str, str] | None:
        """Replace the group's tags by ``change(current)``, committed, with no other tag call in between;
        None when there is no such group."""

    async def create_stream(self, env: str, group: str, name: str) -> bool: ...

    async def ensure_stream(self, env: str, group: str, name: str) -> None: ...

    async def delete_group(self, env: str, name: str) -> None: ...

    async def delete_stream(self, env: str, group: str, name: str) -> None: ...

    async def put_retention(self, env: str, group: str, days: int | None) -> None: ...

    def lookup_table(self, env: str, name: str) -> LookupTable | None: ...

    def lookup_tables(self, env: str, prefix: str = "") -> list[LookupTable]:
        """The environment's lookup tables whose names start with ``prefix``, by name."""

    async def put_lookup_table(self, env: str, table: LookupTable, body: str, parsed: Parsed,
                               keep_tags: bool = False) -> None:
        """Create or wholly replace a lookup table (its CSV ``body`` and its records); ``keep_tags``: the tags it has."""

    async def delete_lookup_table(self, env: str, name: str) -> None: ...

    async def retag_lookup_table(self, env: str, name: str,
                                 change: Callable[[dict[str, str]], dict[str, str]]) -> dict[str, str] | None:
        """As `retag`, for a lookup table's tags; None when there is no such table."""

    def lookup_table_body(self, env: str, name: str) -> str | None: ...

    async def append(self, env: str, batch: LogBatch) -> None:
        """Return only once every row is durably committed; the rows' groups and streams must exist."""

    def events(self, env: str, group: str, streams: Sequence[str] | None = None, *, start_ms: int | None = None,
               end_ms: int | None = None, after: tuple[int, int] | None = None,
               before: tuple[int, int] | None = None, descending: bool = False, limit: int = 10_000,
               message_filter: MessageFilter | None = None, detail: bool = False) -> pa.Table:
        """``seq``, ``timestamp_us``, ``ingestion_ms``, ``log_stream``, ``message`` (+ ``trace_id``, ``span_id``,
        ``severity_text`` with ``detail``) in (timestamp, seq) order; ``after``/``before`` are exclusive positions."""

    def events_after_seq(self, env: str, group: str, streams: Sequence[str] | None, after_seq: int, limit: int,
                         message_filter: MessageFilter | None = None) -> pa.Table:
        """Events committed after ``after_seq``, in commit order, with the columns of ``events(detail=True)``."""

    def max_seq(self, env: str, group: str) -> int: ...

    def event_counts(self, env: str) -> dict[tuple[str, str], int]:
        """Events per (group, stream)."""

    def trace_logs(self, env: str, trace_id: str, limit: int = 1000) -> pa.Table: ...

    def count(self, env: str | None = None) -> int: ...

    def query(self, sql: str, params: Sequence[Any] = ()) -> pa.Table:
        """Run SQL compiled for ``dialect`` (bound already by its `LogDialect`)."""

    async def delete_expired(self) -> int:
        """Remove events older than their group's retention (PutRetentionPolicy); groups without one keep theirs."""

    async def delete_older_than(self, cutoff: datetime) -> int:
        """Remove every event older than ``cutoff`` (the server-wide retention)."""

    async def close(self) -> None: ...


@dataclass(frozen=True)
class ErrorItem:
    env: str
    id: int
    counter: int
    key: str
    title: str
    level: str
    status: str
    environment: str
    framework: str | None
    platform: str | None
    language: str | None
    total_occurrences: int
    first_occurrence_id: int
    first_occurrence_timestamp: float
    last_occurrence_id: int
    last_occurrence_timestamp: float
    activating_occurrence_id: int
    last_activated_timestamp: float
    last_resolved_timestamp: float | None = None
    last_muted_timestamp: float | None = None
    last_trace_id: str | None = None


class ErrorStore(Protocol):
    """Error items (occurrences grouped by key) and their occurrences."""

    dialect: str

    async def report(self, env: str, occurrences: list[ErrorOccurrence]) -> None:
        """Return once the occurrences and their items' new state are committed."""

    async def set_status(self, env: str, item_id: int, status: str | None, level: str | None) -> ErrorItem | None: ...

    def item(self, env: str, item_id: int) -> ErrorItem | None: ...

    def items(self, env: str, status: str | None = None, level: str | None = None,
              environment: str | None = None) -> list[ErrorItem]: ...

    def occurrences(self, env: str, item_id: int, limit: int = 20, offset: int = 0) -> list[dict[str, Any]]: ...

    def occurrence(self, env: str, ident: str) -> dict[str, Any] | None:
        """By occurrence id (digits) or by the client's uuid."""

    def trace_errors(self, env: str, trace_id: str) -> list[dict[str, Any]]: ...

    def occurrence_counts(self, env: str, item_ids: list[int], start: datetime, bucket_s: int) -> list[dict[str, Any]]:
        """``item_id``, ``b`` (bucket index from ``start``), ``n`` -- the errors page's sparklines."""

    async def delete_older_than(self, cutoff: datetime) -> int:
        """Remove occurrences older than ``cutoff``, and items with none left."""

    async def close(self) -> None: ...
