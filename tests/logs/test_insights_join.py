"""Logs Insights ``join`` (CWL_QuerySyntax-Join) and subqueries (CWL_QuerySyntax-Subqueries) through boto3's
StartQuery / GetQueryResults, on DuckDB and on ClickHouse.

The queries follow the shapes of the examples on AWS's two pages (API Gateway requests joined with a Lambda
function's lines, orders left-joined with payments, requests picked by another service's failures); the log
lines and the answers are this module's own.
"""

from __future__ import annotations

import json
from typing import Any, Iterator

import boto3
import pytest

from tests.logs.insights_client import put, query
from tests.stores import STORES, StoreServer, Tenant, running


@pytest.fixture(scope="module", params=STORES)
def store_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[StoreServer]:
    """One server per store for this module, with an environment for each of its tests (and a stranger's)."""
    with running(request.param, tmp_path_factory.mktemp(request.param), tenants=12) as server:
        yield server


def _lines(*events: dict[str, Any]) -> list[str]:
    return [json.dumps(e) for e in events]


@pytest.fixture
def shop(logs: Any) -> None:
    """An API's access lines and its Lambda function's lines, sharing request ids (r1..r4)."""
    put(logs, "api", _lines({"requestId": "r1", "status": 502, "latency": 900, "path": "/cart"},
                            {"requestId": "r2", "status": 200, "latency": 40, "path": "/cart"},
                            {"requestId": "r3", "status": 500, "latency": 1500, "path": "/pay"},
                            {"requestId": "r4", "status": 503, "latency": 300, "path": "/pay"}))
    put(logs, "/aws/lambda/checkout", _lines({"requestId": "r1", "duration": 880, "memoryUsed": 128},
                                             {"requestId": "r2", "duration": 31, "memoryUsed": 64},
                                             {"requestId": "r3", "duration": 1490, "memoryUsed": 256},
                                             {"requestId": "r3", "duration": 7, "memoryUsed": 32, "retry": True}))


def test_inner_join_pairs_each_request_with_its_function_lines(logs: Any, shop: None) -> None:
    """CWL_QuerySyntax-Join, example 1 (API requests with their Lambda lines): type=inner keeps matched pairs only,
    one row per pair (r3 ran twice), fields named alias.field; r4 never reached the function."""
    rows = query(logs, "api", "filter status >= 500\n"
                              "| join type=inner left=api right=fn where api.requestId=fn.requestId "
                              "(SOURCE '/aws/lambda/checkout')\n"
                              "| fields api.requestId, api.status, api.latency, fn.duration, fn.memoryUsed\n"
                              "| sort api.latency desc, fn.duration desc")
    assert rows == [
        {"api.requestId": "r3", "api.status": "500", "api.latency": "1500", "fn.duration": "1490", "fn.memoryUsed": "256"},
        {"api.requestId": "r3", "api.status": "500", "api.latency": "1500", "fn.duration": "7", "fn.memoryUsed": "32"},
        {"api.requestId": "r1", "api.status": "502", "api.latency": "900", "fn.duration": "880", "fn.memoryUsed": "128"}]
    # type is optional: inner by default
    same = query(logs, "api", "filter status >= 500 | join left=api right=fn where api.requestId=fn.requestId "
                              "(SOURCE '/aws/lambda/checkout') | stats count(*) as pairs")
    assert same == [{"pairs": "3"}]


def test_left_join_keeps_the_events_without_a_match(logs: Any) -> None:
    """CWL_QuerySyntax-Join, example 2 (orders and their payments): type=left keeps every order; one never paid
    has no payment fields."""
    put(logs, "orders", _lines({"eventType": "ORDER_CREATED", "transactionId": "t1", "orderId": "o-1"},
                               {"eventType": "ORDER_CREATED", "transactionId": "t2", "orderId": "o-2"},
                               {"eventType": "ORDER_SHIPPED", "transactionId": "t1", "orderId": "o-1"}))
    put(logs, "payments", _lines({"transactionId": "t1", "status": "CAPTURED", "amount": 25.5}))
    rows = query(logs, "orders", 'filter eventType = "ORDER_CREATED"\n'
                                 "| join type=left left=order right=payment where order.transactionId=payment.transactionId "
                                 "(SOURCE 'payments')\n"
                                 "| fields order.orderId, payment.status, payment.amount | sort order.orderId")
    assert rows == [{"order.orderId": "o-1", "payment.status": "CAPTURED", "payment.amount": "25.5"},
                    {"order.orderId": "o-2"}]


def test_join_with_a_query_on_the_right(logs: Any, shop: None) -> None:
    """CWL_QuerySyntax-Join: the right side may be query results (here counted per request); the right side
    gives only the fields it selects, and its own filter runs before the join."""
    rows = query(logs, "api", "join left=a right=f where a.requestId=f.requestId "
                              "(SOURCE '/aws/lambda/checkout' | filter memoryUsed >= 64 "
                              "| stats count(*) as runs, max(duration) as longest by requestId)\n"
                              "| fields a.requestId, a.path, f.runs, f.longest | sort a.requestId")
    assert rows == [{"a.requestId": "r1", "a.path": "/cart", "f.runs": "1", "f.longest": "880"},
                    {"a.requestId": "r2", "a.path": "/cart", "f.runs": "1", "f.longest": "31"},
                    {"a.requestId": "r3", "a.path": "/pay", "f.runs": "1", "f.longest": "1490"}]
    with pytest.raises(logs.exceptions.MalformedQueryException, match="add memoryUsed to its fields"):
        logs.start_query(logGroupName="api", startTime=0, endTime=1, queryString=(
            "join left=a right=f where a.requestId=f.requestId (SOURCE '/aws/lambda/checkout' | fields requestId) "
            "| fields f.memoryUsed"))


def test_subquery_picks_requests_that_failed_downstream(logs: Any) -> None:
    """CWL_QuerySyntax-Subqueries, example 1 (requests whose database calls timed out) and its not-in converse;
    the statistics count the events both queries scanned."""
    put(logs, "web", _lines({"requestId": "q1", "endpoint": "/a", "userId": "u1"},
                            {"requestId": "q2", "endpoint": "/b", "userId": "u2"},
                            {"requestId": "q3", "endpoint": "/c", "userId": "u3"}))
    put(logs, "db", _lines({"requestId": "q1", "errorType": "DatabaseConnectionTimeout"},
                           {"requestId": "q2", "errorType": "DeadlockDetected"},
                           {"requestId": "q3", "errorType": "DatabaseConnectionTimeout"},
                           {"errorType": "DatabaseConnectionTimeout"}))
    text = ("filter requestId in (\n  SOURCE 'db'\n  | filter errorType = \"DatabaseConnectionTimeout\"\n"
            "  | fields requestId\n)\n| fields @timestamp, requestId, endpoint, userId\n| sort @timestamp desc")
    rows = query(logs, "web", text)
    assert [(r["requestId"], r["endpoint"], r["userId"]) for r in rows] == [("q3", "/c", "u3"), ("q1", "/a", "u1")]
    q = logs.start_query(logGroupName="web", startTime=0, endTime=4_000_000_000, queryString=text)
    while (r := logs.get_query_results(queryId=q["queryId"]))["status"] in ("Scheduled", "Running"):
        pass
    assert r["statistics"]["recordsScanned"] == 7.0 and r["statistics"]["recordsMatched"] == 2.0
    rows = query(logs, "web", "filter requestId not in (SOURCE 'db' | filter errorType = 'DatabaseConnectionTimeout' "
                              "| fields requestId) | fields requestId")
    assert rows == [{"requestId": "q2"}]


def test_subquery_with_stats_finds_repeated_failures(logs: Any) -> None:
    """CWL_QuerySyntax-Subqueries, example 2 (payments that failed more than three times): the subquery aggregates,
    filters its own results and selects the one field matched."""
    failures = [{"requestId": "p1", "status": "FAILED"}] * 4 + [{"requestId": "p2", "status": "FAILED"}] * 2 + \
        [{"requestId": "p2", "status": "OK"}]
    put(logs, "payments", _lines(*failures))
    put(logs, "checkout", _lines({"requestId": "p1", "customerId": "c-9", "amount": 12},
                                 {"requestId": "p2", "customerId": "c-4", "amount": 30},
                                 {"requestId": "p1", "customerId": "c-9", "amount": 12, "failureReason": "card"}))
    rows = query(logs, "checkout", "filter requestId in (SOURCE 'payments' | filter status = \"FAILED\" "
                                   "| stats count(*) as failureCount by requestId | filter failureCount > 3 "
                                   "| fields requestId)\n"
                                   "| fields @timestamp, requestId, customerId, amount, failureReason | sort @timestamp asc")
    assert [{k: v for k, v in r.items() if k != "@timestamp"} for r in rows] == [
        {"requestId": "p1", "customerId": "c-9", "amount": "12"},
        {"requestId": "p1", "customerId": "c-9", "amount": "12", "failureReason": "card"}]


def test_the_inner_query_reads_only_the_callers_environment(store_server: StoreServer, logs: Any) -> None:
    """The right side of a join and a subquery read log groups of the key's environment only: another environment's
    group of the same name adds nothing, and a group only it has is ResourceNotFoundException, as in StartQuery."""
    stranger: Tenant = store_server.take()
    other = boto3.session.Session(aws_access_key_id=stranger.key, aws_secret_access_key=stranger.key,
                                  region_name="us-east-1").client("logs", endpoint_url=stranger.url)
    put(other, "db", _lines({"requestId": "x2", "errorType": "Timeout"}))
    put(other, "elsewhere", _lines({"requestId": "x1"}))
    other.close()
    put(logs, "web", _lines({"requestId": "x1"}, {"requestId": "x2"}))
    put(logs, "db", _lines({"requestId": "x1", "errorType": "Timeout"}))
    assert query(logs, "web", "filter requestId in (SOURCE 'db' | fields requestId) | fields requestId") == \
        [{"requestId": "x1"}]
    assert query(logs, "web", "join left=w right=d where w.requestId=d.requestId (SOURCE 'db') "
                              "| fields w.requestId, d.errorType") == [{"w.requestId": "x1", "d.errorType": "Timeout"}]
    for text in ("filter requestId in (SOURCE 'elsewhere' | fields requestId)",
                 "join left=w right=d where w.requestId=d.requestId (SOURCE 'elsewhere')"):
        with pytest.raises(logs.exceptions.ResourceNotFoundException, match="elsewhere"):
            logs.start_query(logGroupName="web", startTime=0, endTime=1, queryString=text)


MALFORMED = [
    ("join type=outer left=a right=b where a.k=b.k (SOURCE 'g')", "type=outer is not supported"),
    ("join type=right left=a right=b where a.k=b.k (SOURCE 'g')", "type=right is not supported"),
    ("join left=a where a.k=b.k (SOURCE 'g')", "join names both sides"),
    ("join left=a right=a where a.k=a.k (SOURCE 'g')", "must differ"),
    ("join left=a right=b size=big where a.k=b.k (SOURCE 'g')", "join takes type=inner"),
    ("join left=a right=b where a.k=c.k (SOURCE 'g')", "one field of each side"),
    ("join left=a right=b where a.k>b.k (SOURCE 'g')", "one field of each side"),
    ("join left=a right=b where a.k=b.k (SOURCE 'g') | join left=c right=d where c.k=d.k (SOURCE 'g')",
     "one join per query"),
    ("join left=a right=b where a.k=b.k (SOURCE 'g' | filter k in (SOURCE 'g' | fields k))", "nested subqueries"),
    ("filter k in (SOURCE 'g' | filter j in (SOURCE 'g' | fields j) | fields k)", "nested subqueries"),
    ("filter k in (SOURCE 'g' | join left=a right=b where a.k=b.k (SOURCE 'g') | fields k)", "nested subqueries"),
    ("filter k in (SOURCE 'g' | filter x = 1)", "only the fields it selects"),
    ("filter k in (SOURCE 'g' | fields a, b)", "select the one field to match"),
    ("filter k in (SOURCE logGroups(namePrefix: ['g']) | fields k)", "names its log groups in quotes"),
    ("filter k in (SOURCE 'g' | pattern @message | diff)", "diff cannot be used inside a subquery"),
    ("filter k in (SOURCE 'g' | fields k", "unexpected"),
]


def test_malformed_joins_and_subqueries(logs: Any) -> None:
    """What AWS's pages rule out (nested subqueries, join types other than inner and left) and what does not parse
    is MalformedQueryException, naming the problem."""
    logs.create_log_group(logGroupName="g")
    for text, error in MALFORMED:
        with pytest.raises(logs.exceptions.MalformedQueryException, match=error):
            logs.start_query(logGroupName="g", startTime=0, endTime=1, queryString=text)
