"""GetTraceSummaries' FaultRootCauses, ErrorRootCauses and ResponseTimeRootCauses, through boto3 on each store.

Each root cause is the path from the trace's entry point down to the span that caused it, cut into the services it
crosses (as GetServiceGraph draws them), in the shapes of botocore's X-Ray model. Our traces, sent with
PutTraceSegments (times on quarter seconds, so the coverages are exact):

* ``fault``: gateway calls orders, which calls payments; payments faults ("card processor timed out") and the
  fault is passed up both calls.
* ``slow``: shop answers in 1 s, 0.75 of which it spent in a DynamoDB call, 0.25 s rendering.
* ``error``: api answers 404 because its lookup subsegment found no user (a 4xx error, no fault).
* ``branches``: portal answers in 2 s; it calls search (1.5 s, which spends 0.25 s on cache and 0.5 s on index)
  and then profile (0.25 s, with no calls of its own). The longest leaf (index, 0.5 s) is not where the slowest
  path ends when a sibling above it was slower: the path goes portal -> search -> index; profile and cache are
  on no response-time root cause.

A response-time root cause is the trace's slowest path: from the entry point, at each span the child that took
longest, down to a span without children -- one root cause per trace.
"""

from __future__ import annotations

import json
import time
from typing import Any, Iterator

import pytest

NOW = float(int(time.time()))


def _tid(n: int) -> str:
    return f"1-{int(NOW):08x}-{n:024x}"


FAULT, SLOW, ERROR, BRANCHES = _tid(0xF1), _tid(0xF2), _tid(0xF3), _tid(0xF4)
EC2 = "AWS::EC2::Instance"
TIMED_OUT = {"type": "TimeoutError", "message": "card processor timed out"}


def _at(seconds: float) -> float:
    return NOW - 60 + seconds


def _doc(tid: str, sid: str, name: str, start: float, end: float, **extra: Any) -> dict[str, Any]:
    return {"trace_id": tid, "id": sid, "name": name, "start_time": _at(start), "end_time": _at(end), **extra}


def _sub(sid: str, name: str, start: float, end: float, **extra: Any) -> dict[str, Any]:
    return {"id": sid, "name": name, "start_time": _at(start), "end_time": _at(end), **extra}


DOCS = [
    _doc(FAULT, "f100000000000001", "gateway", 0, 2.0, origin=EC2, fault=True,
         subsegments=[_sub("f100000000000002", "call orders", 0.25, 1.75, fault=True)]),
    _doc(FAULT, "f100000000000003", "orders", 0.25, 1.75, origin=EC2, fault=True, parent_id="f100000000000002",
         subsegments=[_sub("f100000000000004", "call payments", 0.5, 1.5, fault=True)]),
    _doc(FAULT, "f100000000000005", "payments", 0.5, 1.5, origin=EC2, fault=True, parent_id="f100000000000004",
         cause={"exceptions": [TIMED_OUT]}),
    _doc(SLOW, "f200000000000001", "shop", 0, 1.0, origin=EC2,
         subsegments=[_sub("f200000000000002", "DynamoDB", 0, 0.75, namespace="aws"),
                      _sub("f200000000000003", "render", 0.75, 1.0)]),
    _doc(ERROR, "f300000000000001", "api", 0, 0.5, origin=EC2, error=True,
         http={"request": {"method": "GET", "url": "https://api.example.com/users/42"}, "response": {"status": 404}},
         subsegments=[_sub("f300000000000002", "lookup", 0.25, 0.5, error=True,
                           cause={"exceptions": [{"type": "NotFound", "message": "no user 42"}]})]),
    _doc(BRANCHES, "f400000000000001", "portal", 0, 2.0, origin=EC2,
         subsegments=[_sub("f400000000000002", "call search", 0.0, 1.5, namespace="remote"),
                      _sub("f400000000000003", "profile", 1.5, 1.75)]),
    _doc(BRANCHES, "f400000000000004", "search", 0.0, 1.5, origin=EC2, parent_id="f400000000000002",
         subsegments=[_sub("f400000000000005", "cache", 0.0, 0.25), _sub("f400000000000006", "index", 0.25, 0.75)]),
]


@pytest.fixture(scope="module")
def summaries(xray: Any) -> Iterator[dict[str, dict[str, Any]]]:
    assert xray.put_trace_segments(TraceSegmentDocuments=[json.dumps(d) for d in DOCS])["UnprocessedTraceSegments"] == []
    pages = xray.get_paginator("get_trace_summaries").paginate(StartTime=NOW - 600, EndTime=NOW + 60)
    yield {s["Id"]: s for p in pages for s in p["TraceSummaries"]}


def _service(name: str, entities: list[dict[str, Any]], typ: str = EC2, inferred: bool = False) -> dict[str, Any]:
    return {"Name": name, "Names": [name], "Type": typ, "Inferred": inferred, "EntityPath": entities}


def _failed(name: str, *exceptions: dict[str, str], remote: bool = False) -> dict[str, Any]:
    return {"Name": name, "Exceptions": [{"Name": e["type"], "Message": e["message"]} for e in exceptions],
            "Remote": remote}


def _timed(name: str, coverage: float, remote: bool = False) -> dict[str, Any]:
    return {"Name": name, "Coverage": coverage, "Remote": remote}


def test_a_fault_two_services_down_is_the_fault_root_cause(summaries: dict[str, dict[str, Any]]) -> None:
    s = summaries[FAULT]
    assert s["HasFault"] is True
    assert s["FaultRootCauses"] == [{"Services": [
        _service("gateway", [_failed("gateway"), _failed("call orders")]),
        _service("orders", [_failed("orders"), _failed("call payments")]),
        _service("payments", [_failed("payments", TIMED_OUT)]),
    ]}]
    assert s["ErrorRootCauses"] == []
    # The same path, timed: each span's one child is its slowest; payments took 1 s of the trace's 2.
    assert s["ResponseTimeRootCauses"] == [{"Services": [
        _service("gateway", [_timed("gateway", 1.0), _timed("call orders", 0.75)]),
        _service("orders", [_timed("orders", 0.75), _timed("call payments", 0.5)]),
        _service("payments", [_timed("payments", 0.5)]),
    ]}]


def test_a_slow_downstream_call_is_a_response_time_root_cause(summaries: dict[str, dict[str, Any]]) -> None:
    s = summaries[SLOW]
    assert (s["HasFault"], s["HasError"], s["FaultRootCauses"], s["ErrorRootCauses"]) == (False, False, [], [])
    # The DynamoDB call (an inferred node, remote) took 0.75 s, render 0.25 s: the slowest path ends in DynamoDB.
    assert s["ResponseTimeRootCauses"] == [
        {"Services": [_service("shop", [_timed("shop", 1.0)]),
                      _service("DynamoDB", [_timed("DynamoDB", 0.75, remote=True)], "AWS::DynamoDB", inferred=True)]},
    ]


def test_the_response_time_root_cause_follows_the_slowest_child_at_each_step(
        summaries: dict[str, dict[str, Any]]) -> None:
    s = summaries[BRANCHES]
    # search's call (1.5 s) beat profile (0.25 s); inside search, index (0.5 s) beat cache (0.25 s). The call to
    # search is a remote subsegment, so it is drawn as an inferred node between portal and the search service.
    assert s["ResponseTimeRootCauses"] == [{"Services": [
        _service("portal", [_timed("portal", 1.0)]),
        _service("call search", [_timed("call search", 0.75, remote=True)], "remote", inferred=True),
        _service("search", [_timed("search", 0.75), _timed("index", 0.25)]),
    ]}]


def test_a_4xx_error_is_an_error_root_cause(summaries: dict[str, dict[str, Any]]) -> None:
    s = summaries[ERROR]
    assert (s["HasError"], s["HasFault"], s["Http"]["HttpStatus"]) == (True, False, 404)
    assert s["ErrorRootCauses"] == [{"Services": [
        _service("api", [_failed("api"), _failed("lookup", {"type": "NotFound", "message": "no user 42"})]),
    ]}]
    assert s["FaultRootCauses"] == []
    assert [[e["Name"] for svc in c["Services"] for e in svc["EntityPath"]]
            for c in s["ResponseTimeRootCauses"]] == [["api", "lookup"]]


def test_no_field_apiary_cannot_fill_is_sent(summaries: dict[str, dict[str, Any]]) -> None:
    causes = [c for s in summaries.values()
              for c in s["FaultRootCauses"] + s["ErrorRootCauses"] + s["ResponseTimeRootCauses"]]
    assert causes
    assert not any("ClientImpacting" in c for c in causes)
    assert not any("AccountId" in svc for c in causes for svc in c["Services"])


def _found(xray: Any, expression: str) -> set[str]:
    pages = xray.get_paginator("get_trace_summaries").paginate(
        StartTime=NOW - 600, EndTime=NOW + 60, FilterExpression=expression)
    return {s["Id"] for p in pages for s in p["TraceSummaries"]} & {FAULT, SLOW, ERROR, BRANCHES}


def test_response_time_keywords_judge_the_same_slowest_path(xray: Any, summaries: dict[str, dict[str, Any]]) -> None:
    # The keywords read the root causes the summaries list: profile and cache end no slowest path, index does.
    assert _found(xray, 'rootcause.responsetime.entity { name = "profile" }') == set()
    assert _found(xray, 'rootcause.responsetime.entity { name = "cache" }') == set()
    assert _found(xray, 'rootcause.responsetime.entity { last and name = "index" }') == {BRANCHES}
    assert _found(xray, 'rootcause.responsetime.service { index = 2 and last and name = "search" }') == {BRANCHES}
    # render (0.25 s) lost to DynamoDB (0.75 s) in shop.
    assert _found(xray, 'rootcause.responsetime.entity { name = "render" }') == set()
    assert _found(xray, "rootcause.responsetime.entity { last and remote and coverage = 0.75 }") == {SLOW}
    assert _found(xray, 'rootcause.responsetime.entity { last and name = "lookup" }') == {ERROR}
