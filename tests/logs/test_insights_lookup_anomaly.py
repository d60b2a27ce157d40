"""Lookup tables (the CloudWatch Logs lookup-table API and the Insights ``lookup`` command) and ``anomaly``,
through boto3 against a real server, on DuckDB and on ClickHouse.

Each test names the page of AWS's documentation it follows (CWL_QuerySyntax-Lookup, CWL_QuerySyntax-Anomaly,
the API reference's CreateLookupTable ...); the tables, events and queries are this module's own.
"""

from __future__ import annotations

import json
import time
from typing import Any, Iterator

import boto3
import botocore.exceptions
import pytest

from tests.logs.insights_client import put, put_last_two_hours, query
from tests.stores import STORES, StoreServer, Tenant, running

USERS = "id,name,team\nu1,Ana,payments\nu2,Bo,search\nu3,Cy,payments\n"


@pytest.fixture(scope="module", params=STORES)
def store_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[StoreServer]:
    """One server per store for this module, with an environment for each of its tests."""
    with running(request.param, tmp_path_factory.mktemp(request.param), tenants=40) as server:
        yield server


def client_for(tenant: Tenant, key: str | None = None) -> Any:
    k = key or tenant.key
    return boto3.session.Session().client("logs", endpoint_url=tenant.url, aws_access_key_id=k,
                                          aws_secret_access_key=k, region_name="us-east-1")


def test_lookup_table_api_round_trip(logs: Any) -> None:
    """CreateLookupTable, DescribeLookupTables, GetLookupTable, UpdateLookupTable, DeleteLookupTable (API reference):
    a table is CSV with a header row; Describe lists its fields and record count by name; Update replaces it all."""
    made = logs.create_lookup_table(lookupTableName="users", description="who is who", tableBody=USERS)
    arn = made["lookupTableArn"]
    assert arn == "arn:aws:logs:us-east-1:000000000000:lookup-table:users" and made["createdAt"] > 0
    logs.create_lookup_table(lookupTableName="user_teams", tableBody="team,floor\npayments,2\n")
    logs.create_lookup_table(lookupTableName="codes", tableBody="code,text\n404,not found\n")
    listed = logs.describe_lookup_tables(lookupTableNamePrefix="user")["lookupTables"]
    assert [(t["lookupTableName"], t["tableFields"], t["recordsCount"]) for t in listed] == [
        ("user_teams", ["team", "floor"], 1), ("users", ["id", "name", "team"], 3)]
    assert listed[1]["sizeBytes"] == len(USERS) and listed[1]["description"] == "who is who"
    first = logs.describe_lookup_tables(maxResults=2)
    assert [t["lookupTableName"] for t in first["lookupTables"]] == ["codes", "user_teams"]
    rest = logs.describe_lookup_tables(maxResults=2, nextToken=first["nextToken"])
    assert [t["lookupTableName"] for t in rest["lookupTables"]] == ["users"] and "nextToken" not in rest
    got = logs.get_lookup_table(lookupTableArn=arn)
    assert (got["lookupTableName"], got["tableBody"], got["description"]) == ("users", USERS, "who is who")
    updated = logs.update_lookup_table(lookupTableArn=arn, tableBody="id,name\nu9,Dee\n")
    assert updated["lookupTableArn"] == arn and updated["lastUpdatedTime"] >= made["createdAt"]
    after = logs.describe_lookup_tables(lookupTableNamePrefix="users")["lookupTables"][0]
    assert (after["tableFields"], after["recordsCount"], after["description"]) == (["id", "name"], 1, "who is who")
    logs.delete_lookup_table(lookupTableArn=arn)
    assert [t["lookupTableName"] for t in logs.describe_lookup_tables()["lookupTables"]] == ["codes", "user_teams"]
    with pytest.raises(logs.exceptions.ResourceNotFoundException):
        logs.get_lookup_table(lookupTableArn=arn)


@pytest.mark.parametrize("args,error,says", [
    ({"lookupTableName": "has-dash", "tableBody": "a\n1\n"}, "InvalidParameterException", "pattern"),
    ({"lookupTableName": "t"}, "InvalidParameterException", "either tableBody or queryId"),
    ({"lookupTableName": "t", "tableBody": "a\n1\n", "queryId": "q"}, "InvalidParameterException", "not both"),
    ({"lookupTableName": "t", "tableBody": "a,b\n1\n"}, "InvalidParameterException", "line 2"),
    ({"lookupTableName": "t", "tableBody": "a,a\n1,2\n"}, "InvalidParameterException", "twice"),
    ({"lookupTableName": "t", "tableBody": ",b\n1,2\n"}, "InvalidParameterException", "needs a name"),
    ({"lookupTableName": "t", "tableBody": "a\n\ud800\n"}, "SerializationException", "surrogate"),
    ({"lookupTableName": "t", "tableBody": "a\n1\n", "kmsKeyId": "arn:aws:kms:k"}, "InvalidParameterException", "KMS"),
    ({"lookupTableName": "t", "tableBody": "a\n1\n", "tags": {"aws:team": "x"}}, "InvalidParameterException",
     "aws: prefix"),
    ({"lookupTableName": "t", "queryId": "no-such-query"}, "ResourceNotFoundException", "Query does not exist"),
])
def test_bad_lookup_tables_get_aws_errors(logs: Any, args: dict[str, Any], error: str, says: str) -> None:
    """CreateLookupTable's constraints (API reference): AWS's error codes, never a 500, and nothing is created."""
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        logs.create_lookup_table(**args)
    assert raised.value.response["Error"]["Code"] == error and says in raised.value.response["Error"]["Message"]
    assert logs.describe_lookup_tables()["lookupTables"] == []


def test_a_table_over_ten_megabytes_is_refused(logs: Any) -> None:
    """CreateLookupTable: the CSV may not exceed 10 MB; the answer is InvalidParameterException."""
    body = "k,v\n" + ("a," + "y" * 99 + "\n") * 105_000  # 10.5 MB
    with pytest.raises(logs.exceptions.InvalidParameterException, match="at most 10485760 bytes"):
        logs.create_lookup_table(lookupTableName="big", tableBody=body)
    assert logs.describe_lookup_tables()["lookupTables"] == []
    logs.create_lookup_table(lookupTableName="small", tableBody="k\n1\n")
    with pytest.raises(logs.exceptions.ResourceAlreadyExistsException):
        logs.create_lookup_table(lookupTableName="small", tableBody="k\n2\n")


ORDERS = [{"order": 1, "user_id": "u1", "team": "old"}, {"order": 2, "user_id": "u2"},
          {"order": 3, "user_id": "u7"}, {"order": 4, "user_id": "U1"}, {"order": 5, "user_id": "u3"}]


def test_lookup_enriches_events_with_the_tables_fields(logs: Any) -> None:
    """CWL_QuerySyntax-Lookup: the event's field matched (exactly, case-sensitively) against the table's field; the
    OUTPUT fields of the matching record are added, an existing field of that name is overwritten, and an event
    without a match keeps going without them."""
    put(logs, "orders", [json.dumps(o) for o in ORDERS])
    logs.create_lookup_table(lookupTableName="users", tableBody=USERS)
    rows = query(logs, "orders", "fields order, user_id, team | lookup users id as user_id OUTPUT name, team "
                                 "| sort order asc")
    assert rows == [{"order": "1", "user_id": "u1", "name": "Ana", "team": "payments"},
                    {"order": "2", "user_id": "u2", "name": "Bo", "team": "search"},
                    {"order": "3", "user_id": "u7"},
                    {"order": "4", "user_id": "U1"},
                    {"order": "5", "user_id": "u3", "name": "Cy", "team": "payments"}]
    # enriched fields filter and group like any other
    assert query(logs, "orders", "lookup users id as user_id OUTPUT team | filter ispresent(team) "
                                 "| stats count(*) as n by team | sort n desc") == \
        [{"team": "payments", "n": "2"}, {"team": "search", "n": "1"}]
    # the same name on both sides needs no `as`; without OUTPUT every other column of the table is added
    logs.create_lookup_table(lookupTableName="by_user", tableBody="user_id,name,team\nu2,Bo,search\n")
    assert query(logs, "orders", "fields order | filter order = 2 | lookup by_user user_id") == \
        [{"order": "2", "name": "Bo", "team": "search"}]


def test_lookup_takes_the_first_record_of_a_key_and_sees_updates(logs: Any) -> None:
    """CWL_QuerySyntax-Lookup with UpdateLookupTable ("queries that use this table use the new data") and
    DeleteLookupTable ("queries that reference a deleted table will return an error")."""
    put(logs, "orders", [json.dumps(o) for o in ORDERS[:2]])
    made = logs.create_lookup_table(lookupTableName="users", tableBody="id,name\nu1,First\nu1,Second\n")
    text = "fields order | lookup users id as user_id OUTPUT name | sort order asc"
    assert query(logs, "orders", text) == [{"order": "1", "name": "First"}, {"order": "2"}]
    logs.update_lookup_table(lookupTableArn=made["lookupTableArn"], tableBody="id,name\nu2,Bo\n")
    assert query(logs, "orders", text) == [{"order": "1"}, {"order": "2", "name": "Bo"}]
    logs.delete_lookup_table(lookupTableArn=made["lookupTableArn"])
    with pytest.raises(logs.exceptions.MalformedQueryException, match="lookup table 'users' does not exist"):
        logs.start_query(logGroupName="orders", startTime=0, endTime=1, queryString=text)


def test_a_lookup_table_from_query_results(logs: Any) -> None:
    """CreateLookupTable with queryId: the results of a completed query become the table's records."""
    put(logs, "deploys", [json.dumps({"svc": s, "owner": o}) for s, o in (("api", "ana"), ("web", "bo"))])
    put(logs, "errors", [json.dumps({"svc": "web", "msg": "boom"}), json.dumps({"svc": "db", "msg": "slow"})])
    q = logs.start_query(logGroupName="deploys", queryString="fields svc, owner | sort svc asc",
                         startTime=0, endTime=4_000_000_000)
    while logs.get_query_results(queryId=q["queryId"])["status"] == "Running":
        time.sleep(0.05)
    logs.create_lookup_table(lookupTableName="owners", queryId=q["queryId"])
    got = logs.get_lookup_table(lookupTableArn="arn:aws:logs:us-east-1:000000000000:lookup-table:owners")
    assert got["tableBody"] == "svc,owner\napi,ana\nweb,bo\n"
    assert query(logs, "errors", "fields svc, msg | lookup owners svc OUTPUT owner | sort svc asc") == \
        [{"svc": "db", "msg": "slow"}, {"svc": "web", "msg": "boom", "owner": "bo"}]


@pytest.mark.parametrize("text,says", [
    ("lookup nosuch id OUTPUT x", "lookup table 'nosuch' does not exist"),
    ("lookup users idd as user_id OUTPUT name", "has no field 'idd'"),
    ("lookup users id as user_id OUTPUT salary", "has no field 'salary'"),
    ("stats count(*) by user_id | lookup users id as user_id OUTPUT name", "before stats"),
    ("lookup users OUTPUT name", "unexpected"),
    ("lookup users id as user_id OUTPUT", "unexpected"),
])
def test_bad_lookups_are_malformed_queries(logs: Any, text: str, says: str) -> None:
    """CWL_QuerySyntax-Lookup: a query naming a missing table or field is refused with MalformedQueryException."""
    logs.create_log_group(logGroupName="any")
    logs.create_lookup_table(lookupTableName="users", tableBody=USERS)
    with pytest.raises(logs.exceptions.MalformedQueryException, match=says):
        logs.start_query(logGroupName="any", startTime=0, endTime=1, queryString=text)


def test_lookup_tables_belong_to_their_environment(store_server: StoreServer) -> None:
    """Each environment has its own lookup tables (as each AWS account has), and an ingest-only key can neither
    read nor change them."""
    mine, theirs = store_server.take(), store_server.take()
    a, b = client_for(mine), client_for(theirs)
    a.create_lookup_table(lookupTableName="users", tableBody=USERS)
    assert b.describe_lookup_tables()["lookupTables"] == []
    with pytest.raises(b.exceptions.ResourceNotFoundException):
        b.get_lookup_table(lookupTableArn="arn:aws:logs:us-east-1:000000000000:lookup-table:users")
    put(b, "orders", [json.dumps(ORDERS[0])])
    with pytest.raises(b.exceptions.MalformedQueryException, match="does not exist"):
        b.start_query(logGroupName="orders", startTime=0, endTime=1, queryString="lookup users id as user_id")
    b.create_lookup_table(lookupTableName="users", tableBody="id,name\nu1,Other\n")  # a name of its own
    assert query(b, "orders", "fields order | lookup users id as user_id") == [{"order": "1", "name": "Other"}]
    writer = client_for(mine, mine.ingest_key)
    for call in (lambda: writer.describe_lookup_tables(),
                 lambda: writer.create_lookup_table(lookupTableName="x", tableBody="a\n1\n")):
        with pytest.raises(botocore.exceptions.ClientError) as raised:
            call()
        assert raised.value.response["Error"]["Code"] == "AccessDeniedException"
    for c in (a, b, writer):
        c.close()


def test_anomaly_flags_patterns_that_left_their_baseline(logs: Any) -> None:
    """CWL_QuerySyntax-Anomaly: after pattern, every pattern row is kept with what anomaly adds: a pattern not seen
    in the baseline is new, one whose count moved threefold is a frequency anomaly, the others are not anomalous."""
    before = ["[INFO] Request time: %d ms" % n for n in (5, 7, 9)] + ["[ERROR] card 4111 declined"] + \
        ["[INFO] cache warm %d" % n for n in range(6)]
    now = ["[INFO] Request time: %d ms" % n for n in (3, 4, 8)] + ["[ERROR] card %d declined" % n for n in (1, 2, 3)] + \
        ["[WARN] disk 91% full", "[INFO] cache warm 1"]
    hour = put_last_two_hours(logs, "shop", before, now)

    def run(text: str, start: int = hour) -> list[dict[str, str]]:
        return query(logs, "shop", text, {"startTime": start, "endTime": start + 3599})

    rows = {r["@pattern"]: r for r in run("fields @timestamp, @message | pattern @message | anomaly")}
    said = " times in the baseline just before it"
    assert rows["[ERROR] card <*> declined"] == {
        "@pattern": "[ERROR] card <*> declined", "@ratio": "0.38", "@sampleCount": "3", "@severityLabel": "Error",
        "@anomalyType": "Pattern frequency", "@priority": "HIGH", "@baselineSampleCount": "1",
        "@description": "seen 3 times in the query's time range, 1" + said}
    assert rows["[WARN] disk <*>% full"]["@anomalyType"] == "New pattern"
    assert rows["[WARN] disk <*>% full"]["@priority"] == "MEDIUM"
    assert rows["[INFO] cache warm <*>"]["@anomalyType"] == "Pattern frequency"  # 6 -> 1: a drop
    assert "@anomalyType" not in rows["[INFO] Request time: <*> ms"]  # 3 -> 3
    assert rows["[INFO] Request time: <*> ms"]["@priority"] == "LOW"
    assert run("pattern @message | anomaly | filter ispresent(@anomalyType) | sort @sampleCount asc, "
               "@pattern asc | display @pattern, @anomalyType") == [
        {"@pattern": "[INFO] cache warm <*>", "@anomalyType": "Pattern frequency"},
        {"@pattern": "[WARN] disk <*>% full", "@anomalyType": "New pattern"},
        {"@pattern": "[ERROR] card <*> declined", "@anomalyType": "Pattern frequency"}]
    # an hour with no baseline before it (the earlier hour is empty): nothing to compare with, no anomaly
    assert all("@anomalyType" not in r for r in run("pattern @message | anomaly", hour - 3600))
    for text in ("anomaly", "filter @message like /x/ | anomaly", "pattern @message | diff | anomaly"):
        with pytest.raises(logs.exceptions.MalformedQueryException, match="anomaly has to follow pattern"):
            logs.start_query(logGroupName="shop", startTime=0, endTime=1, queryString=text)


def test_anomaly_finds_http_codes_numbers_and_token_variations(logs: Any) -> None:
    """CWL_QuerySyntax-Anomaly, "Types of Anomalies Identified": besides new patterns and pattern frequency, HTTP
    error code, numerical token and token variation anomalies, by Apiary's rules (docs/compatibility/logs.md).
    A share of error codes that fell is no anomaly."""
    before = (["GET /api/orders HTTP/1.1 200"] * 7 + ["GET /api/orders HTTP/1.1 404"]
              + ["[INFO] Request time: %d ms" % n for n in (98, 99, 100, 101, 102, 100, 100, 97, 103, 100)]
              + ["[INFO] connected to db-1", "[INFO] connected to db-2"] * 3
              + ["[INFO] request req-%d done" % n for n in range(1001, 1013)] + ["[WARN] retrying upstream"]
              + ["POST /api/pay HTTP/1.1 500", "POST /api/pay HTTP/1.1 200"] * 3)
    now = (["GET /api/orders HTTP/1.1 200", "GET /api/orders HTTP/1.1 500"] * 3
           + ["[INFO] Request time: %d ms" % n for n in (99, 101, 100, 950)]
           + ["[INFO] connected to db-1", "[INFO] connected to db-2", "[INFO] connected to db-7"]
           + ["[INFO] request req-%d done" % n for n in range(2001, 2007)] + ["[WARN] retrying upstream"] * 4
           + ["[ERROR] disk full on vol-3", "[ERROR] disk full on vol-4"] + ["POST /api/pay HTTP/1.1 200"] * 3)
    hour = put_last_two_hours(logs, "api", before, now)
    rows = query(logs, "api", "pattern @message | anomaly | sort @pattern asc",
                 {"startTime": hour, "endTime": hour + 3599})
    in_range = " in the query's time range, "
    assert rows == [
        {"@pattern": "GET /api/orders HTTP/<*> <*>", "@ratio": "0.21", "@sampleCount": "6",
         "@anomalyType": "HTTP error code", "@priority": "LOW", "@baselineSampleCount": "8",
         "@description": "token 2 (an HTTP status code) was 4xx or 5xx in 3 of 6 lines" + in_range
                         + "against 1 of 8 in the baseline"},
        {"@pattern": "POST /api/pay HTTP/<*> <*>", "@ratio": "0.11", "@sampleCount": "3", "@priority": "LOW",
         "@baselineSampleCount": "6", "@description": "seen 3 times" + in_range + "6 times in the baseline just before it"},
        {"@pattern": "[ERROR] disk full on <*>", "@ratio": "0.07", "@sampleCount": "2", "@severityLabel": "Error",
         "@anomalyType": "New pattern", "@priority": "HIGH", "@baselineSampleCount": "0",
         "@description": "seen 2 times" + in_range + "0 times in the baseline just before it"},
        {"@pattern": "[INFO] Request time: <*> ms", "@ratio": "0.14", "@sampleCount": "4", "@severityLabel": "Info",
         "@anomalyType": "Numerical token", "@priority": "LOW", "@baselineSampleCount": "10",
         "@description": "token 1 ranged from 99 to 950" + in_range + "beyond 3 standard deviations of the "
                         "baseline's 10 values (mean 100.00, standard deviation 1.67)"},
        {"@pattern": "[INFO] connected to <*>", "@ratio": "0.11", "@sampleCount": "3", "@severityLabel": "Info",
         "@anomalyType": "Token variation", "@priority": "LOW", "@baselineSampleCount": "6",
         "@description": "token 1 took 1 value(s) the baseline never had, such as db-7, where the baseline had "
                         "2 distinct value(s)"},
        # twelve distinct ids in the baseline: no enumeration, so new ids are no variation (and 12 -> 6 is no
        # threefold change)
        {"@pattern": "[INFO] request <*> done", "@ratio": "0.21", "@sampleCount": "6", "@severityLabel": "Info",
         "@priority": "LOW", "@baselineSampleCount": "12",
         "@description": "seen 6 times" + in_range + "12 times in the baseline just before it"},
        {"@pattern": "[WARN] retrying upstream", "@ratio": "0.14", "@sampleCount": "4", "@severityLabel": "Warning",
         "@anomalyType": "Pattern frequency", "@priority": "MEDIUM", "@baselineSampleCount": "1",
         "@description": "seen 4 times" + in_range + "1 times in the baseline just before it"}]
