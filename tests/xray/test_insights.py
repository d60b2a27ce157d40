"""X-Ray Insights through boto3, on each store: fault anomalies found in the spans Apiary holds.

Planted with PutTraceSegments in five-minute windows (the detector's), ten traces a window, each an entry
service's segment calling a backend's segment:

* shop -> payments: half an hour of calm (60 requests, enough of a baseline), then three windows in which payments faults in 6 of 10 requests (shop faults
  with it), then calm again -- one insight naming payments, CLOSED;
* store -> ledger: half an hour of calm, then ledger faults in 6 of 10 requests in the last window and the current
  one -- one insight naming ledger, still ACTIVE;
* steady -> inventory: 2 faults in 10 every window -- no insight.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Any, Iterator

import botocore.exceptions
import pytest

W = 300
NOW = time.time()
#: The start of the current window.
BASE = int(NOW) // W * W
SINCE = BASE - 6 * 3600
UNTIL = int(NOW) + 60
_count = iter(range(1, 1_000_000))


def _trace(entry: str, backend: str, start: float, fault: bool) -> list[dict[str, Any]]:
    n = next(_count)
    tid = f"1-{int(start):08x}-{n:024x}"
    root, child = f"{n:016x}", f"{n + 0x1000000:016x}"
    flags = {"fault": True} if fault else {}
    status = 500 if fault else 200
    http = {"request": {"method": "GET", "url": f"https://{entry}.example.com/"}, "response": {"status": status}}
    return [{"trace_id": tid, "id": root, "name": entry, "start_time": start, "end_time": start + 0.05,
             "http": http, **flags},
            {"trace_id": tid, "id": child, "parent_id": root, "name": backend, "start_time": start + 0.01,
             "end_time": start + 0.04, **flags}]


def _windows(entry: str, backend: str, first: int, faults: list[int]) -> list[dict[str, Any]]:
    """Ten traces in each window from ``first`` (a window start), the first ``faults[i]`` of window i faulting;
    the current window's traces all start before now."""
    docs = []
    for i, bad in enumerate(faults):
        start = first + i * W
        span = min(W - 20, max(NOW - start - 1, 0.0))
        for j in range(10):
            docs += _trace(entry, backend, start + span * j / 10, j < bad)
    return docs


CLOSED = {"StartTime": BASE - 5 * W, "EndTime": BASE - 2 * W}
ACTIVE_START = BASE - W


@pytest.fixture(scope="module")
def planted(xray: Any) -> Iterator[Any]:
    docs = (_windows("shop", "payments", BASE - 11 * W, [0] * 6 + [6, 6, 6] + [0, 0])
            + _windows("store", "ledger", BASE - 7 * W, [0] * 6 + [6, 6])
            + _windows("steady", "inventory", BASE - 7 * W, [2] * 8))
    for i in range(0, len(docs), 300):
        answer = xray.put_trace_segments(TraceSegmentDocuments=[json.dumps(d) for d in docs[i:i + 300]])
        assert answer["UnprocessedTraceSegments"] == []
    for name, expression, enabled in (("shop-insights", 'service("shop")', True),
                                      ("shop-quiet", 'service("shop")', False),
                                      ("store-insights", 'service("store")', True),
                                      ("steady-insights", 'service("steady")', True)):
        xray.create_group(GroupName=name, FilterExpression=expression,
                          InsightsConfiguration={"InsightsEnabled": enabled})
    yield xray


def _summaries(xray: Any, group: str, **kwargs: Any) -> list[dict[str, Any]]:
    answer = xray.get_insight_summaries(GroupName=group, StartTime=SINCE, EndTime=UNTIL, **kwargs)
    assert "NextToken" not in answer
    return answer["InsightSummaries"]


def _epoch(t: datetime) -> int:
    return int(t.timestamp())


def _stats(total: int, faults: int) -> dict[str, int]:
    return {"TotalCount": total, "FaultCount": faults, "OkCount": total - faults}


def test_a_fault_rise_that_ended_is_one_closed_insight_naming_its_root_cause(planted: Any) -> None:
    [insight] = _summaries(planted, "shop-insights")
    payments = {"Name": "payments", "Names": ["payments"], "Type": "AWS::Service"}
    assert insight["RootCauseServiceId"] == payments
    assert insight["TopAnomalousServices"] == [{"ServiceId": payments}]
    assert (insight["State"], insight["Categories"], insight["GroupName"]) == ("CLOSED", ["FAULT"], "shop-insights")
    assert (_epoch(insight["StartTime"]), _epoch(insight["EndTime"])) == (CLOSED["StartTime"], CLOSED["EndTime"])
    # Three windows of 10 requests, 6 of them faults: payments' own, and the shop's traces they broke.
    assert insight["RootCauseServiceRequestImpactStatistics"] == _stats(30, 18)
    assert insight["ClientRequestImpactStatistics"] == _stats(30, 18)
    assert "payments" in insight["Summary"]
    again = planted.get_insight(InsightId=insight["InsightId"])["Insight"]
    assert again["InsightId"] == insight["InsightId"]
    assert {k: v for k, v in insight.items() if k != "LastUpdateTime"} == again

    events = planted.get_insight_events(InsightId=insight["InsightId"], MaxResults=3)
    rest = planted.get_insight_events(InsightId=insight["InsightId"], MaxResults=3, NextToken=events["NextToken"])
    assert "NextToken" not in rest
    timeline = events["InsightEvents"] + rest["InsightEvents"]
    assert [_epoch(e["EventTime"]) for e in timeline] == [BASE - 4 * W, BASE - 3 * W, BASE - 2 * W, BASE - W]
    assert [e["RootCauseServiceRequestImpactStatistics"]["FaultCount"] for e in timeline] == [6, 12, 18, 18]
    assert "back within" in timeline[-1]["Summary"]

    graph = planted.get_insight_impact_graph(InsightId=insight["InsightId"], **CLOSED)
    names = {s["ReferenceId"]: s["Name"] for s in graph["Services"]}
    edges = {(s["Name"], names[e["ReferenceId"]]) for s in graph["Services"] for e in s["Edges"]}
    assert sorted(names.values()) == ["client", "payments", "shop"]
    assert edges == {("client", "shop"), ("shop", "payments")}


def test_a_fault_rise_that_lasts_is_active_and_disabled_or_steady_groups_have_none(planted: Any) -> None:
    [insight] = _summaries(planted, "store-insights")
    assert insight["RootCauseServiceId"]["Name"] == "ledger"
    assert insight["State"] == "ACTIVE" and "EndTime" not in insight
    assert _epoch(insight["StartTime"]) == ACTIVE_START
    assert insight["RootCauseServiceRequestImpactStatistics"] == _stats(20, 12)
    assert _summaries(planted, "store-insights", States=["CLOSED"]) == []
    assert _summaries(planted, "shop-quiet") == []
    assert _summaries(planted, "steady-insights") == []


def test_the_default_group_once_its_insights_are_enabled(planted: Any) -> None:
    assert _summaries(planted, "Default") == []
    planted.update_group(GroupName="Default", InsightsConfiguration={"InsightsEnabled": True})
    try:
        found = _summaries(planted, "Default")
        assert [(i["RootCauseServiceId"]["Name"], i["State"]) for i in found] == [("payments", "CLOSED"),
                                                                                 ("ledger", "ACTIVE")]
        first = planted.get_insight_summaries(GroupName="Default", StartTime=SINCE, EndTime=UNTIL, MaxResults=1)
        second = planted.get_insight_summaries(GroupName="Default", StartTime=SINCE, EndTime=UNTIL, MaxResults=1,
                                               NextToken=first["NextToken"])
        assert [i["InsightId"] for i in first["InsightSummaries"] + second["InsightSummaries"]] == \
            [i["InsightId"] for i in found]
        assert [i["RootCauseServiceId"]["Name"] for i in _summaries(planted, "Default", States=["ACTIVE"])] == ["ledger"]
        # The group's own insight and Default's are two insights: the id names the group.
        [shop] = _summaries(planted, "shop-insights")
        assert shop["InsightId"] != found[0]["InsightId"]
    finally:
        planted.update_group(GroupName="Default", InsightsConfiguration={"InsightsEnabled": False})


@pytest.mark.parametrize("call, params, words", [
    ("get_insight", {"InsightId": "5f5e1000-0000-5000-8000-000000000000"}, "not an insight"),
    ("get_insight", {"InsightId": "not-an-insight"}, "UUID"),
    ("get_insight_events", {"InsightId": "5f5e1000-0000-5000-8000-000000000000"}, "not an insight"),
    ("get_insight_summaries", {"StartTime": SINCE, "EndTime": UNTIL}, "GroupName"),
    ("get_insight_summaries", {"GroupName": "nope", "StartTime": SINCE, "EndTime": UNTIL}, "not found"),
    ("get_insight_summaries", {"GroupName": "Default", "StartTime": UNTIL, "EndTime": SINCE}, "after"),
    ("get_insight_summaries", {"GroupName": "Default", "StartTime": BASE - 30 * 86400 - 3600, "EndTime": UNTIL}, "30 days"),
    ("get_insight_summaries", {"GroupName": "Default", "StartTime": SINCE, "EndTime": UNTIL, "MaxResults": 101},
     "MaxResults"),
    ("get_insight_summaries", {"GroupName": "Default", "StartTime": SINCE, "EndTime": UNTIL,
                               "States": ["OPEN"]}, "States"),
    ("get_insight_summaries", {"GroupName": "Default", "StartTime": SINCE, "EndTime": UNTIL,
                               "NextToken": "bm90IG91cnM="}, "NextToken"),
    ("get_insight_impact_graph", {"InsightId": "5f5e1000-0000-5000-8000-000000000000", "StartTime": SINCE,
                                  "EndTime": SINCE + 7 * 3600}, "six hours"),
])
def test_bad_input_answers_in_xrays_words(planted: Any, call: str, params: dict[str, Any], words: str) -> None:
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        getattr(planted, call)(**params)
    error = caught.value.response["Error"]
    assert error["Code"] == "InvalidRequestException" and words in error["Message"], error
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_an_unknown_insight_of_the_right_shape_is_not_one_of_another_time(planted: Any) -> None:
    """An id is checked against the insights of its start: one of an insight with its start changed is unknown."""
    [insight] = _summaries(planted, "shop-insights")
    moved = f"{int(insight['InsightId'][:8], 16) + W:08x}{insight['InsightId'][8:]}"
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        planted.get_insight(InsightId=moved)
    assert caught.value.response["Error"]["Code"] == "InvalidRequestException"
