"""Sampling targets: each rule's reservoir shared out across the SDK clients that report on it.

Every ``interval`` seconds an SDK reports, per rule, how many requests it saw,
sampled and borrowed, and gets back a target: the rule's fixed rate and its
share of the reservoir (``ReservoirQuota`` per second, valid until
``ReservoirQuotaTTL``). Clients heard from within the last two intervals
share the reservoir; the quotas add up to the rule's ``ReservoirSize``.
Reported statistics are kept per rule by the meta store's ``sampling_stats``.
"""

from __future__ import annotations

import time
from typing import Any, Callable

from apiary.sampling.rules import RuleStore
from apiary.store.meta_sampling import SamplingStatRows, StatRow

INTERVAL_S = 10
#: Statistics older than this are not summarised (AWS shows recent windows only).
SUMMARY_WINDOW_S = 3600


class SamplingTargets:
    def __init__(self, stats: SamplingStatRows, rules: RuleStore, clock: Callable[[], float] = time.time,
                 interval: int = INTERVAL_S) -> None:
        self.stats = stats
        self.rules = rules
        self.clock = clock
        self.interval = interval
        #: (env, rule) -> client id -> last report time
        self._clients: dict[tuple[str, str], dict[str, float]] = {}

    def report(self, env: str, documents: list[dict[str, Any]]) -> dict[str, Any]:
        """GetSamplingTargets: keep the statistics, answer a target per known rule reported on."""
        now = self.clock()
        rules = {r.rule.RuleName: r for r in self.rules.list(env)}
        targets: list[dict[str, Any]] = []
        unprocessed: list[dict[str, str]] = []
        rows: list[StatRow] = []
        for doc in documents:
            name, client = doc.get("RuleName"), doc.get("ClientID")
            if name not in rules:
                unprocessed.append({"RuleName": str(name), "ErrorCode": "400", "Message": f"no sampling rule named {name!r}"})
                continue
            if not isinstance(client, str) or not client:
                unprocessed.append({"RuleName": name, "ErrorCode": "400", "Message": "ClientID is required"})
                continue
            counts = [doc.get(k) or 0 for k in ("RequestCount", "SampledCount", "BorrowCount")]
            if not all(isinstance(c, int) and c >= 0 for c in counts):
                unprocessed.append({"RuleName": name, "ErrorCode": "400", "Message": "counts must be non-negative integers"})
                continue
            rows.append((env, name, client, now, counts[0], counts[1], counts[2]))
            self._clients.setdefault((env, name), {})[client] = now
        # Quotas once every report of this call is counted, so clients reporting together share alike.
        for _env, name, client, *_ in rows:
            active = self._clients[(env, name)]
            for other, seen in list(active.items()):
                if now - seen > 2 * self.interval:
                    del active[other]
            rule = rules[name].rule
            targets.append({"RuleName": name, "FixedRate": rule.FixedRate,
                            "ReservoirQuota": self.quota(rule.ReservoirSize, sorted(active), client),
                            "ReservoirQuotaTTL": now + self.interval, "Interval": self.interval})
        if rows:
            self.stats.add(rows)
        return {"SamplingTargetDocuments": targets, "LastRuleModification": self.rules.last_modified(env),
                "UnprocessedStatistics": unprocessed}

    @staticmethod
    def quota(size: int, clients: list[str], client: str) -> int:
        """An equal share; the first ``size % n`` clients (by id) take one more, so shares sum to ``size``."""
        n = max(1, len(clients))
        rank = clients.index(client) if client in clients else 0
        return size // n + (1 if rank < size % n else 0)

    def summaries(self, env: str) -> list[dict[str, Any]]:
        """GetSamplingStatisticSummaries: per rule, the counts reported within the last hour."""
        since = self.clock() - SUMMARY_WINDOW_S
        return [{"RuleName": r, "Timestamp": ts, "RequestCount": req, "BorrowCount": bor, "SampledCount": smp}
                for r, ts, req, bor, smp in self.stats.totals_since(env, since)]
