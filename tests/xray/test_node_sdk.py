"""The Node.js X-Ray SDK (`aws-xray-sdk-core` from the npm registry) samples by the guides' rule served by Apiary.

That SDK drops, without a word, every rule whose `Attributes` is missing from `GetSamplingRules` (AWS always sends
`{}`), and then samples locally: the rule created with `aws xray create-sampling-rule` would have no effect.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta, timezone
from typing import Any

from tests.node_clients import run_node
from tests.server import ApiaryProcess
from tests.xray.conftest import XRAY_JSON, eventually

#: Sampling rules and their statistics read no spans.
STORES = ["duckdb"]
REQUESTS = 20


def test_the_node_sdk_loads_the_guides_rule_and_reports_its_counts(xray_apiary: ApiaryProcess, xray: Any) -> None:
    rule = {**json.loads(XRAY_JSON.read_text())["SamplingRule"], "RuleName": "CruddurNode", "Priority": 8000}
    xray.create_sampling_rule(SamplingRule=rule)
    start = datetime.now(timezone.utc) - timedelta(minutes=1)
    env = {**os.environ, "AWS_XRAY_DAEMON_ADDRESS": f"127.0.0.1:{xray_apiary.xray_port}"}  # type: ignore[attr-defined]
    run_node("xray_sampling.js", str(REQUESTS), "13", env=env)

    summaries = {s["RuleName"]: s for s in xray.get_sampling_statistic_summaries()["SamplingStatisticSummaries"]}
    assert "CruddurNode" in summaries, f"the SDK reported no counts for the rule: {sorted(summaries)}"
    counted = summaries["CruddurNode"]
    assert counted["RequestCount"] == REQUESTS
    recorded = counted["SampledCount"] + counted["BorrowCount"]  # this SDK counts a borrowed decision apart
    assert 1 <= recorded <= REQUESTS

    def home_traces() -> list[dict[str, Any]]:
        found = xray.get_trace_summaries(StartTime=start, EndTime=datetime.now(timezone.utc) + timedelta(minutes=1),
                                         FilterExpression='service("backend-flask")')["TraceSummaries"]
        home = [t for t in found if t.get("Http", {}).get("HttpURL", "").endswith("/api/activities/home")]
        return home if len(home) >= recorded else []

    assert len(eventually(home_traces)) == recorded  # exactly the requests the rule sampled were sent
