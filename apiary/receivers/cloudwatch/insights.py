"""Logs Insights jobs: ``StartQuery`` runs a compiled query in the background, ``GetQueryResults`` reads its state.

The query language is compiled by ``apiary.query.insights`` for the log
store's dialect; this module owns only what CloudWatch's API adds around
it: a query id, the Running/Complete/Failed/Cancelled states, and results
as lists of ``{"field", "value"}`` strings. A `Registry` belongs to one
server (its state), so two servers in one process never see each other's
queries.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from apiary.query.insights import Compiled, to_sql
from apiary.store.base import LogStore

log = logging.getLogger(__name__)


def _text(v: Any) -> str | None:
    """A value as Insights shows every value: a string (booleans as 1 and 0, whole numbers without a point)."""
    if v is None:
        return None
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, datetime):
        return v.strftime("%Y-%m-%d %H:%M:%S.") + f"{v.microsecond // 1000:03d}"
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() else repr(v)
    return str(v)


@dataclass
class Query:
    id: str
    env: str
    text: str
    groups: list[str]
    started: float = field(default_factory=time.time)
    status: str = "Running"
    results: list[list[dict[str, str]]] = field(default_factory=list)
    statistics: dict[str, float] = field(default_factory=lambda: {"recordsMatched": 0.0, "recordsScanned": 0.0,
                                                                   "bytesScanned": 0.0})
    error: str | None = None
    done: threading.Event = field(default_factory=threading.Event)

    async def wait(self, timeout: float) -> None:
        if not self.done.is_set():
            await asyncio.to_thread(self.done.wait, timeout)

    def stop(self) -> bool:
        if self.status != "Running":
            return False
        self.status = "Cancelled"
        self.done.set()
        return True

    def response(self) -> dict[str, Any]:
        return {"status": self.status, "results": self.results if self.status == "Complete" else [],
                "statistics": self.statistics}

    def summary(self) -> dict[str, Any]:
        return {"queryId": self.id, "queryString": self.text, "status": self.status,
                "createTime": int(self.started * 1000), "logGroupName": self.groups[0] if self.groups else ""}


class Registry:
    """Running and finished queries of this process; the oldest are forgotten past ``keep``."""

    def __init__(self, keep: int = 500) -> None:
        self._queries: dict[str, Query] = {}
        self._keep = keep
        self._lock = threading.Lock()

    def start(self, env: str, logs: LogStore, groups: list[str], start_s: int, end_s: int, compiled: Compiled) -> str:
        q = Query(str(uuid.uuid4()), env, compiled.text, groups)
        with self._lock:
            self._queries[q.id] = q
            while len(self._queries) > self._keep:
                self._queries.pop(next(iter(self._queries)))
        sql, params, counts_sql, counts_params = to_sql(compiled, env, groups, start_s, end_s)

        def run() -> None:
            try:
                table = logs.query(sql, params)
                counts = logs.query(counts_sql, counts_params).to_pylist()[0]
                rows = table.to_pylist()
                results = [[{"field": k, "value": t} for k, v in r.items() if (t := _text(v)) is not None] for r in rows]
            except Exception as exc:  # noqa: BLE001 - reported as the query's status
                log.warning("Insights query %s failed: %s", q.id, exc)
                if q.status == "Running":
                    q.status, q.error = "Failed", str(exc)
                q.done.set()
                return
            if q.status != "Running":
                return
            q.results = results
            q.statistics = {"recordsMatched": float(counts["matched"]), "recordsScanned": float(counts["scanned"]),
                            "bytesScanned": float(counts["size"])}
            q.status = "Complete"
            q.done.set()

        threading.Thread(target=run, name=f"insights-{q.id[:8]}", daemon=True).start()
        return q.id

    def get(self, env: str, query_id: str) -> Query | None:
        q = self._queries.get(query_id)
        return q if q is not None and q.env == env else None

    def list(self, env: str) -> list[Query]:
        return [q for q in list(self._queries.values()) if q.env == env]


