"""X-Ray's filter expression language and graphs, section by section of AWS's guide "Using filter expressions"
(X-Ray developer guide) and botocore's X-Ray model, through boto3 against a real server on each store.

The data is a small shop of our own, sent with PutTraceSegments:

* ``handled``: shop-web (EC2) answers 200 in 1 s; on the way it reads DynamoDB and calls pay.example.com,
  which faults -- the fault is handled, the user never sees it. Annotated customer "ada", vip true; user ada.
* ``broken``: shop-web answers 500 in 2.5 s because shop-api (a Lambda function) faulted with "db timeout".
* ``throttled``: shop-web answers 429 (an error and a throttle); shop-worker's segment is still in progress.
* ``plain``: shop-web answers 200 in 0.3 s, annotated vip false, no URL, on EC2 instance i-0d4 in us-east-1d.
"""

from __future__ import annotations

import json
import time
from typing import Any, Iterator

import botocore.exceptions
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

NOW = time.time()


def _tid(n: int) -> str:
    return f"1-{int(NOW):08x}-{n:024x}"


def _seg(tid: str, sid: str, name: str, start: float, end: float | None, **extra: Any) -> dict[str, Any]:
    doc = {"trace_id": tid, "id": sid, "name": name, "start_time": NOW - 60 + start, **extra}
    if end is None:
        doc["in_progress"] = True
    else:
        doc["end_time"] = NOW - 60 + end
    return doc


HANDLED, BROKEN, THROTTLED, PLAIN = _tid(0xA1), _tid(0xB2), _tid(0xC3), _tid(0xD4)
DOCS = [
    _seg(HANDLED, "a000000000000001", "shop-web", 0, 1.0, origin="AWS::EC2::Instance", user="ada",
         http={"request": {"method": "GET", "url": "https://shop.example.com/cart"}, "response": {"status": 200}},
         annotations={"customer": "ada", "vip": True},
         subsegments=[{"id": "a000000000000002", "name": "DynamoDB", "namespace": "aws", "start_time": NOW - 60 + 0.1,
                       "end_time": NOW - 60 + 0.3, "aws": {"operation": "GetItem", "table_name": "carts"}},
                      {"id": "a000000000000003", "name": "pay.example.com", "namespace": "remote", "fault": True,
                       "start_time": NOW - 60 + 0.4, "end_time": NOW - 60 + 0.9,
                       "http": {"request": {"method": "POST", "url": "https://pay.example.com/charge"},
                                "response": {"status": 503}}}]),
    _seg(BROKEN, "b000000000000001", "shop-web", 0, 2.5, origin="AWS::EC2::Instance", fault=True,
         http={"request": {"method": "POST", "url": "https://shop.example.com/checkout"}, "response": {"status": 500}}),
    _seg(BROKEN, "b000000000000002", "shop-api", 0.2, 2.2, origin="AWS::Lambda::Function", fault=True,
         parent_id="b000000000000001",
         cause={"working_directory": "/var/task", "exceptions": [{"type": "TimeoutError", "message": "db timeout"}]}),
    _seg(THROTTLED, "c000000000000001", "shop-web", 0, 0.1, origin="AWS::EC2::Instance", error=True, throttle=True,
         http={"request": {"method": "GET", "url": "https://shop.example.com/cart"}, "response": {"status": 429}}),
    _seg(THROTTLED, "c000000000000002", "shop-worker", 0.05, None, parent_id="c000000000000001"),
    _seg(PLAIN, "d000000000000001", "shop-web", 0, 0.3, origin="AWS::EC2::Instance", annotations={"vip": False},
         http={"response": {"status": 200}}, resource_arn="arn:aws:ec2:us-east-1:123456789012:instance/i-0d4",
         aws={"ec2": {"availability_zone": "us-east-1d", "instance_id": "i-0d4"}}),
]


@pytest.fixture(scope="module")
def shop(xray: Any) -> Iterator[Any]:
    assert xray.put_trace_segments(TraceSegmentDocuments=[json.dumps(d) for d in DOCS])["UnprocessedTraceSegments"] == []
    yield xray


def found(xray: Any, expression: str) -> set[str]:
    """The trace ids of our shop that match (a write is acknowledged once committed, so no waiting)."""
    pages = xray.get_paginator("get_trace_summaries").paginate(
        StartTime=NOW - 600, EndTime=NOW + 60, FilterExpression=expression)
    ids = {s["Id"] for p in pages for s in p["TraceSummaries"]}
    return ids & {HANDLED, BROKEN, THROTTLED, PLAIN}


def refused(xray: Any, expression: str) -> str:
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        xray.get_trace_summaries(StartTime=NOW - 600, EndTime=NOW + 60, FilterExpression=expression)
    error = caught.value.response["Error"]
    assert error["Code"] == "InvalidRequestException"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    return error["Message"]


# -- "Filter expression syntax" and "Boolean keywords" ----------------------------------------------------


def test_simple_keywords_judge_the_trace_not_its_downstream_calls(shop: Any) -> None:
    # "Simple keywords and operators find issues only at the trace level": the fault pay.example.com answered
    # shop-web was handled, so the handled trace is not a fault, and it is ok.
    assert found(shop, "fault") == {BROKEN}
    assert found(shop, "error") == {THROTTLED}
    assert found(shop, "throttle") == {THROTTLED}
    assert found(shop, "ok") == {HANDLED, PLAIN}
    assert found(shop, "!ok") == found(shop, "ok = false") == {BROKEN, THROTTLED}
    assert found(shop, "partial") == {THROTTLED}
    # ... while service() reaches downstream nodes, here every node.
    assert found(shop, "service() { fault }") == {HANDLED, BROKEN}


def test_root_and_inferred_keywords(shop: Any) -> None:
    assert found(shop, 'service("shop-web") { root = true and fault = true }') == {BROKEN}
    assert found(shop, 'service("shop-api") { root }') == set()
    assert found(shop, "inferred") == {HANDLED}  # "Request has inferred segments": DynamoDB, pay.example.com


# -- "Number keywords" ---------------------------------------------------------------------------------


def test_number_keywords_and_terms_side_by_side(shop: Any) -> None:
    assert found(shop, "responsetime > 2") == {BROKEN}
    assert found(shop, "duration >= 0.2 AND duration <= 1.5") == {HANDLED, PLAIN}
    assert found(shop, "http.status != 200") == {BROKEN, THROTTLED}
    # The guide's "ok !partial duration <3": terms written side by side are all required.
    assert found(shop, "ok !partial duration < 3") == {HANDLED, PLAIN}


# -- "String keywords" ---------------------------------------------------------------------------------


def test_string_keywords_and_the_empty_string_test_for_a_field(shop: Any) -> None:
    assert found(shop, 'http.url CONTAINS "/cart"') == {HANDLED, THROTTLED}
    assert found(shop, 'http.method = "POST"') == {BROKEN}
    assert found(shop, 'user CONTAINS ""') == {HANDLED}  # "check to see if it contains the empty string"
    assert found(shop, 'availabilityzone = "us-east-1d"') == {PLAIN}
    assert found(shop, 'instance.id BEGINSWITH "i-0d"') == {PLAIN}
    assert found(shop, 'resource.arn CONTAINS ":ec2:"') == {PLAIN}


# -- "Complex keywords" --------------------------------------------------------------------------------


def test_a_keyword_on_its_own_is_set_and_a_boolean_annotation_is_its_value(shop: Any) -> None:
    assert found(shop, "http.url AND responsetime > 0.9") == {HANDLED, BROKEN}
    assert found(shop, "!http.url") == {PLAIN}
    assert found(shop, "annotation.customer") == {HANDLED}
    assert found(shop, "!annotation.customer") == {BROKEN, THROTTLED, PLAIN}
    assert found(shop, "annotation.vip") == {HANDLED}
    assert found(shop, "annotation.vip = false") == {PLAIN}


def test_edges_and_services_reach_downstream_nodes(shop: Any) -> None:
    assert found(shop, 'edge("shop-web", "shop-api") { fault }') == {BROKEN}
    assert found(shop, 'edge("shop-web", "pay.example.com") { fault }') == {HANDLED}
    assert found(shop, 'service("DynamoDB")') == {HANDLED}
    assert found(shop, 'http.url BEGINSWITH "https://shop.example.com/" AND !service("shop-api")') == {HANDLED, THROTTLED}


def test_root_cause_blocks(shop: Any) -> None:
    # A fault's root cause is the faulting entity none of whose children faulted, reached from the trace's entry
    # point: its services are the path's ("a fault root cause that includes a service named Auth"), the cause last.
    assert found(shop, 'rootcause.fault.service { name = "shop-api" }') == {BROKEN}
    assert found(shop, 'rootcause.fault.service { inferred and name = "pay.example.com" and type = "remote" }') == {HANDLED}
    assert found(shop, 'rootcause.fault.service { name = "shop-web" }') == {BROKEN, HANDLED}
    assert found(shop, 'rootcause.fault.service { last and name = "shop-web" }') == set()
    assert found(shop, 'rootcause.fault.exception { message = "db timeout" }') == {BROKEN}
    assert found(shop, 'rootcause.fault.entity { remote and name = "pay.example.com" }') == {HANDLED}
    # pay.example.com took 0.5 s of shop-web's 1 s.
    assert found(shop, "rootcause.responsetime.entity { remote and coverage > 0.4 }") == {HANDLED}
    assert found(shop, "rootcause.responsetime.entity { remote and coverage > 0.6 }") == set()
    assert found(shop, 'rootcause.fault.service.name = "shop-api"') == {BROKEN}


def test_group_name_and_arn_stand_for_the_groups_expression(shop: Any) -> None:
    group = shop.create_group(GroupName="shop-slow", FilterExpression="responsetime > 2")["Group"]
    assert found(shop, 'group.name = "shop-slow"') == {BROKEN}
    assert found(shop, f'group.arn = "{group["GroupARN"]}" AND fault') == {BROKEN}
    assert found(shop, 'group.name != "shop-slow" AND http.url CONTAINS "/cart"') == {HANDLED, THROTTLED}
    assert "shop-missing" in refused(shop, 'group.name = "shop-missing"')


# -- "id function" -------------------------------------------------------------------------------------


def test_id_picks_a_node_by_name_and_type(shop: Any) -> None:
    assert found(shop, 'service(id(name: "shop-api", type: "AWS::Lambda::Function")) { fault }') == {BROKEN}
    assert found(shop, 'service(id(name: "shop-api", type: "AWS::EC2::Instance"))') == set()
    assert found(shop, 'service(id(type: "AWS::DynamoDB"))') == {HANDLED}
    assert found(shop, 'edge(id(name: "shop-web", type: "AWS::EC2::Instance"), "shop-api") { fault }') == {BROKEN}


def test_keywords_out_of_their_place_are_refused_in_xrays_words(shop: Any) -> None:
    assert "coverage" in refused(shop, "coverage > 0.5")
    assert "remote" in refused(shop, 'service("shop-web") { remote }')
    assert "first" in refused(shop, 'service("shop-web") { first }')
    assert "index" in refused(shop, "index > 1")
    assert "braces" in refused(shop, 'http.url { fault }')


# -- botocore's TraceSummary and Service shapes -------------------------------------------------------


def test_summaries_say_where_faults_and_annotations_came_from(shop: Any) -> None:
    summaries = {s["Id"]: s for s in shop.get_trace_summaries(StartTime=NOW - 600, EndTime=NOW + 60,
                                                                FilterExpression='service("shop-web")')["TraceSummaries"]}
    handled, broken = summaries[HANDLED], summaries[BROKEN]
    assert handled["HasFault"] is False and broken["HasFault"] is True  # "The root segment document has a 500 ..."
    assert summaries[THROTTLED]["HasThrottle"] is True and summaries[THROTTLED]["IsPartial"] is True
    assert {(s["Name"], s["Type"]) for s in handled["ServiceIds"]} == {
        ("shop-web", "AWS::EC2::Instance"), ("DynamoDB", "AWS::DynamoDB"), ("pay.example.com", "remote")}
    assert handled["EntryPoint"]["Type"] == "AWS::EC2::Instance"
    [customer] = handled["Annotations"]["customer"]
    assert customer["AnnotationValue"] == {"StringValue": "ada"}
    assert customer["ServiceIds"] == [{"Name": "shop-web", "Names": ["shop-web"], "Type": "AWS::EC2::Instance"}]
    assert handled["Users"] == [{"UserName": "ada", "ServiceIds": []}]


def _graph(services: list[dict[str, Any]]) -> dict[tuple[str, str], set[tuple[str, str]]]:
    by_ref = {s["ReferenceId"]: (s["Name"], s["Type"]) for s in services}
    return {(s["Name"], s["Type"]): {by_ref[e["ReferenceId"]] for e in s["Edges"]} for s in services}


def test_the_service_graph_draws_typed_inferred_and_client_nodes(shop: Any) -> None:
    services = shop.get_service_graph(StartTime=NOW - 600, EndTime=NOW + 60)["Services"]
    graph = _graph(services)
    web, api = ("shop-web", "AWS::EC2::Instance"), ("shop-api", "AWS::Lambda::Function")
    assert graph[("client", "client")] >= {web}
    assert graph[web] >= {api, ("DynamoDB", "AWS::DynamoDB"), ("pay.example.com", "remote")}
    assert ("shop-worker", "AWS::Service") in graph
    [pay] = [s for s in services if s["Name"] == "pay.example.com"]
    assert pay["SummaryStatistics"]["FaultStatistics"]["TotalCount"] == 1
    [web_node] = [s for s in services if (s["Name"], s["Type"]) == web]
    assert web_node["Root"] is True and web_node["SummaryStatistics"]["TotalCount"] == 4
    assert web_node["SummaryStatistics"]["ErrorStatistics"]["ThrottleCount"] == 1


def test_the_trace_graph_holds_only_the_traces_asked_for(shop: Any) -> None:
    graph = _graph(shop.get_trace_graph(TraceIds=[BROKEN])["Services"])
    assert set(graph) == {("client", "client"), ("shop-web", "AWS::EC2::Instance"), ("shop-api", "AWS::Lambda::Function")}


def test_a_groups_service_graph_follows_its_expression(shop: Any) -> None:
    shop.create_group(GroupName="shop-db", FilterExpression='service(id(type: "AWS::DynamoDB"))')
    graph = _graph(shop.get_service_graph(StartTime=NOW - 600, EndTime=NOW + 60, GroupName="shop-db")["Services"])
    assert ("DynamoDB", "AWS::DynamoDB") in graph and ("shop-api", "AWS::Lambda::Function") not in graph


# -- any text: X-Ray's error or an answer, never a server error ----------------------------------------

TOKENS = ['service("shop-web")', 'edge("a", "b")', "id(name: \"n\")", "id(type: \"t\")", "service(", "edge(", "id(",
          "rootcause.fault.service", "rootcause.responsetime.entity", "rootcause.error.exception", "group.name",
          "group.arn", "fault", "ok", "partial", "inferred", "root", "remote", "coverage", "message", "type", "name",
          "first", "annotation.vip", "annotation[x]", "http.url", "http.status", "responsetime", "duration", "user",
          "AND", "OR", "NOT", "!", "&&", "||", "(", ")", "{", "}", ",", ":", "=", "!=", ">=", "<", "CONTAINS",
          "BEGINSWITH", '"x"', "'y'", '""', "0.5", "-3", "1e400", "true", "false"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(TOKENS), min_size=1, max_size=10).map(" ".join) | st.text(max_size=40))
def test_any_expression_gets_an_answer_or_invalid_request(shop: Any, expression: str) -> None:
    try:
        answer = shop.get_trace_summaries(StartTime=NOW - 600, EndTime=NOW + 60, FilterExpression=expression)
    except botocore.exceptions.ClientError as exc:
        assert exc.response["ResponseMetadata"]["HTTPStatusCode"] == 400, (expression, exc.response)
        assert exc.response["Error"]["Code"] == "InvalidRequestException", (expression, exc.response)
        return
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 200
