"""GetTimeSeriesServiceStatistics through boto3, on each store: the service graph's statistics, minute by minute.

Planted with PutTraceSegments, in two whole minutes (both inside one two-minute period):

* minute 0: ts-api answers three requests: ok in 0.2 s and 0.3 s, a fault (500) in 1.0 s.
* minute 1: ts-api answers a 404 (an error) in 0.1 s, a 429 (an error and a throttle) in 0.05 s, and an ok in
  0.4 s during which it called ts-worker, which faulted in 0.25 s.
"""

from __future__ import annotations

import json
import time
from typing import Any, Iterator

import botocore.exceptions
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

#: The first minute, aligned to two minutes so that Period=120 holds both minutes in one bucket.
BASE = int(time.time()) // 120 * 120 - 600


def _tid(n: int) -> str:
    return f"1-{BASE:08x}-{n:024x}"


def _seg(n: int, sid: str, name: str, start: float, seconds: float, **extra: Any) -> dict[str, Any]:
    return {"trace_id": _tid(n), "id": sid, "name": name, "start_time": BASE + start,
            "end_time": BASE + start + seconds, **extra}


def _status(code: int) -> dict[str, Any]:
    return {"request": {"method": "GET", "url": "https://ts.example.com/"}, "response": {"status": code}}


DOCS = [
    _seg(1, "1000000000000001", "ts-api", 5, 0.2, http=_status(200)),
    _seg(2, "2000000000000001", "ts-api", 10, 0.3, http=_status(200)),
    _seg(3, "3000000000000001", "ts-api", 20, 1.0, fault=True, http=_status(500)),
    _seg(4, "4000000000000001", "ts-api", 65, 0.1, error=True, http=_status(404)),
    _seg(5, "5000000000000001", "ts-api", 70, 0.05, error=True, throttle=True, http=_status(429)),
    _seg(6, "6000000000000001", "ts-api", 80, 0.4, http=_status(200)),
    _seg(6, "6000000000000002", "ts-worker", 80.1, 0.25, fault=True, parent_id="6000000000000001"),
]
WINDOW = {"StartTime": BASE - 300, "EndTime": BASE + 300}


@pytest.fixture(scope="module")
def planted(xray: Any) -> Iterator[Any]:
    assert xray.put_trace_segments(TraceSegmentDocuments=[json.dumps(d) for d in DOCS])["UnprocessedTraceSegments"] == []
    yield xray


def _stats(ok: int, error: int, throttle: int, fault: int, total: int, response: float) -> dict[str, Any]:
    return {"OkCount": ok, "ErrorStatistics": {"ThrottleCount": throttle, "OtherCount": error,
                                               "TotalCount": throttle + error},
            "FaultStatistics": {"OtherCount": fault, "TotalCount": fault},
            "TotalCount": total, "TotalResponseTime": pytest.approx(response, abs=1e-3)}


def _series(xray: Any, **kwargs: Any) -> list[dict[str, Any]]:
    answer = xray.get_time_series_service_statistics(**WINDOW, **kwargs)
    assert answer["ContainsOldGroupVersions"] is False
    assert "NextToken" not in answer
    return answer["TimeSeriesServiceStatistics"]


def _at(entry: dict[str, Any]) -> float:
    return entry["Timestamp"].timestamp()


def test_a_services_statistics_minute_by_minute(planted: Any) -> None:
    series = _series(planted, EntitySelectorExpression='service("ts-api")')
    assert [_at(e) for e in series] == [BASE, BASE + 60]
    first, second = series
    assert first["ServiceSummaryStatistics"] == _stats(ok=2, error=0, throttle=0, fault=1, total=3, response=1.5)
    assert second["ServiceSummaryStatistics"] == _stats(ok=1, error=1, throttle=1, fault=0, total=3, response=0.55)
    assert "EdgeSummaryStatistics" not in first and "ServiceForecastStatistics" not in first
    assert [(h["Value"], h["Count"]) for h in first["ResponseTimeHistogram"]] == [(0.2, 1), (0.3, 1), (1.0, 1)]


def test_a_longer_period_adds_the_minutes_up_and_agrees_with_the_service_graph(planted: Any) -> None:
    [bucket] = _series(planted, EntitySelectorExpression='service("ts-api")', Period=120)
    assert _at(bucket) == BASE
    assert bucket["ServiceSummaryStatistics"] == _stats(ok=3, error=1, throttle=1, fault=1, total=6, response=2.05)
    graph = planted.get_service_graph(**WINDOW)["Services"]
    [api] = [s for s in graph if s["Name"] == "ts-api"]
    assert bucket["ServiceSummaryStatistics"] == api["SummaryStatistics"]


def test_an_id_selector_and_a_service_that_only_faulted(planted: Any) -> None:
    [worker] = _series(planted, EntitySelectorExpression='id(name: "ts-worker", type: "AWS::Service")')
    assert _at(worker) == BASE + 60
    assert worker["ServiceSummaryStatistics"] == _stats(ok=0, error=0, throttle=0, fault=1, total=1, response=0.25)
    assert _series(planted, EntitySelectorExpression='service("nobody")') == []


def test_edges_without_a_selector_and_one_edge_by_name(planted: Any) -> None:
    # No selector: every edge -- the client's requests to ts-api, and ts-api's call to ts-worker.
    every = _series(planted)
    assert [(_at(e), e["EdgeSummaryStatistics"]["TotalCount"]) for e in every] == [(BASE, 3), (BASE + 60, 4)]
    assert "ServiceSummaryStatistics" not in every[0]
    [call] = _series(planted, EntitySelectorExpression='edge("ts-api", "ts-worker")')
    assert _at(call) == BASE + 60
    assert call["EdgeSummaryStatistics"] == _stats(ok=0, error=0, throttle=0, fault=1, total=1, response=0.25)


def test_a_group_limits_the_traces_counted(planted: Any) -> None:
    planted.create_group(GroupName="ts-faults", FilterExpression="fault")
    [faulted] = _series(planted, GroupName="ts-faults", EntitySelectorExpression='service("ts-api")')
    assert _at(faulted) == BASE
    assert faulted["ServiceSummaryStatistics"] == _stats(ok=0, error=0, throttle=0, fault=1, total=1, response=1.0)
    arn = planted.create_group(GroupName="ts-worker-calls", FilterExpression='service("ts-worker")')["Group"]["GroupARN"]
    [called] = _series(planted, GroupARN=arn, EntitySelectorExpression='service("ts-api")')
    assert _at(called) == BASE + 60
    assert called["ServiceSummaryStatistics"] == _stats(ok=1, error=0, throttle=0, fault=0, total=1, response=0.4)


def test_forecasts_are_asked_for_and_not_given(planted: Any) -> None:
    series = _series(planted, EntitySelectorExpression='service("ts-api")', ForecastStatistics=True)
    assert len(series) == 2 and all("ServiceForecastStatistics" not in e for e in series)


@pytest.mark.parametrize("kwargs", [
    {"Period": 30}, {"Period": 90}, {"Period": 0}, {"Period": -60},
    {"EntitySelectorExpression": 'service("ts-api"'},
    {"EntitySelectorExpression": "fault"},
    {"EntitySelectorExpression": 'service("ts-api") or edge("ts-api", "ts-worker")'},
    {"GroupName": "no-such-group"},
    {"NextToken": "not-a-token"},
])
def test_bad_input_is_an_invalid_request(planted: Any, kwargs: dict[str, Any]) -> None:
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        planted.get_time_series_service_statistics(**WINDOW, **kwargs)
    assert caught.value.response["Error"]["Code"] == "InvalidRequestException", kwargs
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert caught.value.response["Error"]["Message"]


def test_end_before_start_is_an_invalid_request(planted: Any) -> None:
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        planted.get_time_series_service_statistics(StartTime=BASE + 300, EndTime=BASE - 300)
    assert caught.value.response["Error"]["Code"] == "InvalidRequestException"


SELECTOR_TOKENS = ['service("ts-api")', 'edge("ts-api", "ts-worker")', 'id(name: "ts-api")', 'id(type: "AWS::Service")',
                   "service(", "edge(", "id(", "service()", "{", "}", "fault", "ok", "responsetime > 1", "coverage",
                   "group.name", '"ts-faults"', "rootcause.fault.service", "AND", "OR", "NOT", "!", "(", ")", "=", ","]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(SELECTOR_TOKENS), min_size=1, max_size=8).map(" ".join) | st.text(min_size=1, max_size=30),
       st.sampled_from([None, 60, 120, 61, 3600]))
def test_any_selector_and_period_get_an_answer_or_invalid_request(planted: Any, selector: str, period: int | None) -> None:
    kwargs: dict[str, Any] = {"EntitySelectorExpression": selector}
    if period is not None:
        kwargs["Period"] = period
    try:
        answer = planted.get_time_series_service_statistics(**WINDOW, **kwargs)
    except botocore.exceptions.ClientError as exc:
        assert exc.response["ResponseMetadata"]["HTTPStatusCode"] == 400, (selector, period, exc.response)
        assert exc.response["Error"]["Code"] == "InvalidRequestException", (selector, period, exc.response)
        return
    assert period in (None, 60, 120, 3600)
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_next_token_pages_through_more_minutes_than_one_page_holds(planted: Any) -> None:
    # A day and a minute of ts-paged, one request a minute, well before the other tests' window.
    first = BASE - 86400 - 1200
    docs = [json.dumps({"trace_id": f"1-{first + k * 60:08x}-{0xF00000 + k:024x}", "id": f"f{k:015x}",
                        "name": "ts-paged", "start_time": first + k * 60 + 1, "end_time": first + k * 60 + 1.5})
            for k in range(1441)]
    for i in range(0, len(docs), 500):
        assert planted.put_trace_segments(TraceSegmentDocuments=docs[i:i + 500])["UnprocessedTraceSegments"] == []
    window = {"StartTime": first, "EndTime": first + 1441 * 60, "EntitySelectorExpression": 'service("ts-paged")'}
    pages = [planted.get_time_series_service_statistics(**window)]
    while "NextToken" in pages[-1]:
        pages.append(planted.get_time_series_service_statistics(**window, NextToken=pages[-1]["NextToken"]))
    assert [len(p["TimeSeriesServiceStatistics"]) for p in pages] == [1440, 1]
    entries = [e for p in pages for e in p["TimeSeriesServiceStatistics"]]
    assert [_at(e) for e in entries] == [first + k * 60 for k in range(1441)]
    assert all(e["ServiceSummaryStatistics"]["OkCount"] == 1 for e in entries)
    with pytest.raises(botocore.exceptions.ClientError) as caught:  # a token of another question
        planted.get_time_series_service_statistics(**{**window, "Period": 120}, NextToken=pages[0]["NextToken"])
    assert caught.value.response["Error"]["Code"] == "InvalidRequestException"
