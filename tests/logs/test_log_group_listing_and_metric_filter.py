"""ListLogGroups, DescribeLogGroups' pages, TestMetricFilter, and the error every other operation of the model gets,
through boto3, on DuckDB and on ClickHouse.

AWS's pages each test follows: CloudWatch Logs API Reference ListLogGroups (its request parameters and the
TagFilter data type), DescribeLogGroups, and TestMetricFilter (with its Apache access-log example, whose answer
names each field of a space-delimited pattern ``$name`` and numbers the events from 0). The lines and names here
are this test's own.
"""

from __future__ import annotations

import json
import time
from typing import Any

import boto3
import pytest
from botocore import xform_name
from botocore.config import Config
from botocore.exceptions import ClientError

from apiary.receivers.cloudwatch.http import OPERATIONS
from tests.stores import Tenant

NAMES = ["/aws/lambda/checkout", "/aws/lambda/signup", "/ecs/discovery-api", "/ecs/web", "app-discovery",
         "batch/nightly", "batch/weekly"]


def listed(logs: Any, **kwargs: Any) -> list[str]:
    """Every group ListLogGroups answers, page after page (boto3 has no paginator for it: nextToken by hand)."""
    out: list[str] = []
    while True:
        r = logs.list_log_groups(**kwargs)
        out += [g["logGroupName"] for g in r["logGroups"]]
        if "nextToken" not in r:
            return out
        kwargs["nextToken"] = r["nextToken"]


def test_list_log_groups_filters_and_pages_as_documented(logs: Any) -> None:
    for name in NAMES:
        logs.create_log_group(logGroupName=name)
    logs.tag_log_group(logGroupName="/ecs/web", tags={"team": "web", "env": "prod"})
    logs.tag_log_group(logGroupName="/ecs/discovery-api", tags={"team": "api", "env": "Prod-EU"})
    logs.tag_log_group(logGroupName="batch/nightly", tags={"team": "data"})

    first = logs.list_log_groups(limit=3)
    assert first["logGroups"][0] == {"logGroupName": "/aws/lambda/checkout", "logGroupClass": "STANDARD",
                                     "logGroupArn": "arn:aws:logs:us-east-1:000000000000:log-group:/aws/lambda/checkout"}
    assert len(first["logGroups"]) == 3 and first["nextToken"]
    assert listed(logs, limit=3) == sorted(NAMES) == listed(logs)
    # ^ anchors an alternative at the start; the others match anywhere, case-sensitively
    assert listed(logs, logGroupNamePattern="^/aws/lambda|discovery") == [
        "/aws/lambda/checkout", "/aws/lambda/signup", "/ecs/discovery-api", "app-discovery"]
    assert listed(logs, logGroupNamePattern="Discovery") == []
    assert listed(logs, logGroupNamePattern="^batch", logGroupClass="STANDARD") == ["batch/nightly", "batch/weekly"]
    assert listed(logs, logGroupClass="INFREQUENT_ACCESS") == []
    assert listed(logs, logGroupTags=[{"key": "env", "values": ["prod*"]}]) == ["/ecs/discovery-api", "/ecs/web"]
    assert listed(logs, logGroupTags=[{"key": "team"}, {"key": "env", "values": ["!prod"]}]) == ["/ecs/discovery-api"]
    assert listed(logs, logGroupTags=[{"key": "team"}], logGroupNamePattern="^/ecs", limit=1) == [
        "/ecs/discovery-api", "/ecs/web"]
    assert listed(logs, includeLinkedAccounts=True, accountIdentifiers=["111122223333"]) == sorted(NAMES)

    for kwargs, says in (({"logGroupNamePattern": "has space"}, "logGroupNamePattern"),
                         ({"logGroupNamePattern": "a" * 25}, "logGroupNamePattern"),
                         ({"logGroupNamePattern": "one|two|six|ten|www|more"}, "logGroupNamePattern"),
                         ({"nextToken": "not-ours"}, "nextToken"),
                         ({"logGroupTags": [{"key": "k", "values": ["a*b"]}]}, "start or end"),
                         ({"dataSources": [{"name": "amazon_vpc"}]}, "dataSources"),
                         ({"fieldIndexNames": ["requestId"]}, "fieldIndexNames")):
        with pytest.raises(logs.exceptions.InvalidParameterException, match=says):
            logs.list_log_groups(**kwargs)


def test_describe_log_groups_pages_by_name_with_prefix_and_pattern(logs: Any) -> None:
    """DescribeLogGroups over pages of 2: every group once, in name order, with prefix or (case-insensitive)
    pattern; a group's storedBytes is its own streams' bytes."""
    for name in NAMES:
        logs.create_log_group(logGroupName=name)
    logs.create_log_stream(logGroupName="/ecs/web", logStreamName="a")
    logs.create_log_stream(logGroupName="/ecs/web", logStreamName="b")
    for stream in ("a", "b"):
        logs.put_log_events(logGroupName="/ecs/web", logStreamName=stream,
                            logEvents=[{"timestamp": int(time.time() * 1000), "message": "12345"}])
    pages = logs.get_paginator("describe_log_groups")
    seen = [g for page in pages.paginate(PaginationConfig={"PageSize": 2}) for g in page["logGroups"]]
    assert [g["logGroupName"] for g in seen] == sorted(NAMES)
    assert {g["logGroupName"]: g["storedBytes"] for g in seen}["/ecs/web"] == 10
    assert {g["logGroupName"]: g["storedBytes"] for g in seen}["/ecs/discovery-api"] == 0
    by_prefix = [g["logGroupName"] for page in pages.paginate(logGroupNamePrefix="batch",
                                                              PaginationConfig={"PageSize": 1}) for g in page["logGroups"]]
    assert by_prefix == ["batch/nightly", "batch/weekly"]
    by_pattern = [g["logGroupName"] for page in pages.paginate(logGroupNamePattern="DISCOVERY",
                                                               PaginationConfig={"PageSize": 1})
                  for g in page["logGroups"]]
    assert by_pattern == ["/ecs/discovery-api", "app-discovery"]
    logs.delete_log_group(logGroupName="/ecs/web")
    assert "/ecs/web" not in [g["logGroupName"] for g in logs.describe_log_groups()["logGroups"]]


ACCESS = ['127.0.0.1 - frank [10/Oct/2026:13:25:15 -0700] "GET /apache_pb.gif HTTP/1.0" 200 1534',
          '127.0.0.1 - mia [10/Oct/2026:13:35:22 -0700] "GET /apache_pb.gif HTTP/1.0" 500 5324',
          'not an access line']


def test_test_metric_filter_answers_matches_with_their_extracted_values(logs: Any) -> None:
    # Space-delimited: each named field as $name, the bracketed and quoted fields whole; events numbered from 0.
    r = logs.test_metric_filter(filterPattern="[ip, identity, user_id, timestamp, request, status_code, size]",
                                logEventMessages=ACCESS)
    assert [(m["eventNumber"], m["eventMessage"]) for m in r["matches"]] == [(0, ACCESS[0]), (1, ACCESS[1])]
    assert r["matches"][1]["extractedValues"] == {
        "$ip": "127.0.0.1", "$identity": "-", "$user_id": "mia", "$timestamp": "10/Oct/2026:13:35:22 -0700",
        "$request": "GET /apache_pb.gif HTTP/1.0", "$status_code": "500", "$size": "5324"}
    # A condition keeps only the lines it holds for; ... skips fields without naming them.
    r = logs.test_metric_filter(filterPattern="[ip, ..., status_code = 5*, size > 1000]", logEventMessages=ACCESS)
    assert [(m["eventNumber"], m["extractedValues"]) for m in r["matches"]] == [
        (1, {"$ip": "127.0.0.1", "$status_code": "500", "$size": "5324"})]
    # JSON: each selector of the pattern that points at a value, as $.path, numbers and booleans as JSON text.
    docs = [json.dumps({"latency": 950, "user": {"id": "u-7"}, "ok": False}), json.dumps({"latency": 12}), "plain"]
    r = logs.test_metric_filter(filterPattern="{ $.latency > 100 && $.ok IS FALSE }", logEventMessages=docs)
    assert r["matches"] == [{"eventNumber": 0, "eventMessage": docs[0],
                             "extractedValues": {"$.latency": "950", "$.ok": "false"}}]
    r = logs.test_metric_filter(filterPattern="{ $.latency = * || $.user.id = \"u-*\" }", logEventMessages=docs)
    assert [(m["eventNumber"], m["extractedValues"]) for m in r["matches"]] == [
        (0, {"$.latency": "950", "$.user.id": "u-7"}), (1, {"$.latency": "12"})]
    # Terms extract nothing; the empty pattern matches every line.
    r = logs.test_metric_filter(filterPattern="frank ?GET -POST", logEventMessages=ACCESS)
    assert [(m["eventNumber"], m["extractedValues"]) for m in r["matches"]] == [(0, {})]
    assert len(logs.test_metric_filter(filterPattern="", logEventMessages=ACCESS)["matches"]) == 3

    for kwargs, says in (({"filterPattern": "{ $.a = ", "logEventMessages": ["x"]}, "Invalid filter pattern"),
                         ({"filterPattern": "x" * 1025, "logEventMessages": ["x"]}, "1024"),
                         ({"filterPattern": "x", "logEventMessages": ["x"] * 51}, "1 to 50")):
        with pytest.raises(ClientError) as caught:
            logs.test_metric_filter(**kwargs)
        assert caught.value.response["Error"]["Code"] == "InvalidParameterException"
        assert says in caught.value.response["Error"]["Message"]


def test_every_unserved_operation_answers_in_aws_error_shape(aws_env: Tenant) -> None:
    """Each operation of botocore's logs model that Apiary does not serve reaches boto3 as a parsed AWS error
    (``UnknownOperationException``, HTTP 400) naming the operation -- never plain text an SDK cannot read. Client-side
    checks are off so that each is sent with no parameters; the two with a ``stream-`` host prefix go to the same
    endpoint."""
    logs = boto3.session.Session().client("logs", config=Config(parameter_validation=False, inject_host_prefix=False,
                                                                retries={"max_attempts": 1}))
    unserved = sorted(set(logs.meta.service_model.operation_names) - set(OPERATIONS))
    assert "PutMetricFilter" in unserved and "ListLogGroups" not in unserved
    for name in unserved:
        with pytest.raises(ClientError) as caught:
            getattr(logs, xform_name(name))()
        error = caught.value.response["Error"]
        assert (caught.value.response["ResponseMetadata"]["HTTPStatusCode"], error["Code"]) == (
            400, "UnknownOperationException"), name
        assert f"Logs_20140328.{name}" in error["Message"], name
