"""The small interface every span store implements (DuckDB embedded, ClickHouse scale-out).

Receivers only ``append``; read paths only ask for columns, datasets, one
trace, or run SQL the query compiler produced for ``dialect``. Keeping it
this small is what lets a second backend exist at all.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, Sequence

import pyarrow as pa

from apiary.model.span import SpanBatch


class StoreOverloaded(Exception):
    """Too much is waiting to be committed: the client should retry later."""

    def __init__(self, retry_after: int = 1) -> None:
        super().__init__(f"store is overloaded, retry after {retry_after}s")
        self.retry_after = retry_after


class StoreUnavailable(Exception):
    """The store cannot commit right now (closing, or its database is unreachable)."""

    def __init__(self, message: str, retry_after: int = 5) -> None:
        super().__init__(message)
        self.retry_after = retry_after


#: Seconds a client is asked to wait after a failed commit. The OTel Python exporter waits what
#: Retry-After says between attempts, for at most its timeout (10 s by default): 2 s gives it five
#: attempts to find the disk freed, where 5 s gave two.
RETRY_AFTER_FAILURE_S = 2


def is_disk_full(exc: BaseException) -> bool:
    """ENOSPC (or a quota), whether Python raised it or a database reports it in its message."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    text = str(exc)
    # DuckDB says ENOSPC in words; ClickHouse reserves space first and says NOT_ENOUGH_SPACE (code 243).
    return any(sign in text for sign in ("No space left on device", "Disk quota exceeded", "NOT_ENOUGH_SPACE"))


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
