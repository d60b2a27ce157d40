"""What every route needs: the stores, the decode pool, the settings, and key checks."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from apiary.receivers.cloudwatch.insights import Registry
from apiary.server.decoding import DecodePool
from apiary.server.settings import Settings
from apiary.store.base import ErrorStore, LogStore, Store
from apiary.store.meta import ApiKey, MetaStore

_CACHE_TTL_S = 30.0


@dataclass
class Apiary:
    settings: Settings
    meta: MetaStore
    store: Store
    pool: DecodePool
    #: The log store (CloudWatch Logs, OTLP logs) and the error store (Rollbar), in the span store's database.
    logs: LogStore | None = None
    errors: ErrorStore | None = None
    #: Logs Insights queries started on this server (StartQuery -> GetQueryResults).
    insights: Registry = field(default_factory=Registry)
    _key_cache: dict[str, tuple[float, ApiKey]] = field(default_factory=dict)

    def authenticate(self, key: str | None) -> ApiKey | None:
        """The key's record, or None; known keys are cached briefly, unknown ones always re-checked."""
        if not key:
            return None
        now = time.monotonic()
        hit = self._key_cache.get(key)
        if hit and now - hit[0] < _CACHE_TTL_S:
            return hit[1]
        found = self.meta.lookup(key)
        if found is not None:
            if len(self._key_cache) > 10_000:
                self._key_cache.clear()
            self._key_cache[key] = (now, found)
        return found
