"""Tags on CloudWatch Logs log groups and X-Ray groups and sampling rules, through boto3, on each store; and Logs
Insights' ``SOURCE logGroupTags([...])`` choosing log groups by them.

AWS's pages each test follows: CloudWatch Logs API Reference TagResource, UntagResource, ListTagsForResource,
TagLogGroup, UntagLogGroup, ListTagsLogGroup, CreateLogGroup and CreateLookupTable (``tags``) and the TagFilter data
type; the Logs
Insights query syntax page SOURCE (CWL_QuerySyntax-Source); X-Ray API Reference TagResource, UntagResource,
ListTagsForResource, CreateGroup and CreateSamplingRule (``Tags``) and the Tag data type.
"""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.logs.insights_client import put, query
from tests.stores import StoreServer, Tenant
from tests.tagging.conftest import client


def arn_of(logs: Any, group: str) -> str:
    return logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"][0]["logGroupArn"]


def code(caught: pytest.ExceptionInfo[ClientError]) -> str:
    return caught.value.response["Error"]["Code"]


def test_log_group_tags_through_both_generations_of_the_api(logs: Any) -> None:
    """CreateLogGroup's tags; TagResource adds keys and replaces the value of a key it names again;
    UntagResource removes keys; the older TagLogGroup / UntagLogGroup / ListTagsLogGroup see the same tags;
    tags go with their group (a group created again has none)."""
    logs.create_log_group(logGroupName="/shop/web", tags={"team": "web", "env": "prod"})
    arn = arn_of(logs, "/shop/web")
    assert logs.list_tags_for_resource(resourceArn=arn)["tags"] == {"team": "web", "env": "prod"}
    logs.tag_resource(resourceArn=arn, tags={"env": "staging", "cost center": "4711"})
    assert logs.list_tags_for_resource(resourceArn=arn)["tags"] == {"team": "web", "env": "staging",
                                                                     "cost center": "4711"}
    logs.untag_resource(resourceArn=arn, tagKeys=["team", "not-there"])
    assert logs.list_tags_log_group(logGroupName="/shop/web")["tags"] == {"env": "staging", "cost center": "4711"}
    logs.tag_log_group(logGroupName="/shop/web", tags={"owner": "ana@shop"})
    logs.untag_log_group(logGroupName="/shop/web", tags=["cost center"])
    assert logs.list_tags_for_resource(resourceArn=arn + ":*")["tags"] == {"env": "staging", "owner": "ana@shop"}
    logs.create_log_group(logGroupName="/shop/plain")
    assert logs.list_tags_log_group(logGroupName="/shop/plain")["tags"] == {}
    logs.delete_log_group(logGroupName="/shop/web")
    logs.create_log_group(logGroupName="/shop/web")
    assert logs.list_tags_for_resource(resourceArn=arn)["tags"] == {}


def test_log_group_tags_keep_aws_limits_and_errors(tenant: Tenant, logs: Any) -> None:
    """At most 50 tags (TooManyTagsException, counting the tags already there); keys of 1 to 128 and values of
    at most 256 allowed characters; the aws: prefix is AWS's; an ARN of no log group of this environment is
    ResourceNotFoundException; tagging (CreateLogGroup with tags too) needs more than an ingest-only key."""
    logs.create_log_group(logGroupName="limits", tags={f"k{i}": "v" for i in range(49)})
    arn = arn_of(logs, "limits")
    with pytest.raises(ClientError) as caught:
        logs.tag_resource(resourceArn=arn, tags={"k50": "v", "k51": "v"})
    assert code(caught) == "TooManyTagsException"
    logs.tag_resource(resourceArn=arn, tags={"k0": "replaced", "k49": "v"})  # 50: the limit itself
    assert len(logs.list_tags_for_resource(resourceArn=arn)["tags"]) == 50
    with pytest.raises(logs.exceptions.InvalidParameterException, match="aws: prefix"):
        logs.tag_resource(resourceArn=arn, tags={"aws:cloudformation:stack-name": "x"})
    with pytest.raises(logs.exceptions.InvalidParameterException):
        logs.untag_resource(resourceArn=arn, tagKeys=["AWS:owner"])
    with pytest.raises(logs.exceptions.InvalidParameterException):
        logs.tag_log_group(logGroupName="limits", tags={"k" * 129: "v"})
    with pytest.raises(logs.exceptions.InvalidParameterException):
        logs.tag_log_group(logGroupName="limits", tags={"k": "semi;colon"})
    with pytest.raises(logs.exceptions.InvalidParameterException):
        logs.create_log_group(logGroupName="too-many", tags={f"k{i}": "v" for i in range(51)})
    assert logs.describe_log_groups(logGroupNamePrefix="too-many")["logGroups"] == []  # refused: not created
    for missing in (arn.replace(":limits", ":nope"), arn.replace("log-group:limits", "destination:limits"),
                    arn.replace("000000000000", "111122223333")):
        with pytest.raises(logs.exceptions.ResourceNotFoundException):
            logs.list_tags_for_resource(resourceArn=missing)
    with pytest.raises(logs.exceptions.InvalidParameterException):
        logs.tag_resource(resourceArn="limits", tags={"a": "b"})
    with pytest.raises(logs.exceptions.ResourceNotFoundException):
        logs.untag_log_group(logGroupName="nope", tags=["a"])

    ingest = client(tenant, "logs", tenant.ingest_key)
    for call in (lambda: ingest.tag_resource(resourceArn=arn, tags={"a": "b"}),
                 lambda: ingest.list_tags_for_resource(resourceArn=arn),
                 lambda: ingest.create_log_group(logGroupName="by-ingest", tags={"a": "b"})):
        with pytest.raises(ClientError) as caught:
            call()
        assert code(caught) == "AccessDeniedException"
    ingest.create_log_group(logGroupName="by-ingest")  # creating a group without tags is part of sending
    assert logs.list_tags_log_group(logGroupName="by-ingest")["tags"] == {}


def test_lookup_table_tags_follow_the_table(store_server: StoreServer, logs: Any) -> None:
    """CreateLookupTable's tags, then TagResource / UntagResource / ListTagsForResource on the table's ARN; the tags
    survive UpdateLookupTable and go with the table; AWS's limits hold (CreateLookupTable lists no
    TooManyTagsException: InvalidParameterException there); another environment sees no such resource."""
    arn = logs.create_lookup_table(lookupTableName="hosts", tableBody="host,team\nweb-1,web\n",
                                   tags={"team": "web", "tier": "gold"})["lookupTableArn"]
    assert logs.list_tags_for_resource(resourceArn=arn)["tags"] == {"team": "web", "tier": "gold"}
    logs.tag_resource(resourceArn=arn, tags={"tier": "silver", "owner": "ana@shop"})
    logs.untag_resource(resourceArn=arn, tagKeys=["team"])
    logs.update_lookup_table(lookupTableArn=arn, tableBody="host,team\nweb-2,api\n")
    assert logs.list_tags_for_resource(resourceArn=arn)["tags"] == {"tier": "silver", "owner": "ana@shop"}
    assert logs.get_lookup_table(lookupTableArn=arn)["tableBody"] == "host,team\nweb-2,api\n"
    plain = logs.create_lookup_table(lookupTableName="plain", tableBody="k\n1\n")["lookupTableArn"]
    assert logs.list_tags_for_resource(resourceArn=plain)["tags"] == {}
    with pytest.raises(ClientError) as caught:
        logs.tag_resource(resourceArn=arn, tags={f"k{i}": "v" for i in range(49)})
    assert code(caught) == "TooManyTagsException"
    with pytest.raises(logs.exceptions.InvalidParameterException):
        logs.create_lookup_table(lookupTableName="crowded", tableBody="k\n1\n", tags={f"k{i}": "v" for i in range(51)})
    with pytest.raises(logs.exceptions.InvalidParameterException, match="aws: prefix"):
        logs.tag_resource(resourceArn=arn, tags={"aws:x": "y"})
    with pytest.raises(ClientError) as caught:  # another environment's key
        client(store_server.take(), "logs").list_tags_for_resource(resourceArn=arn)
    assert code(caught) == "ResourceNotFoundException"
    logs.delete_lookup_table(lookupTableArn=arn)
    for missing in (arn, arn.replace("hosts", "crowded")):
        with pytest.raises(logs.exceptions.ResourceNotFoundException):
            logs.list_tags_for_resource(resourceArn=missing)
    logs.create_lookup_table(lookupTableName="hosts", tableBody="k\n1\n")  # made again: without the old tags
    assert logs.list_tags_for_resource(resourceArn=arn)["tags"] == {}


def test_source_log_group_tags_selects_log_groups_by_their_tags(logs: Any) -> None:
    """CWL_QuerySyntax-Source with logGroupTags, filters as the TagFilter type says: any of a key's values; a key
    alone for any value; '*' wildcards (case-insensitive); '!' negation; several filters all hold; with
    logGroups(...) both selectors hold. dataSource(...) is refused by name: Apiary keeps no data sources."""
    for group, tags in (("web", {"team": "web", "env": "prod"}), ("api", {"team": "api", "env": "Prod-EU"}),
                        ("legacy", {"team": "legacy"}), ("untagged", {})):
        put(logs, group, [f"{group} line"])
        if tags:
            logs.tag_log_group(logGroupName=group, tags=tags)

    def groups(source: str) -> list[str]:
        rows = query(logs, None, f"SOURCE {source} | stats count(*) as n by @log | sort @log asc")
        return [r["@log"].split(":", 1)[1] for r in rows]

    assert groups("logGroupTags([{key: 'team', values: ['web', 'api']}])") == ["api", "web"]
    assert groups('logGroupTags([{"key": "team"}])') == ["api", "legacy", "web"]
    assert groups("logGroupTags([{key: 'env', values: ['prod*']}])") == ["api", "web"]
    assert groups("logGroupTags([{key: 'env', values: ['prod']}])") == ["web"]  # exact: case-sensitive
    assert groups("logGroupTags([{key: 'team', values: ['!legacy']}])") == ["api", "web"]
    assert groups("logGroupTags([{key: 'team', values: []}, {key: 'env', values: ['*eu']}])") == ["api"]
    assert groups("logGroups(namePrefix: ['w', 'l']) logGroupTags([{key: 'team'}])") == ["legacy", "web"]
    assert groups("logGroupTags([{key: 'owner'}])") == []
    logs.tag_log_group(logGroupName="untagged", tags={"owner": "ops"})  # the next query sees a change at once
    assert groups("logGroupTags([{key: 'owner'}])") == ["untagged"]
    for text, words in (("SOURCE dataSource(['amazon_vpc.flow']) | limit 1", "keeps no data sources"),
                        ("SOURCE logGroupTags([]) | limit 1", "1 to 5 tag filters"),
                        ("SOURCE logGroupTags([{values: ['x']}]) | limit 1", "names one key"),
                        ("SOURCE logGroupTags([{key: 'k', values: ['a*b']}]) | limit 1", "only at the start or end")):
        with pytest.raises(logs.exceptions.MalformedQueryException, match=words):
            logs.start_query(startTime=0, endTime=1, queryString=text)


def test_xray_group_and_sampling_rule_tags(tenant: Tenant, xray: Any) -> None:
    """X-Ray TagResource, UntagResource, ListTagsForResource on the ARNs CreateGroup and CreateSamplingRule answer
    with, Tags given at creation; AWS's limits; an unknown ARN is ResourceNotFoundException; a deleted resource's
    tags go with it; refused tags create nothing."""
    group = xray.create_group(GroupName="checkout", FilterExpression='service("checkout")',
                              Tags=[{"Key": "team", "Value": "shop"}])["Group"]["GroupARN"]
    rule = {"RuleName": "slow", "ResourceARN": "*", "Priority": 10, "FixedRate": 0.5, "ReservoirSize": 1,
            "ServiceName": "*", "ServiceType": "*", "Host": "*", "HTTPMethod": "*", "URLPath": "/slow", "Version": 1}
    rule_arn = xray.create_sampling_rule(SamplingRule=rule, Tags=[{"Key": "owner", "Value": "ops"}])[
        "SamplingRuleRecord"]["SamplingRule"]["RuleARN"]
    assert xray.list_tags_for_resource(ResourceARN=group)["Tags"] == [{"Key": "team", "Value": "shop"}]
    xray.tag_resource(ResourceARN=group, Tags=[{"Key": "env", "Value": "prod"}, {"Key": "team", "Value": "pay"}])
    xray.untag_resource(ResourceARN=rule_arn, TagKeys=["owner"])
    xray.tag_resource(ResourceARN=rule_arn, Tags=[{"Key": "tier", "Value": "gold"}])
    assert xray.list_tags_for_resource(ResourceARN=group)["Tags"] == [{"Key": "env", "Value": "prod"},
                                                                       {"Key": "team", "Value": "pay"}]
    assert xray.list_tags_for_resource(ResourceARN=rule_arn)["Tags"] == [{"Key": "tier", "Value": "gold"}]

    def refused(call: Any) -> str:
        with pytest.raises(ClientError) as caught:
            call()
        return code(caught)

    assert refused(lambda: xray.tag_resource(ResourceARN=group, Tags=[
        {"Key": f"k{i}", "Value": "v"} for i in range(49)])) == "TooManyTagsException"
    assert refused(lambda: xray.tag_resource(ResourceARN=group, Tags=[{"Key": "aws:x", "Value": "v"}])) == \
        "InvalidRequestException"
    assert refused(lambda: xray.untag_resource(ResourceARN=group, TagKeys=["aws:x"])) == "InvalidRequestException"
    assert refused(lambda: xray.list_tags_for_resource(ResourceARN=group.replace("checkout", "nope"))) == \
        "ResourceNotFoundException"
    assert refused(lambda: xray.create_group(GroupName="bad", Tags=[{"Key": "k" * 129, "Value": "v"}])) == \
        "InvalidRequestException"
    assert "bad" not in [g["GroupName"] for g in xray.get_groups()["Groups"]]
    ingest = client(tenant, "xray", tenant.ingest_key)
    assert refused(lambda: ingest.tag_resource(ResourceARN=group, Tags=[{"Key": "a", "Value": "b"}])) == \
        "AccessDeniedException"
    xray.delete_group(GroupARN=group)
    xray.create_group(GroupName="checkout")
    assert xray.list_tags_for_resource(ResourceARN=group)["Tags"] == []
    xray.delete_sampling_rule(RuleARN=rule_arn)
    assert refused(lambda: xray.list_tags_for_resource(ResourceARN=rule_arn)) == "ResourceNotFoundException"


def test_xray_tags_come_a_page_at_a_time_with_next_token(xray: Any) -> None:
    """ListTagsForResource with NextToken: 50 tags (AWS's most) over pages by key, every one exactly once, as
    boto3's paginator collects them; a token of another resource's listing, or not given out, is refused."""
    arn = xray.create_group(GroupName="paged", Tags=[{"Key": f"k{i:02d}", "Value": f"v{i}"} for i in range(50)])[
        "Group"]["GroupARN"]
    first = xray.list_tags_for_resource(ResourceARN=arn)
    assert [t["Key"] for t in first["Tags"]] == [f"k{i:02d}" for i in range(25)] and first["NextToken"]
    # A tag removed between pages is not seen; the rest of the page follows the last key handed out.
    xray.untag_resource(ResourceARN=arn, TagKeys=["k30"])
    second = xray.list_tags_for_resource(ResourceARN=arn, NextToken=first["NextToken"])
    assert [t["Key"] for t in second["Tags"]] == [f"k{i:02d}" for i in range(25, 50) if i != 30]
    assert "NextToken" not in second
    pages = xray.get_paginator("list_tags_for_resource").paginate(ResourceARN=arn).build_full_result()
    assert len(pages["Tags"]) == 49 and {"Key": "k49", "Value": "v49"} in pages["Tags"]
    other = xray.create_group(GroupName="paged-too", Tags=[{"Key": "a", "Value": "b"}])["Group"]["GroupARN"]
    for token in (first["NextToken"], "not-a-token"):
        with pytest.raises(ClientError) as caught:
            xray.list_tags_for_resource(ResourceARN=other if token != "not-a-token" else arn, NextToken=token)
        assert code(caught) == "InvalidRequestException"
