"""Sampling: the guides' rule (reservoir 5/s, fixed rate 0.1), served to the real SDK over the daemon's TCP side.

Decisions are counted over simulated seconds with a seeded random source, so the
figures are exact and the test never waits on a timer.
"""

from __future__ import annotations

import json
import random
from typing import Any

import botocore.exceptions
from aws_xray_sdk.core.sampling.connector import ServiceConnector
from aws_xray_sdk.core.sampling.sampler import DefaultSampler

from apiary.sampling.decide import Sampler
from apiary.sampling.rules import SamplingRule, wildcard
from tests.server import ApiaryProcess
from tests.xray.conftest import XRAY_JSON

#: Sampling rules and targets read no spans.
STORES = ["duckdb"]

REQUESTS_PER_SECOND = 20
SECONDS = 60


def _create_cruddur_rule(xray: Any) -> None:
    try:
        xray.create_sampling_rule(**json.loads(XRAY_JSON.read_text()))
    except botocore.exceptions.ClientError as exc:
        assert "already exists" in exc.response["Error"]["Message"]


def test_the_sdk_samples_by_apiarys_rule_and_reports_statistics(xray_apiary: ApiaryProcess, xray: Any) -> None:
    _create_cruddur_rule(xray)
    connector = ServiceConnector()
    connector.setup_xray_client("127.0.0.1", xray_apiary.xray_port, None)  # type: ignore[attr-defined]
    rules = connector.fetch_sampling_rules()
    assert [r.name for r in rules] == ["Cruddur", "Default"]

    sampler = DefaultSampler()
    sampler._random = random.Random(20230301)
    sampler._cache.load_rules(rules)
    targets, _ = connector.fetch_sampling_target(rules)
    assert targets["Cruddur"]["quota"] == 5 and targets["Cruddur"]["rate"] == 0.1
    base = int(targets["Cruddur"]["TTL"]) - 10
    sampler._cache.last_updated = base
    cruddur = next(r for r in rules if r.name == "Cruddur")
    # The quota is Apiary's; its TTL is stretched over the simulated minute (the SDK would re-poll every 10 s).
    cruddur.reservoir.load_quota(targets["Cruddur"]["quota"], base + SECONDS, targets["Cruddur"]["interval"])
    cruddur.rate = targets["Cruddur"]["rate"]

    request = {"service": "backend-flask", "host": "localhost:4567", "method": "GET", "path": "/api/activities/home",
               "service_type": ""}
    sampled = 0
    for second in range(SECONDS):
        for _ in range(REQUESTS_PER_SECOND):
            rule = sampler._cache.get_matched_rule(request, base + second)
            assert rule is cruddur
            sampled += bool(sampler._process_matched_rule(rule, base + second))
    reservoir = 5 * SECONDS
    rest = (REQUESTS_PER_SECOND - 5) * SECONDS  # each decided by the fixed rate: Binomial(900, 0.1), sd 9
    assert reservoir + 0.1 * rest - 4 * 9 <= sampled <= reservoir + 0.1 * rest + 4 * 9

    connector.fetch_sampling_target(rules)  # reports the counts, as the SDK's target poller does
    [summary] = [s for s in xray.get_sampling_statistic_summaries()["SamplingStatisticSummaries"]
                 if s["RuleName"] == "Cruddur"]
    assert summary["RequestCount"] == REQUESTS_PER_SECOND * SECONDS
    assert summary["SampledCount"] == sampled


def test_reservoir_is_shared_across_clients(xray_apiary: ApiaryProcess, xray: Any) -> None:
    rule = {**json.loads(XRAY_JSON.read_text())["SamplingRule"], "RuleName": "Shared", "Priority": 9001}
    xray.create_sampling_rule(SamplingRule=rule)
    docs = [{"RuleName": "Shared", "ClientID": c * 24, "Timestamp": 0, "RequestCount": 0, "SampledCount": 0,
             "BorrowCount": 0} for c in "ab"]
    answer = xray.get_sampling_targets(SamplingStatisticsDocuments=docs)
    quotas = [d["ReservoirQuota"] for d in answer["SamplingTargetDocuments"]]
    assert sum(quotas) == 5 and sorted(quotas) == [2, 3]
    assert all(d["FixedRate"] == 0.1 for d in answer["SamplingTargetDocuments"])


def test_apiarys_sampler_counts_exactly() -> None:
    now = [1_700_000_000.0]
    rule = SamplingRule("Cruddur", 9000, 0.1, 5, ServiceName="backend-flask")
    sampler = Sampler([rule], rng=random.Random(1), clock=lambda: now[0])
    sampler.load_target({"RuleName": "Cruddur", "FixedRate": 0.1, "ReservoirQuota": 5, "ReservoirQuotaTTL": now[0] + SECONDS})
    sampled = 0
    for second in range(SECONDS):
        now[0] = 1_700_000_000.0 + second
        for _ in range(REQUESTS_PER_SECOND):
            ok, name = sampler.should_sample(service="backend-flask", method="GET", path="/api/activities/home")
            assert name == "Cruddur"
            sampled += ok
    assert 300 + 90 - 36 <= sampled <= 300 + 90 + 36
    assert sampler.should_sample(service="other")[1] == "Default"


def test_rule_matching_wildcards_and_order() -> None:
    assert wildcard("/api/*", "/api/activities/home") and wildcard("GE?", "GET") and not wildcard("/api/?", "/api/xy")
    assert wildcard("backend-*", "BACKEND-flask")
    rules = sorted([SamplingRule("b", 10, 0.5, 1), SamplingRule("a", 10, 0.5, 1), SamplingRule("z", 1, 0.5, 1)],
                   key=SamplingRule.sort_key)
    assert [r.RuleName for r in rules] == ["z", "a", "b"]
    assert SamplingRule("attrs", 1, 0.1, 1, Attributes={"tenant": "ac*"}).matches(attributes={"tenant": "acme"})
    assert not SamplingRule("attrs", 1, 0.1, 1, Attributes={"tenant": "ac*"}).matches(attributes={})
