"""Environments and API keys in ClickHouse, so every Apiary node sharing the database sees the same keys.

Same methods as `apiary.store.meta.MetaStore`. Rows are immutable and
ReplacingMergeTree collapses a key or environment written twice, so two nodes
creating the same environment at once end with one. Keys are stored as
SHA-256 digests, as in SQLite.

Other modules' small tables (X-Ray groups and sampling rules and their tags, resource policies, indexing
rules, trace retrievals, query history,
saved queries) are the same named repositories as `MetaStore`'s, over the
SQLite file on this node (``local``): they are not shared between nodes yet.
"""

from __future__ import annotations

import secrets
import time
from datetime import datetime, timezone
from typing import Any, Iterator

from apiary.store.clickhouse.client import Client
from apiary.store.meta import ApiKey, MetaStore, digest, new_key
from apiary.store.meta_groups import XRayGroupRows
from apiary.store.meta_indexing import XRayIndexingRows
from apiary.store.meta_policies import XRayPolicyRows
from apiary.store.meta_queries import QueryRows
from apiary.store.meta_retrievals import XRayRetrievalRows
from apiary.store.meta_sampling import SamplingRuleRows, SamplingStatRows
from apiary.store.meta_tags import XRayTagRows


class ClickHouseMeta:
    def __init__(self, client: Client, local: MetaStore | None = None) -> None:
        self.client = client
        self.local = local
        client.command("""CREATE TABLE IF NOT EXISTS environments (name String, created_at Float64)
                          ENGINE = ReplacingMergeTree ORDER BY name""")
        client.command("""CREATE TABLE IF NOT EXISTS api_keys (digest String, id UInt64, environment String, hint String,
                          can_read UInt8, created_at Float64) ENGINE = ReplacingMergeTree ORDER BY digest""")

    # -- environments and keys -------------------------------------------------------------------

    def environments(self) -> list[str]:
        t = self.client.query_arrow("SELECT name, min(created_at) AS c FROM environments GROUP BY name ORDER BY c, name")
        return t.column("name").to_pylist()

    def create_environment(self, name: str) -> bool:
        """True when it was new."""
        if name in self.environments():
            return False
        self.client.command("INSERT INTO environments VALUES ({n:String}, {t:Float64})", {"n": name, "t": time.time()})
        return True

    def create_key(self, environment: str, *, can_read: bool = True) -> str:
        """Create the environment if new, store a key's digest, and return the key (the only time it is seen)."""
        key = new_key()
        self.create_environment(environment)
        now = time.time()
        key_id = int(now * 1_000_000) * 1000 + secrets.randbelow(1000)  # ordered by creation, unique across nodes
        self.client.command("INSERT INTO api_keys VALUES ({d:String}, {i:UInt64}, {e:String}, {h:String}, {r:UInt8}, {t:Float64})",
                            {"d": digest(key), "i": key_id, "e": environment, "h": key[:6], "r": int(can_read), "t": now})
        return key

    def keys(self, environment: str | None = None) -> list[ApiKey]:
        sql = "SELECT id, environment, hint, can_read, created_at FROM api_keys FINAL"
        t = (self.client.query_arrow(sql + " WHERE environment = {e:String} ORDER BY id", {"e": environment}) if environment
             else self.client.query_arrow(sql + " ORDER BY environment, id"))
        return [_key(r) for r in t.to_pylist()]

    def lookup(self, key: str) -> ApiKey | None:
        rows = self.client.query_arrow("SELECT id, environment, hint, can_read, created_at FROM api_keys FINAL "
                                       "WHERE digest = {d:String}", {"d": digest(key)}).to_pylist()
        return _key(rows[0]) if rows else None

    def iter_environment_keys(self) -> Iterator[tuple[str, ApiKey]]:
        for k in self.keys():
            yield k.environment, k

    # -- other modules' tables (node-local for now) -----------------------------------------------

    def _local_meta(self) -> MetaStore:
        if self.local is None:
            raise RuntimeError("no local metadata file for this ClickHouse metadata store")
        return self.local

    @property
    def sampling_rules(self) -> SamplingRuleRows:
        return self._local_meta().sampling_rules

    @property
    def sampling_stats(self) -> SamplingStatRows:
        return self._local_meta().sampling_stats

    @property
    def xray_groups(self) -> XRayGroupRows:
        return self._local_meta().xray_groups

    @property
    def xray_tags(self) -> XRayTagRows:
        return self._local_meta().xray_tags

    @property
    def xray_policies(self) -> XRayPolicyRows:
        return self._local_meta().xray_policies

    @property
    def xray_indexing(self) -> XRayIndexingRows:
        return self._local_meta().xray_indexing

    @property
    def xray_retrievals(self) -> XRayRetrievalRows:
        return self._local_meta().xray_retrievals

    @property
    def queries(self) -> QueryRows:
        return self._local_meta().queries

def _key(r: dict[str, Any]) -> ApiKey:
    return ApiKey(int(r["id"]), r["environment"], r["hint"], bool(r["can_read"]),
                  datetime.fromtimestamp(r["created_at"], timezone.utc))
