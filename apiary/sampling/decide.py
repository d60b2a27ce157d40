"""A sampling decision as X-Ray defines it: the first matching rule's reservoir, then its fixed rate.

The reservoir grants ``quota`` requests per wall-clock second (its share
from the sampling targets); until a quota arrives, or once its TTL has
passed, a rule with a reservoir may borrow one request per second. Requests
past the reservoir are sampled with probability ``FixedRate``. The clock and
the random source are injected so a scenario can be counted exactly.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from apiary.sampling.rules import SamplingRule, default_rule


@dataclass
class RuleState:
    rule: SamplingRule
    quota: int | None = None
    ttl: float | None = None
    second: int = -1
    taken: int = 0
    borrowed_this_second: int = 0
    requests: int = 0
    sampled: int = 0
    borrowed: int = 0

    def snapshot(self) -> dict[str, int]:
        """Counts since the last snapshot, as GetSamplingTargets wants them reported."""
        out = {"RequestCount": self.requests, "SampledCount": self.sampled, "BorrowCount": self.borrowed}
        self.requests = self.sampled = self.borrowed = 0
        return out


@dataclass
class Sampler:
    rules: list[SamplingRule]
    rng: random.Random = field(default_factory=random.Random)
    clock: Callable[[], float] = time.time
    states: dict[str, RuleState] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not any(r.RuleName == "Default" for r in self.rules):
            self.rules = [*self.rules, default_rule()]
        self.rules.sort(key=SamplingRule.sort_key)
        self.states = {r.RuleName: RuleState(r) for r in self.rules}

    def load_target(self, target: dict[str, Any]) -> None:
        state = self.states.get(target.get("RuleName", ""))
        if state is None:
            return
        if target.get("FixedRate") is not None:
            state.rule.FixedRate = float(target["FixedRate"])
        state.quota = target.get("ReservoirQuota", state.quota)
        state.ttl = target.get("ReservoirQuotaTTL", state.ttl)

    def should_sample(self, **request: Any) -> tuple[bool, str]:
        rule = next(r for r in self.rules if r.matches(**request))
        state = self.states[rule.RuleName]
        now = self.clock()
        second = int(now)
        if second != state.second:
            state.second, state.taken, state.borrowed_this_second = second, 0, 0
        state.requests += 1
        if state.quota is not None and state.ttl is not None and state.ttl >= now:
            if state.taken < state.quota:
                state.taken += 1
                state.sampled += 1
                return True, rule.RuleName
        elif rule.ReservoirSize > 0 and state.borrowed_this_second < 1:
            state.borrowed_this_second += 1
            state.borrowed += 1
            state.sampled += 1
            return True, rule.RuleName
        if self.rng.random() < rule.FixedRate:
            state.sampled += 1
            return True, rule.RuleName
        return False, rule.RuleName
