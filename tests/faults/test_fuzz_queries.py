"""Hypothesis against every query language, through the clients that send them: no 5xx, no dropped connection.

Honeycomb query specs go over HTTP as Honeycomb's Query Data API takes them; X-Ray filter
expressions, CloudWatch filter patterns and Logs Insights queries go through boto3. Deep nesting,
lone surrogates and absurd numbers are explicit examples.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from apiary.query.spec import CALCULATION_OPS, FILTER_OPS
from tests.faults.fuzz_support import (
    FUZZ, LOG_GROUP, LONE_SURROGATE, NESTED_PARENS, aws_client, dumps, json_values, no_aws_server_error,
    no_server_error,
)
from tests.server import ApiaryProcess

DATASET = "fuzz-queries"


@pytest.fixture(scope="module")
def seeded(fuzz_server: ApiaryProcess) -> ApiaryProcess:
    """A dataset with a few typed columns, and a log stream with a few lines, for the queries to run over."""
    events = [{"data": {"name": f"op{i}", "duration_ms": i * 1.5, "app.n": i, "app.s": f"v{i}", "error": i % 2 == 0}}
              for i in range(5)]
    r = httpx.post(f"{fuzz_server.url}/1/batch/{DATASET}", json=events, headers={"X-Honeycomb-Team": fuzz_server.key})
    assert r.status_code == 200
    now_ms = int(time.time() * 1000)
    aws_client(fuzz_server, "logs").put_log_events(
        logGroupName=LOG_GROUP, logStreamName="s",
        logEvents=[{"timestamp": now_ms, "message": m} for m in ('{"a": 1, "b": "x"}', "[w1 w2] 200 GET /", "plain")])
    return fuzz_server


# -- Honeycomb query specs ------------------------------------------------------------------------

columns = st.sampled_from(["duration_ms", "app.n", "app.s", "error", "name", "nope", ""]) | st.text(max_size=6)
numbers = st.integers(min_value=-(2**70), max_value=2**70) | st.floats() | st.none()
specs = st.fixed_dictionaries({}, optional={
    "calculations": st.lists(st.fixed_dictionaries({"op": st.sampled_from([*CALCULATION_OPS, "BAD"])},
                                                   optional={"column": columns}), max_size=3),
    "filters": st.lists(st.fixed_dictionaries({"column": columns, "op": st.sampled_from([*FILTER_OPS, "~"])},
                                              optional={"value": json_values}), max_size=3),
    "filter_combination": st.sampled_from(["AND", "OR", "or", "XOR"]),
    "breakdowns": st.lists(columns, max_size=2),
    "orders": st.lists(st.fixed_dictionaries({}, optional={"column": columns, "op": st.sampled_from(CALCULATION_OPS),
                                                           "order": st.sampled_from(["ascending", "descending", "up"])}),
                       max_size=2),
    "havings": st.lists(st.fixed_dictionaries({"calculate_op": st.sampled_from(CALCULATION_OPS), "op": st.just(">"),
                                               "value": numbers}, optional={"column": columns}), max_size=1),
    "limit": numbers, "time_range": numbers, "start_time": numbers, "end_time": numbers, "granularity": numbers,
    "calculated_fields": st.lists(st.fixed_dictionaries({"name": st.just("c"), "expression": st.text(max_size=40)
                                                         | st.sampled_from(["ADD($app.n, 1)", "IF(GT($duration_ms, 1), 1, 0)",
                                                                            "CONCAT($app.s, \"x\")"])}), max_size=1),
})


@FUZZ
@given(specs.map(dumps) | st.binary(max_size=80))
@example(dumps({"time_range": 10**12}))
@example(dumps({"start_time": 0, "end_time": 10**12}))
@example(dumps({"time_range": 3600, "granularity": 10**15}))
@example(b'{"filters": [{"column": "app.n", "op": ">", "value": 1e400}], "havings": [], "limit": 1e400}')
@example(b'{"filters": [{"column": "app.n", "op": "=", "value": 1' + b"0" * 30 + b"}]}")
@example(b'{"filters": [{"column": "app.s", "op": "=", "value": NaN}]}')
@example(('{"filters": [{"column": "app.s", "op": "=", "value": %s}]}' % LONE_SURROGATE).encode())
@example(b'{"calculations": ' + b"[" * 50_000 + b"]" * 50_000 + b"}")
@example(dumps({"calculated_fields": [{"name": "c", "expression": "ADD(" * 300 + "1" + ", 1)" * 300}],
                "calculations": [{"op": "SUM", "column": "c"}]}))
def test_honeycomb_query_specs(seeded: ApiaryProcess, body: bytes) -> None:
    headers = {"X-Honeycomb-Team": seeded.key, "content-type": "application/json"}
    created = no_server_error(httpx.post(f"{seeded.url}/1/queries/{DATASET}", content=body, headers=headers, timeout=30))
    if created.status_code != 200:
        assert created.json()["error"]
        return
    ran = no_server_error(httpx.post(f"{seeded.url}/1/query_results/{DATASET}", headers=headers, timeout=30,
                                     json={"query_id": created.json()["id"]}))
    assert ran.status_code in (201, 400), ran.text


# -- X-Ray filter expressions ---------------------------------------------------------------------

xray_tokens = st.sampled_from(['service("a")', 'edge("a","b")', "fault", "error", "ok", "AND", "OR", "NOT", "!", "(", ")",
                               "{", "}", "http.status", "=", ">=", "500", '"x"', "CONTAINS", "annotation.k", "responsetime",
                               'id(name: "n")', "true", "1.5", "1e400", str(2**70), ",", "user", "rootcause.fault.service.name",
                               "rootcause.fault.entity", "first", "last", "index", "rootcause.json", "#[", "[", "]",
                               '"Services":', '"EntityPath":', '"Name":', "null"])


@FUZZ
@given(st.lists(xray_tokens, max_size=12).map(" ".join) | st.text(max_size=60))
@example(NESTED_PARENS.replace("a", "ok"))
@example('annotation.k = "\ud800"')  # a lone surrogate: botocore sends it as the JSON escape \ud800
@example("responsetime > 1e400 AND duration < -1e400")
@example("http.status = " + "9" * 400)
@example("rootcause.json = #" + "[" * 300 + "]" * 300)
@example('rootcause.json = #[{"Services": [{"EntityPath": [' + '{"Name": "a"}, ' * 200 + '{}]}]}]')
@example("rootcause.fault.service { index > 1e400 } AND rootcause.error.entity { last } OR rootcause.responsetime.exception { first }")
def test_xray_filter_expressions(seeded: ApiaryProcess, expression: str) -> None:
    now = datetime.now(timezone.utc)
    params: dict[str, Any] = {"StartTime": now - timedelta(minutes=5), "EndTime": now}
    if expression:
        params["FilterExpression"] = expression
    no_aws_server_error(aws_client(seeded, "xray").get_trace_summaries, **params)


# -- CloudWatch filter patterns and Logs Insights ---------------------------------------------------

pattern_tokens = st.sampled_from(["{", "}", "$.a", "$.b", "=", "!=", ">", "1", "1e400", '"x"', "&&", "||", "(", ")", "[",
                                  "]", "w1", "w2", ",", "*", "-", "?", "%ab%", "ERROR", "IS", "NULL", "TRUE", "EXISTS"])


@FUZZ
@given(st.lists(pattern_tokens, max_size=12).map(" ".join) | st.text(max_size=60))
@example("{ " + "(" * 300 + "$.a = 1" + ")" * 300 + " }")
@example(NESTED_PARENS)
@example("[" * 300)
@example('{ $.a = "\ud800" }')
def test_cloudwatch_filter_patterns(seeded: ApiaryProcess, pattern: str) -> None:
    no_aws_server_error(aws_client(seeded, "logs").filter_log_events, logGroupName=LOG_GROUP, filterPattern=pattern)


insights_tokens = st.sampled_from(["fields", "filter", "stats", "count(*)", "by", "sort", "desc", "limit", "parse", "|",
                                   "@message", "@timestamp", "a", "like", "/x/", "(", ")", "=", "and", "or", "not",
                                   "bin(5m)", "display", "10", '"s"', "as", ",", "avg(a)", "1e400", "-", "*", "in", "["])


@FUZZ
@given(st.lists(insights_tokens, max_size=14).map(" ".join) | st.text(max_size=60))
@example("filter " + "(" * 300 + "@message like /a/" + ")" * 300)
@example("fields @message | filter " + "not " * 2000 + "a = 1")
@example("stats count(*) by bin(" + "9" * 400 + "m)")
@example("limit 1" + "0" * 30)
def test_logs_insights_queries(seeded: ApiaryProcess, query: str) -> None:
    logs = aws_client(seeded, "logs")
    started = no_aws_server_error(logs.start_query, logGroupName=LOG_GROUP, startTime=0, endTime=int(time.time()) + 60,
                                  queryString=query)
    if started is not None:
        no_aws_server_error(logs.get_query_results, queryId=started["queryId"])


@pytest.mark.parametrize("start, end", [(0, 2**62), (-(2**62), 0), (2**40, 2**41)])
def test_logs_insights_with_absurd_times_completes(seeded: ApiaryProcess, start: int, end: int) -> None:
    logs = aws_client(seeded, "logs")
    started = no_aws_server_error(logs.start_query, logGroupName=LOG_GROUP, startTime=start, endTime=end,
                                  queryString="stats count(*) by bin(1h)")
    if started is not None:
        for _ in range(20):
            results = no_aws_server_error(logs.get_query_results, queryId=started["queryId"])
            if results is None or results["status"] != "Running":
                break
            time.sleep(0.1)
        assert results is None or results["status"] == "Complete"
