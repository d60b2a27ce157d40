"""X-Ray sampling rules and the statistics SDKs report on them, as rows of the SQLite metadata store.

`apiary.sampling` validates, matches and shares out reservoirs; these two
repositories only keep what it decided. A rule is kept as its JSON document,
so a new rule field needs no schema change.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from apiary.store.meta import MetaStore

RULES_SCHEMA = """
CREATE TABLE IF NOT EXISTS xray_sampling_rules (
    environment TEXT NOT NULL,
    name TEXT NOT NULL,
    rule TEXT NOT NULL,
    created_at REAL NOT NULL,
    modified_at REAL NOT NULL,
    PRIMARY KEY (environment, name)
);
"""
STATS_SCHEMA = """
CREATE TABLE IF NOT EXISTS xray_sampling_stats (
    environment TEXT NOT NULL,
    rule TEXT NOT NULL,
    client_id TEXT NOT NULL,
    ts REAL NOT NULL,
    requests INTEGER NOT NULL,
    sampled INTEGER NOT NULL,
    borrowed INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS xray_sampling_stats_rule ON xray_sampling_stats (environment, rule, ts);
"""

#: One reported statistic: environment, rule, client id, time, requests, sampled, borrowed.
StatRow = tuple[str, str, str, float, int, int, int]


class SamplingRuleRows:
    """Rules per environment: ``(rule JSON, created_at, modified_at)``."""

    def __init__(self, meta: "MetaStore") -> None:
        self._meta = meta
        meta._script(RULES_SCHEMA)

    def add_if_missing(self, env: str, name: str, rule_json: str, now: float) -> None:
        self._meta._run("INSERT OR IGNORE INTO xray_sampling_rules VALUES (?, ?, ?, ?, ?)", (env, name, rule_json, now, now))

    def all(self, env: str) -> list[tuple[str, float, float]]:
        return [(r[0], r[1], r[2]) for r in self._meta._run(
            "SELECT rule, created_at, modified_at FROM xray_sampling_rules WHERE environment = ?", (env,))]

    def add(self, env: str, name: str, rule_json: str, now: float) -> bool:
        """False when the environment already has a rule of that name (nothing is changed)."""
        return bool(self._meta._run("INSERT OR IGNORE INTO xray_sampling_rules VALUES (?, ?, ?, ?, ?) RETURNING name",
                                    (env, name, rule_json, now, now)))

    def replace(self, env: str, name: str, rule_json: str, now: float) -> None:
        self._meta._run("UPDATE xray_sampling_rules SET rule = ?, modified_at = ? WHERE environment = ? AND name = ?",
                        (rule_json, now, env, name))

    def remove(self, env: str, name: str) -> bool:
        return bool(self._meta._run("DELETE FROM xray_sampling_rules WHERE environment = ? AND name = ? RETURNING name",
                                    (env, name)))


class SamplingStatRows:
    """What SDKs reported per rule (GetSamplingTargets), summed for GetSamplingStatisticSummaries."""

    def __init__(self, meta: "MetaStore") -> None:
        self._meta = meta
        meta._script(STATS_SCHEMA)

    def add(self, rows: list[StatRow]) -> None:
        """Every row of one report in one transaction."""
        self._meta._run_many("INSERT INTO xray_sampling_stats VALUES (?, ?, ?, ?, ?, ?, ?)", rows)

    def totals_since(self, env: str, since: float) -> list[tuple[str, float, int, int, int]]:
        """Per rule, by name: last report time, requests, borrowed, sampled."""
        rows = self._meta._run(
            "SELECT rule, max(ts), sum(requests), sum(borrowed), sum(sampled) FROM xray_sampling_stats "
            "WHERE environment = ? AND ts >= ? GROUP BY rule ORDER BY rule", (env, since))
        return [(r[0], r[1], int(r[2]), int(r[3]), int(r[4])) for r in rows]
