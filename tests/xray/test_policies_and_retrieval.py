"""Resource policies, Transaction Search's settings (indexing rules, trace segment destination) and trace retrieval,
through boto3 on each store, as botocore's X-Ray model shapes them and AWS's API reference describes them
(PutResourcePolicy / DeleteResourcePolicy: PolicyRevisionId; GetIndexingRules / UpdateIndexingRule;
Get/UpdateTraceSegmentDestination; StartTraceRetrieval, ListRetrievedTraces, GetRetrievedTracesGraph,
CancelTraceRetrieval).
"""

from __future__ import annotations

import json
import time
from typing import Any, Callable

import botocore.exceptions
import pytest

NOW = float(int(time.time()))
ALLOW = {"Version": "2012-10-17", "Statement": [{"Sid": "SNS", "Effect": "Allow",
                                                 "Principal": {"Service": "sns.amazonaws.com"},
                                                 "Action": ["xray:PutTraceSegments", "xray:GetSamplingRules"],
                                                 "Resource": "*"}]}


def refused(call: Callable[[], Any]) -> tuple[str, int, str]:
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        call()
    r = caught.value.response
    return r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Message"]


def test_resource_policies_keep_revision_ids_and_limits(xray: Any) -> None:
    doc = json.dumps(ALLOW)
    made = xray.put_resource_policy(PolicyName="sns", PolicyDocument=doc)["ResourcePolicy"]
    assert (made["PolicyName"], made["PolicyDocument"], made["PolicyRevisionId"]) == ("sns", doc, "1")
    assert abs(made["LastUpdatedTime"].timestamp() - time.time()) < 120
    # Without a revision id a put replaces the policy at the next revision; "0" creates only.
    assert xray.put_resource_policy(PolicyName="sns", PolicyDocument=doc)["ResourcePolicy"]["PolicyRevisionId"] == "2"
    assert refused(lambda: xray.put_resource_policy(PolicyName="sns", PolicyDocument=doc, PolicyRevisionId="0"))[:2] \
        == ("InvalidPolicyRevisionIdException", 400)
    assert refused(lambda: xray.put_resource_policy(PolicyName="sns", PolicyDocument=doc, PolicyRevisionId="1"))[0] \
        == "InvalidPolicyRevisionIdException"
    assert xray.put_resource_policy(PolicyName="sns", PolicyDocument=doc, PolicyRevisionId="2",
                                    BypassPolicyLockoutCheck=True)["ResourcePolicy"]["PolicyRevisionId"] == "3"
    assert xray.put_resource_policy(PolicyName="new", PolicyDocument=doc,
                                    PolicyRevisionId="0")["ResourcePolicy"]["PolicyRevisionId"] == "1"
    # Documents: IAM policy JSON of at most 5 KB.
    for bad in ("not json", "[]", json.dumps({"Statement": []}), json.dumps({"Statement": [{"Effect": "Maybe"}]})):
        assert refused(lambda: xray.put_resource_policy(PolicyName="bad", PolicyDocument=bad))[0] == \
            "MalformedPolicyDocumentException"
    huge = json.dumps({**ALLOW, "Statement": [{**ALLOW["Statement"][0], "Sid": "x" * 5200}]})
    assert refused(lambda: xray.put_resource_policy(PolicyName="huge", PolicyDocument=huge))[0] == \
        "PolicySizeLimitExceededException"
    for n in range(3):
        xray.put_resource_policy(PolicyName=f"p{n}", PolicyDocument=doc)
    assert refused(lambda: xray.put_resource_policy(PolicyName="sixth", PolicyDocument=doc))[0] == \
        "PolicyCountLimitExceededException"
    listed = xray.get_paginator("list_resource_policies").paginate().build_full_result()["ResourcePolicies"]
    assert [(p["PolicyName"], p["PolicyRevisionId"]) for p in listed] == [
        ("new", "1"), ("p0", "1"), ("p1", "1"), ("p2", "1"), ("sns", "3")]
    # Deleting checks a revision id given; without one a missing policy is no error.
    assert refused(lambda: xray.delete_resource_policy(PolicyName="sns", PolicyRevisionId="2"))[0] == \
        "InvalidPolicyRevisionIdException"
    xray.delete_resource_policy(PolicyName="sns", PolicyRevisionId="3")
    xray.delete_resource_policy(PolicyName="never-made")
    for n in range(3):
        xray.delete_resource_policy(PolicyName=f"p{n}")
    assert [p["PolicyName"] for p in xray.list_resource_policies()["ResourcePolicies"]] == ["new"]
    assert refused(lambda: xray.put_resource_policy(PolicyName="no spaces", PolicyDocument=doc))[0] == \
        "InvalidRequestException"


def test_indexing_rules_and_the_segment_destination(xray: Any) -> None:
    # Apiary indexes every span it keeps: the Default rule's applied share is 100 %, whatever is desired.
    (rule,) = xray.get_indexing_rules()["IndexingRules"]
    assert (rule["Name"], rule["Rule"]) == ("Default", {"Probabilistic": {"DesiredSamplingPercentage": 100.0,
                                                                          "ActualSamplingPercentage": 100.0}})
    changed = xray.update_indexing_rule(Name="Default", Rule={"Probabilistic": {"DesiredSamplingPercentage": 5}})
    assert changed["IndexingRule"]["Rule"]["Probabilistic"] == {"DesiredSamplingPercentage": 5.0,
                                                                "ActualSamplingPercentage": 100.0}
    assert abs(changed["IndexingRule"]["ModifiedAt"].timestamp() - time.time()) < 120
    assert xray.get_indexing_rules()["IndexingRules"][0]["Rule"]["Probabilistic"]["DesiredSamplingPercentage"] == 5.0
    assert refused(lambda: xray.update_indexing_rule(
        Name="Checkout", Rule={"Probabilistic": {"DesiredSamplingPercentage": 5}}))[:2] == \
        ("ResourceNotFoundException", 404)
    assert refused(lambda: xray.update_indexing_rule(
        Name="Default", Rule={"Probabilistic": {"DesiredSamplingPercentage": 150}}))[0] == "InvalidRequestException"
    # Segments stay in Apiary, read through the X-Ray API: the destination is XRay; CloudWatch Logs is refused.
    assert {k: v for k, v in xray.get_trace_segment_destination().items() if k != "ResponseMetadata"} == \
        {"Destination": "XRay", "Status": "ACTIVE"}
    assert xray.update_trace_segment_destination(Destination="XRay")["Status"] == "ACTIVE"
    code, _, message = refused(lambda: xray.update_trace_segment_destination(Destination="CloudWatchLogs"))
    assert code == "InvalidRequestException" and "CloudWatch Logs" in message


def _tid(n: int) -> str:
    return f"1-{int(NOW):08x}-{n:024x}"


SHOP = _tid(0xD1)
OTHERS = [_tid(0xD2 + n) for n in range(5)]
UNKNOWN = _tid(0xDF)


def _segment(tid: str, sid: str, name: str, start: float, end: float, **extra: Any) -> str:
    return json.dumps({"trace_id": tid, "id": sid, "name": name, "start_time": NOW - 60 + start,
                       "end_time": NOW - 60 + end, **extra})


def test_trace_retrieval_reads_the_spans_apiary_holds(xray: Any) -> None:
    docs = [_segment(SHOP, "d100000000000001", "shop", 0, 1.0, origin="AWS::EC2::Instance",
                     subsegments=[{"id": "d100000000000002", "name": "DynamoDB", "namespace": "aws",
                                   "start_time": NOW - 59.75, "end_time": NOW - 59.25}]),
            _segment(SHOP, "d100000000000003", "billing", 0.25, 0.5, parent_id="d100000000000002"),
            *(_segment(tid, f"d2000000000000{n:02x}", "batch", 0, 0.5) for n, tid in enumerate(OTHERS))]
    assert xray.put_trace_segments(TraceSegmentDocuments=docs)["UnprocessedTraceSegments"] == []
    token = xray.start_trace_retrieval(TraceIds=[SHOP, *OTHERS, UNKNOWN], StartTime=NOW - 120,
                                       EndTime=NOW)["RetrievalToken"]
    # XRAY: the segment documents, subsegments in their segments; a trace Apiary does not hold is left out.
    first = xray.list_retrieved_traces(RetrievalToken=token)
    pages = [first, xray.list_retrieved_traces(RetrievalToken=token, NextToken=first["NextToken"])]
    assert "NextToken" not in pages[1] and all(p["RetrievalStatus"] == "COMPLETE" for p in pages)
    traces = {t["Id"]: t for p in pages for t in p["Traces"]}
    assert set(traces) == {SHOP, *OTHERS}
    shop = {s["Id"]: json.loads(s["Document"]) for s in traces[SHOP]["Spans"]}
    assert set(shop) == {"d100000000000001", "d100000000000003"}
    assert [sub["name"] for sub in shop["d100000000000001"]["subsegments"]] == ["DynamoDB"]
    assert traces[SHOP]["Duration"] == pytest.approx(1.0, abs=1e-3)
    # OTEL: every span, subsegments too, as OpenTelemetry JSON.
    otel = xray.list_retrieved_traces(RetrievalToken=token, TraceFormat="OTEL")
    assert otel["TraceFormat"] == "OTEL"
    spans = {s["Id"]: json.loads(s["Document"]) for t in otel["Traces"] if t["Id"] == SHOP for s in t["Spans"]}
    assert set(spans) == {"d100000000000001", "d100000000000002", "d100000000000003"}
    billing = spans["d100000000000003"]
    assert (billing["traceId"], billing["parentSpanId"], billing["resource"]["attributes"]["service.name"]) == \
        (SHOP[2:].replace("-", ""), "d100000000000002", "billing")
    assert billing["endTimeUnixNano"] - billing["startTimeUnixNano"] == billing["durationNano"] == 250_000_000
    # The graph of the retrieved traces: shop calls DynamoDB, which the billing service answers.
    graph = xray.get_retrieved_traces_graph(RetrievalToken=token)
    assert graph["RetrievalStatus"] == "COMPLETE"
    assert {s["Service"]["Name"] for s in graph["Services"]} >= {"shop", "DynamoDB", "billing", "batch"}
    # The range is the spans' start times: a range before the trace retrieves nothing.
    early = xray.start_trace_retrieval(TraceIds=[SHOP], StartTime=NOW - 3600, EndTime=NOW - 600)["RetrievalToken"]
    assert xray.list_retrieved_traces(RetrievalToken=early)["Traces"] == []
    xray.cancel_trace_retrieval(RetrievalToken=early)
    assert xray.list_retrieved_traces(RetrievalToken=early)["RetrievalStatus"] == "CANCELLED"
    assert refused(lambda: xray.list_retrieved_traces(RetrievalToken="no-such-retrieval"))[:2] == \
        ("ResourceNotFoundException", 404)
    assert refused(lambda: xray.cancel_trace_retrieval(RetrievalToken="no-such-retrieval"))[0] == \
        "ResourceNotFoundException"
    assert refused(lambda: xray.start_trace_retrieval(TraceIds=["nope"], StartTime=NOW - 60, EndTime=NOW))[0] == \
        "InvalidRequestException"
