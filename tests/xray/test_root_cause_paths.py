"""Root causes as enumerated lists: the ``first``, ``last`` and ``index`` keywords and ``rootcause.json``, with the
examples of AWS's guide "Using filter expressions" (X-Ray developer guide), through boto3's GetTraceSummaries
against a real server on each store.

A root cause is a list of services -- the trace's path from its entry point down to the entity that caused the
fault -- each with the path of its entities, as GetTraceSummaries' ``FaultRootCauses`` lists them. Our traces,
sent with PutTraceSegments:

* ``weather``: GetWeatherData (a Lambda function) faults because its subsegment get_temperature called
  GetTemperature, which faulted with "Access Denied for account_id: 1234567890" (its only exception). 2 s.
* ``decode``: the api service faults in its subsegment deserialize, which recorded two exceptions ("bad json",
  then a KeyError). 1 s.
* ``slow``: frontend answers in 1 s, 0.9 s of which it spent in DynamoDB, 0.05 s in render; no fault.
* ``deep``: a fault passed up a chain of eight services, s0 (the entry) to s7 (the cause); s3 is named Auth.

Where the guide leaves it open, Apiary counts from 0 (``index``), and lists the entities of a whole path for the
``entity`` keywords (so the ``last`` entity is the root cause itself); ``rootcause.json`` matches each service's own
``EntityPath``, as the summaries list them.
"""

from __future__ import annotations

import json
import time
from typing import Any, Iterator

import botocore.exceptions
import pytest

NOW = time.time()


def _tid(n: int) -> str:
    return f"1-{int(NOW):08x}-{n:024x}"


WEATHER, DECODE, SLOW, DEEP = _tid(0xE1), _tid(0xE2), _tid(0xE3), _tid(0xE4)


def _doc(tid: str, sid: str, name: str, start: float, end: float, **extra: Any) -> dict[str, Any]:
    return {"trace_id": tid, "id": sid, "name": name, "start_time": NOW - 60 + start, "end_time": NOW - 60 + end, **extra}


def _sub(sid: str, name: str, start: float, end: float, **extra: Any) -> dict[str, Any]:
    return {"id": sid, "name": name, "start_time": NOW - 60 + start, "end_time": NOW - 60 + end, **extra}


DENIED = "Access Denied for account_id: 1234567890"
DOCS = [
    _doc(WEATHER, "e100000000000001", "GetWeatherData", 0, 2.0, origin="AWS::Lambda::Function", fault=True,
         subsegments=[_sub("e100000000000002", "get_temperature", 0.1, 0.7, fault=True)]),
    _doc(WEATHER, "e100000000000003", "GetTemperature", 0.2, 0.6, origin="AWS::Lambda::Function", fault=True,
         parent_id="e100000000000002", cause={"exceptions": [{"type": "PermissionError", "message": DENIED}]}),
    _doc(DECODE, "e200000000000001", "api", 0, 1.0, fault=True,
         subsegments=[_sub("e200000000000002", "deserialize", 0.1, 0.2, fault=True,
                           cause={"exceptions": [{"type": "ValueError", "message": "bad json"},
                                                 {"type": "KeyError", "message": DENIED}]})]),
    _doc(SLOW, "e300000000000001", "frontend", 0, 1.0,
         subsegments=[_sub("e300000000000002", "DynamoDB", 0.05, 0.95, namespace="aws"),
                      _sub("e300000000000003", "render", 0.95, 1.0)]),
    *[_doc(DEEP, f"e4000000000000{i:02x}", "Auth" if i == 3 else f"s{i}", i * 0.1, 3.0 - i * 0.1, fault=True,
           **({"parent_id": f"e4000000000000{i - 1:02x}"} if i else {})) for i in range(8)],
]
OURS = {WEATHER, DECODE, SLOW, DEEP}


@pytest.fixture(scope="module")
def traces(xray: Any) -> Iterator[Any]:
    assert xray.put_trace_segments(TraceSegmentDocuments=[json.dumps(d) for d in DOCS])["UnprocessedTraceSegments"] == []
    yield xray


def found(xray: Any, expression: str) -> set[str]:
    pages = xray.get_paginator("get_trace_summaries").paginate(
        StartTime=NOW - 600, EndTime=NOW + 60, FilterExpression=expression)
    return {s["Id"] for p in pages for s in p["TraceSummaries"]} & OURS


def refused(xray: Any, expression: str) -> str:
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        xray.get_trace_summaries(StartTime=NOW - 600, EndTime=NOW + 60, FilterExpression=expression)
    assert caught.value.response["Error"]["Code"] == "InvalidRequestException"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    return caught.value.response["Error"]["Message"]


# -- "Boolean keywords": first, last ------------------------------------------------------------------------


def test_last_entity_of_a_fault_root_cause(traces: Any) -> None:
    # "last enumerated fault trace has error name deserialize"
    assert found(traces, 'rootcause.fault.entity { last and name = "deserialize" }') == {DECODE}
    # The entities are the path's, from the entry point (first) down to the root cause (last).
    assert found(traces, 'rootcause.fault.entity { first and name = "api" }') == {DECODE}
    assert found(traces, 'rootcause.fault.entity { last and name = "api" }') == set()
    # get_temperature made the call that failed, but the cause is GetTemperature's.
    assert found(traces, 'rootcause.fault.entity { last and name = "get_temperature" }') == set()
    assert found(traces, 'rootcause.fault.entity { last and name = "GetTemperature" }') == {WEATHER}
    assert found(traces, "rootcause.fault.entity { last = false and first = false }") == {WEATHER, DEEP}


def test_a_root_cause_includes_every_service_on_its_path(traces: Any) -> None:
    # "select traces with a fault root cause that includes a service named Auth": Auth passed s7's fault up.
    assert found(traces, 'rootcause.fault.service { name = "Auth" }') == {DEEP}
    assert found(traces, 'rootcause.fault.service { last and name = "Auth" }') == set()
    assert found(traces, 'rootcause.fault.service { last and name = "s7" }') == {DEEP}
    assert found(traces, 'rootcause.fault.service { first and name = "GetWeatherData" }') == {WEATHER}
    assert found(traces, 'rootcause.fault.service { !first and name = "GetWeatherData" }') == set()


# -- "Number keywords": index ---------------------------------------------------------------------------------


def test_index_is_a_place_in_the_list_from_zero(traces: Any) -> None:
    # "enumerated list entity that has an index greater than 5": only the deep chain has services past the sixth.
    assert found(traces, "rootcause.fault.service { index > 5 }") == {DEEP}
    assert found(traces, 'rootcause.fault.service { index = 3 and name = "Auth" }') == {DEEP}
    assert found(traces, 'rootcause.fault.service { index = 1 and name = "GetTemperature" }') == {WEATHER}
    assert found(traces, 'rootcause.fault.entity { index = 1 and name = "get_temperature" }') == {WEATHER}
    assert found(traces, 'rootcause.fault.entity { index = 2 and last and name = "GetTemperature" }') == {WEATHER}
    assert found(traces, "rootcause.fault.exception { index > 0 }") == set()


def test_last_entity_covering_most_of_the_response_time(traces: Any) -> None:
    # "requests where the last entity that has coverage greater than 0.8": DynamoDB took 0.9 s of frontend's 1 s.
    assert found(traces, "rootcause.responsetime.entity { last and coverage > 0.8 }") == {SLOW}
    assert found(traces, "rootcause.responsetime.entity { last and coverage > 0.95 }") == set()


# -- "String keywords" --------------------------------------------------------------------------------------


def test_last_service_of_a_response_time_root_cause_by_type(traces: Any) -> None:
    # "a response time root cause whose last service has a type of DynamoDB" (AWS types the node AWS::DynamoDB).
    assert found(traces, 'rootcause.responsetime.service { last and type = "AWS::DynamoDB" }') == {SLOW}
    assert found(traces, 'rootcause.responsetime.service { first and type = "AWS::DynamoDB" }') == set()


def test_last_exception_of_a_fault_root_cause(traces: Any) -> None:
    # "a fault root cause whose last exception has the message ...": GetTemperature recorded that one only.
    assert found(traces, f'rootcause.fault.exception {{ last and message = "{DENIED}" }}') == {WEATHER}
    # deserialize recorded two: "bad json" is its first, not its last.
    assert found(traces, 'rootcause.fault.exception { first and message = "bad json" }') == {DECODE}
    assert found(traces, 'rootcause.fault.exception { last and message = "bad json" }') == set()
    assert found(traces, 'rootcause.fault.exception { name = "PermissionError" }') == {WEATHER}


# -- "Complex keywords": json ------------------------------------------------------------------------------------


GUIDE_JSON = ('#[{ "Services": [ { "Name": "GetWeatherData", "EntityPath": [{ "Name": "GetWeatherData" }, '
              '{ "Name": "get_temperature" } ] }, { "Name": "GetTemperature", "EntityPath": [ { "Name": "GetTemperature" } ] } ] }]')


def test_json_root_cause_matches_the_whole_path(traces: Any) -> None:
    # "JSON with root cause entity: requests with matching root cause entities" -- the guide's own object.
    assert found(traces, f"rootcause.json = {GUIDE_JSON}") == {WEATHER}
    assert found(traces, f"json = {GUIDE_JSON}") == {WEATHER}
    assert found(traces, f"rootcause.json != {GUIDE_JSON}") == {DECODE, SLOW, DEEP}
    # Fields left out match anything; lists must be as long as the path.
    assert found(traces, 'rootcause.json = #[{ "Services": [ {}, { "Type": "AWS::Lambda::Function" } ] }]') == {WEATHER}
    assert found(traces, 'rootcause.json = #[{ "Services": [ { "Name": "GetWeatherData" } ] }]') == set()
    assert found(traces, 'rootcause.json = #[{ "Services": [ { "Name": "GetWeatherData", "EntityPath": '
                         '[{ "Name": "GetWeatherData" }] }, {} ] }]') == set()
    # Response-time root causes too: frontend's time went to DynamoDB, an inferred, remote node.
    assert found(traces, 'rootcause.json = #[{ "Services": [ { "Name": "frontend" }, { "Name": "DynamoDB", '
                         '"Type": "AWS::DynamoDB", "Inferred": true, "EntityPath": [{ "Name": "DynamoDB", "Remote": true }] } ] }]') == {SLOW}
    # Each listed root cause must be found.
    assert found(traces, 'rootcause.json = #[{ "Services": [ { "Name": "api" } ] }, { "Services": [ { "Name": "s0" } ] }]') == set()


def test_what_json_cannot_say_is_refused_by_name(traces: Any) -> None:
    assert "AccountId" in refused(traces, 'rootcause.json = #[{ "Services": [ { "AccountId": "123456789012" } ] }]')
    assert "Exceptions" in refused(traces, 'rootcause.json = #[{ "Services": [ { "EntityPath": [{ "Exceptions": [] }] } ] }]')
    assert "JSON list" in refused(traces, 'rootcause.json = "GetWeatherData"')
    assert "rootcause.json" in refused(traces, "rootcause.json")
    assert "rootcause.json" in refused(traces, 'rootcause.json CONTAINS #[{ "Services": [] }]')
    assert "rootcause.json" in refused(traces, 'http.url = #[{ "Services": [] }]')
    assert refused(traces, 'rootcause.json = #[{ "Services": [ { "Name": "api" ] }]')
    assert "braces" in refused(traces, 'rootcause.fault.service { rootcause.json = #[] }')
    # first, last and index belong to the enumerated lists of root causes only.
    for keyword in ("first", "last", "index > 1"):
        assert keyword.split()[0] in refused(traces, keyword)
        assert keyword.split()[0] in refused(traces, f'service("api") {{ {keyword} }}')


def test_a_groups_root_cause_expression_draws_its_graph(traces: Any) -> None:
    # "Using filter expressions with groups": a group's traces are the ones its expression selects.
    traces.create_group(GroupName="deep-causes", FilterExpression='rootcause.fault.service { last and name = "s7" }')
    graph = traces.get_service_graph(StartTime=NOW - 600, EndTime=NOW + 60, GroupName="deep-causes")["Services"]
    assert {s["Name"] for s in graph if s["Type"] != "client"} == {f"s{i}" for i in range(8) if i != 3} | {"Auth"}
