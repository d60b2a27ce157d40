"""Query specs, their results, the history of runs and saved queries -- kept by the meta store's ``queries``.

Specs get the id Honeycomb would give the same spec twice: a digest of the
environment, dataset and canonical JSON, so re-creating a query is free.
Results are kept (the Query Data API fetches them by id) but pruned to the
newest ``KEEP_RESULTS`` per environment.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

from apiary.query import result_json
from apiary.store.meta_queries import QueryRows

KEEP_RESULTS = 200


def canonical(spec: dict[str, Any]) -> str:
    return json.dumps(spec, sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True)
class StoredQuery:
    id: str
    dataset: str
    spec: dict[str, Any]


class QueryBook:
    def __init__(self, rows: QueryRows) -> None:
        self.rows = rows

    # -- specs and results ----------------------------------------------------------------------

    def add_spec(self, env: str, dataset: str, spec: dict[str, Any]) -> str:
        text = canonical(spec)
        qid = hashlib.sha256(f"{env}\0{dataset}\0{text}".encode()).hexdigest()[:12]
        self.rows.add_spec(env, qid, dataset, text, time.time())
        return qid

    def spec(self, env: str, qid: str) -> StoredQuery | None:
        row = self.rows.spec(env, qid)
        return StoredQuery(row[0], row[1], json.loads(row[2])) if row else None

    def add_result(self, env: str, dataset: str, qid: str, data_json: bytes) -> str:
        """Keep a result's JSON (``result_json.dumps`` of its data); returns its id."""
        rid = secrets.token_hex(6)
        self.rows.add_result(env, rid, dataset, qid, data_json.decode(), time.time(), KEEP_RESULTS)
        return rid

    def result(self, env: str, rid: str) -> tuple[str, str, result_json.Stored] | None:
        """Dataset, query id and the result's JSON, kept as text: it is sent as it was stored."""
        row = self.rows.result(env, rid)
        return (row[0], row[1], result_json.Stored(row[2])) if row else None

    # -- history --------------------------------------------------------------------------------

    def record_run(self, env: str, dataset: str, qid: str, spec: dict[str, Any], elapsed_ms: float,
                   result_rows: int | None, error: str | None = None) -> None:
        self.rows.add_run(env, dataset, qid, canonical(spec), time.time(), elapsed_ms, result_rows, error)

    def history(self, env: str, limit: int = 50) -> list[dict[str, Any]]:
        return [{"id": r[0], "dataset": r[1], "query_id": r[2], "query": json.loads(r[3]), "ran_at": r[4],
                 "elapsed_ms": round(r[5], 3), "result_rows": r[6], "error": r[7]} for r in self.rows.runs(env, limit)]

    # -- saved queries --------------------------------------------------------------------------

    def save(self, env: str, name: str, dataset: str, spec: dict[str, Any]) -> None:
        self.rows.save(env, name, dataset, canonical(spec), time.time())

    def saved(self, env: str, name: str | None = None) -> list[dict[str, Any]]:
        return [{"name": r[0], "dataset": r[1], "query": json.loads(r[2]), "created_at": r[3], "updated_at": r[4]}
                for r in self.rows.saved(env, name)]

    def delete(self, env: str, name: str) -> bool:
        return self.rows.remove_saved(env, name)
