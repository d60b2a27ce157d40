"""Logs Insights as AWS's "Logs Insights QL" reference describes it, through boto3, on DuckDB and on ClickHouse.

Each test names the section of the reference it follows (CWL_QuerySyntax*.html pages); the data and the
queries are this test's own. Every value comes back as a string, as GetQueryResults gives it.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from typing import Any, Iterator

import boto3
import pytest
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource

from tests.logs.insights_client import put, put_last_two_hours, query
from tests.stores import STORES, StoreServer, Tenant, running


@pytest.fixture(scope="module", params=STORES)
def store_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[StoreServer]:
    """One server per store for this module, with an environment for each of its tests."""
    with running(request.param, tmp_path_factory.mktemp(request.param), tenants=32) as server:
        yield server

ORDERS = [
    {"level": "ERROR", "latency": 120, "user": {"id": "u1"}, "items": [{"sku": "a-1"}], "status": 500, "ip": "10.0.1.5"},
    {"level": "INFO", "latency": 30, "user": {"id": "u2"}, "items": [{"sku": "b-2"}], "status": "ok", "ip": "192.168.1.9"},
    {"level": "INFO", "latency": 45, "user": {"id": "u1"}, "items": [], "status": 200, "ip": "10.0.9.1"},
    {"level": "WARN", "latency": 7, "user": {"id": "u3"}, "items": [{"sku": "c-3"}], "status": 404, "ip": "2001:db8::7"},
]


@pytest.fixture
def orders(logs: Any) -> list[dict[str, Any]]:
    put(logs, "orders", [json.dumps(o) for o in ORDERS] + ["  padded plain line  ", "xxtrim-mexx"])
    return ORDERS


def test_comments_regex_match_and_arithmetic(logs: Any, orders: list[dict[str, Any]]) -> None:
    """CWL_QuerySyntax (comments with #), CWL_QuerySyntax-operations-functions (arithmetic ^ and %),
    CWL_QuerySyntax-regex (=~ with a regular expression)."""
    rows = query(logs, "orders", "# slow or failing orders only\n"
                                 "fields latency % 7 as rest, latency ^ 2 as squared, latency / 0 as nothing\n"
                                 "| filter level =~ /^(ERROR|WARN)$/  # ERROR or WARN\n"
                                 "| sort latency desc")
    assert rows == [{"rest": "1", "squared": "14400"}, {"rest": "0", "squared": "49"}]
    assert [r["level"] for r in query(logs, "orders", 'fields level | filter level =~ "NF" | limit 5')] == ["INFO"] * 2
    assert [r["@message"] for r in query(logs, "orders", "filter @message like /(?i)PADDED/")] == ["  padded plain line  "]


def test_string_functions(logs: Any, orders: list[dict[str, Any]]) -> None:
    """CWL_QuerySyntax-operations-functions, "String functions": results as AWS types them (isempty,
    isblank and strcontains are the numbers 1 and 0; substr counts from 0)."""
    row, = query(logs, "orders", 'filter @message like "padded" | fields ltrim(@message) as l, rtrim(@message) as r, '
                                 'trim(@message) as t, substr(trim(@message), 7, 5) as s, '
                                 'replace(@message, "plain", "PLAIN") as rp, strcontains(@message, "plain") as c, '
                                 'strcontains(@message, "nope") as c0, strlen(@message) as n, toupper(trim(@message)) as u, '
                                 'isempty(nothing) as e, isblank("   ") as b, isblank(@message) as b0, '
                                 'concat("<", trim(@message), ">") as cc')
    assert row == {"l": "padded plain line  ", "r": "  padded plain line", "t": "padded plain line", "s": "plain",
                   "rp": "  padded PLAIN line  ", "c": "1", "c0": "0", "n": "21", "u": "PADDED PLAIN LINE",
                   "e": "1", "b": "1", "b0": "0", "cc": "<padded plain line>"}
    row, = query(logs, "orders", 'filter @message like "trim" | fields trim(@message, "x") as t, '
                                 'ltrim(@message, "x") as l, rtrim(@message, "x") as r, tolower("AbC") as lo')
    assert row == {"t": "trim-me", "l": "trim-mexx", "r": "xxtrim-me", "lo": "abc"}
    # isempty in a filter: the events without a level
    assert len(query(logs, "orders", "filter isempty(level) | fields @message")) == 2


def test_in_and_not_in_over_a_list_of_text_and_numbers(logs: Any, orders: list[dict[str, Any]]) -> None:
    """CWL_QuerySyntax-operations-functions, comparison: set membership with `in`/`not in`."""
    assert sorted(r["status"] for r in query(logs, "orders", 'fields status | filter status in [500, "ok"]')) == \
        ["500", "ok"]
    assert sorted(r["status"] for r in query(logs, "orders",
                                              'fields status | filter ispresent(status) and status not in [500, "ok"]')) \
        == ["200", "404"]
    assert sorted(r["latency"] for r in query(logs, "orders", "fields latency | filter latency in [7, 45]")) == ["45", "7"]


def test_dotted_names_reach_nested_json_and_arrays(logs: Any, orders: list[dict[str, Any]]) -> None:
    """CWL_AnalyzeLogData-discoverable-fields: JSON fields flattened with dots, with or without backticks."""
    rows = query(logs, "orders", "fields user.id, `user.id` as quoted, items.0.sku as sku | filter user.id = 'u1' "
                                 "| sort @timestamp asc")
    assert rows == [{"user.id": "u1", "quoted": "u1", "sku": "a-1"}, {"user.id": "u1", "quoted": "u1"}]
    rows = query(logs, "orders", 'fields jsonParse(@message) as j | filter j.user.id = "u3" | display j.items[0].sku')
    assert rows == [{"j.items[0].sku": "c-3"}]


def test_a_json_line_is_an_object_after_any_json_whitespace(logs: Any) -> None:
    """CWL_AnalyzeLogData-discoverable-fields: the fields of a JSON line, led by the whitespace JSON allows (tabs and
    line breaks too), and none from a line that is a list, a string, or an object with text after it; both stores
    read a line alike (ClickHouse looks keys up in the line itself, DuckDB in the lines that are JSON objects)."""
    put(logs, "lines", ['\t{"user": {"id": "t1"}}', '\r\n {"user": {"id": "t2"}}', '[{"user": {"id": "l1"}}]',
                        '{"user": {"id": "x1"}} and text', '"user.id"', '{"user": {"id": "o1"}}'])
    assert query(logs, "lines", "filter ispresent(user.id) | fields user.id | sort user.id asc") == \
        [{"user.id": "o1"}, {"user.id": "t1"}, {"user.id": "t2"}]
    assert query(logs, "lines", "fields `0.user.id` as first | filter ispresent(first)") == []


def test_otel_attributes_with_dots_in_their_keys(aws_env: Tenant, logs: Any) -> None:
    """OTel log attributes keep dots inside their keys (`user.id`): fields and filter see them, with or without
    backticks (CWL_QuerySyntax, field names)."""
    provider = LoggerProvider(resource=Resource.create({"service.name": "checkout", "host.name": "box"}))
    exporter = OTLPLogExporter(endpoint=f"{aws_env.url}/v1/logs", headers={"x-honeycomb-team": aws_env.key})
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    logger = logging.getLogger("insights.dotted")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    handler = LoggingHandler(logger_provider=provider)
    logger.addHandler(handler)
    try:
        for user, code in (("u-7", 200), ("u-8", 503), ("u-7", 404)):
            logger.info("checkout done", extra={"user.id": user, "http.status_code": code})
    finally:
        logger.removeHandler(handler)
        provider.shutdown()
    rows = query(logs, "checkout", "fields user.id, `http.status_code` as code | filter `user.id` = 'u-7' "
                                   "| sort code asc")
    assert rows == [{"user.id": "u-7", "code": "200"}, {"user.id": "u-7", "code": "404"}]
    assert query(logs, "checkout", "filter http.status_code >= 500 | stats count(*) as n by user.id") == \
        [{"user.id": "u-8", "n": "1"}]


def test_dedup_keeps_the_first_event_per_value_in_sort_order(logs: Any) -> None:
    """CWL_QuerySyntax-Dedup: one event per value, first in the sort order; nulls are never duplicates."""
    lines = [json.dumps({"server": s, "n": i}) for i, s in enumerate(["web-1", "web-2", "web-1", "web-2", "web-1"])]
    put(logs, "servers", lines + ['{"n": 98}', '{"n": 99}'])
    rows = query(logs, "servers", "fields server, n | sort @timestamp desc | dedup server")
    assert rows == [{"n": "99"}, {"n": "98"}, {"server": "web-1", "n": "4"}, {"server": "web-2", "n": "3"}]
    rows = query(logs, "servers", "fields server, n | filter ispresent(server) | sort n asc | dedup server | limit 1")
    assert rows == [{"server": "web-1", "n": "0"}]
    with pytest.raises(logs.exceptions.MalformedQueryException, match="only limit may follow dedup"):
        logs.start_query(logGroupName="servers", startTime=0, endTime=1, queryString="dedup server | sort n")


def test_dedup_shows_the_first_event_whole(logs: Any) -> None:
    """CWL_QuerySyntax-Dedup: the event kept is shown as it is; a field it lacks stays empty, never filled in
    from an earlier event of the same value."""
    put(logs, "builds", [json.dumps({"job": "api", "took": 31, "by": "ci"}), json.dumps({"job": "api", "took": 40}),
                         json.dumps({"job": "web", "by": "ana"}), json.dumps({"job": "web", "took": 12})])
    rows = query(logs, "builds", "fields job, took, by | sort @timestamp desc | dedup job")
    assert rows == [{"job": "web", "took": "12"}, {"job": "api", "took": "40"}]


def test_dedup_after_a_filter_on_presence(logs: Any) -> None:
    """A filter ispresent(f) before dedup f leaves no event lacking f; a field named f after that filter may
    be missing again, and each event lacking it is still kept."""
    put(logs, "hosts", [json.dumps({"host": "a", "n": 1}), json.dumps({"host": "a", "n": 2, "zone": "z1"}),
                        json.dumps({"host": "b", "n": 3}), json.dumps({"host": "b", "n": 4}), json.dumps({"n": 5})])
    rows = query(logs, "hosts", "fields host, n | filter ispresent(host) | sort @timestamp desc | dedup host")
    assert rows == [{"host": "b", "n": "4"}, {"host": "a", "n": "2"}]
    rows = query(logs, "hosts", "filter ispresent(host) | fields zone as host, n | sort @timestamp desc | dedup host")
    assert rows == [{"n": "4"}, {"n": "3"}, {"host": "z1", "n": "2"}, {"n": "1"}]


def test_datetime_functions(logs: Any) -> None:
    """CWL_QuerySyntax-operations-functions, "Datetime functions": bin, datefloor, dateceil, fromMillis, toMillis."""
    t0 = put(logs, "clock", ["tick"], start_ms=int(datetime.now(timezone.utc).timestamp() * 1000) // 3_600_000
             * 3_600_000 + 754_321 - 3_600_000)
    hour = t0 // 3_600_000 * 3_600_000
    row, = query(logs, "clock", "fields toMillis(@timestamp) as ms, datefloor(@timestamp, 1h) as f, "
                                "dateceil(@timestamp, 1h) as c, bin(5m) as b, fromMillis(toMillis(@timestamp) + 1000) as later, "
                                "toMillis(datefloor(@timestamp, 1m)) as minute")

    def shown(ms: int) -> str:
        return datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]

    assert row == {"ms": str(t0), "f": shown(hour), "c": shown(hour + 3_600_000), "b": shown(hour + 10 * 60_000),
                   "later": shown(t0 + 1000), "minute": str(t0 // 60_000 * 60_000)}


def test_ip_functions_and_vpc_flow_log_fields(logs: Any) -> None:
    """CWL_QuerySyntax-operations-functions, "IP address string functions", with the discovered fields of VPC flow
    logs (CWL_AnalyzeLogData-discoverable-fields) as the VPC sample queries use them."""
    flows = ["2 123456789012 eni-0a1b2c3d 10.0.0.7 10.0.1.9 443 49152 6 10 840 1700000000 1700000060 ACCEPT OK",
             "2 123456789012 eni-0a1b2c3d 10.0.0.8 10.0.1.9 443 49153 6 3 200 1700000000 1700000060 ACCEPT OK",
             "2 123456789012 eni-0a1b2c3d 172.16.5.4 10.0.1.9 22 50000 6 1 60 1700000000 1700000060 REJECT OK",
             "not a flow line 10.0.0.9"]
    put(logs, "vpc", flows)
    rows = query(logs, "vpc", 'filter isIpv4InSubnet(srcAddr, "10.0.0.0/24") | stats sum(bytes) as sent, '
                              'count(*) as flows by dstAddr')
    assert rows == [{"dstAddr": "10.0.1.9", "sent": "1040", "flows": "2"}]
    assert query(logs, "vpc", 'filter action = "REJECT" | stats count(*) as rejected by srcAddr, dstPort') == \
        [{"srcAddr": "172.16.5.4", "dstPort": "50000", "rejected": "1"}]
    row, = query(logs, "vpc", 'fields isValidIp("10.1.2.3") as a, isValidIpV4("10.1.2.300") as b, '
                              'isValidIpV6("2001:db8::1") as c, isValidIpV6("10.1.2.3") as d, '
                              'isIpInSubnet("2001:db8::7", "2001:db8::/32") as e, isIpv6InSubnet("2001:db9::1", "2001:db8::/32") as f, '
                              'isIpInSubnet("192.168.1.9", "192.168.0.0/16") as g | limit 1')
    assert row == {"a": "1", "b": "0", "c": "1", "d": "0", "e": "1", "f": "0", "g": "1"}
    # not addresses (a leading zero, a part over 255, words) are in no subnet, and a constant one is no error
    row, = query(logs, "vpc", 'fields isIpv4InSubnet("010.0.0.7", "10.0.0.0/8") as h, isIpv4InSubnet("10.0.0.256", '
                              '"10.0.0.0/8") as i, isIpv4InSubnet("10.31.2.3", "10.16.0.0/12") as j, '
                              'isIpv4InSubnet("not an address", "10.0.0.0/8") as k, isIpv4InSubnet(nosuchfield, '
                              '"10.0.0.0/8") as m | limit 1')
    assert {k: row.get(k) for k in "hijkm"} == {"h": "0", "i": "0", "j": "1", "k": "0", "m": None}
    with pytest.raises(logs.exceptions.MalformedQueryException, match="CIDR"):
        logs.start_query(logGroupName="vpc", startTime=0, endTime=1,
                         queryString='filter isIpv4InSubnet(srcAddr, "not a subnet")')


def test_lambda_report_fields(logs: Any) -> None:
    """CWL_AnalyzeLogData-discoverable-fields (Lambda) and the Lambda sample query on over-provisioned memory."""
    put(logs, "/aws/lambda/fn", [
        "START RequestId: 1d3f-aa Version: $LATEST",
        "REPORT RequestId: 1d3f-aa\tDuration: 102.25 ms\tBilled Duration: 103 ms\tMemory Size: 128 MB\t"
        "Max Memory Used: 70 MB\tInit Duration: 120.50 ms",
        "START RequestId: 2e4a-bb Version: $LATEST",
        "REPORT RequestId: 2e4a-bb\tDuration: 8.00 ms\tBilled Duration: 8 ms\tMemory Size: 128 MB\tMax Memory Used: 72 MB",
    ])
    assert query(logs, "/aws/lambda/fn", 'filter @type = "REPORT" | stats max(@memorySize / 1000 / 1000) as provisioned, '
                                         "max(@maxMemoryUsed / 1000 / 1000) as used, avg(@billedDuration) as billed, "
                                         "count(@initDuration) as cold") == \
        [{"provisioned": "128", "used": "72", "billed": "55.5", "cold": "1"}]
    assert [r["@requestId"] for r in query(logs, "/aws/lambda/fn", "fields @requestId, @duration | "
                                                                   "filter @duration > 50")] == ["1d3f-aa"]


def test_stats_functions_and_their_column_names(logs: Any, orders: list[dict[str, Any]]) -> None:
    """CWL_QuerySyntax-Stats: aggregation and non-aggregation functions, columns named as written."""
    row, = query(logs, "orders", "filter ispresent(latency) | stats count(*), count_distinct(level), sortsFirst(latency), "
                                 "sortsLast(latency), earliest(level), latest(level), min(latency), max(latency), "
                                 "sum(latency), avg(latency), pct(latency, 50)")
    assert row == {"count(*)": "4", "count_distinct(level)": "3", "sortsFirst(latency)": "7", "sortsLast(latency)": "120",
                   "earliest(level)": "ERROR", "latest(level)": "WARN", "min(latency)": "7", "max(latency)": "120",
                   "sum(latency)": "202", "avg(latency)": "50.5", "pct(latency, 50)": "37.5"}
    assert query(logs, "orders", "filter ispresent(level) | stats count(*) as n by level "
                                 "| sort n desc, level asc | limit 2") == [{"level": "INFO", "n": "2"}, {"level": "ERROR", "n": "1"}]


def test_discovered_fields_of_every_event(logs: Any, orders: list[dict[str, Any]]) -> None:
    """CWL_AnalyzeLogData-discoverable-fields: @log is account:group, @logStream, @ingestionTime, @timestamp."""
    row, = query(logs, "orders", "fields @log, @logStream, ispresent(@ingestionTime) as ingested, "
                                 "toMillis(@timestamp) > 0 as timed | limit 1")
    assert row == {"@log": "000000000000:orders", "@logStream": "s", "ingested": "1", "timed": "1"}


def test_parse_numeric_general_and_json_functions(logs: Any) -> None:
    """CWL_QuerySyntax-Parse (a regular expression with named groups), and the numeric, general and JSON
    function groups of CWL_QuerySyntax-operations-functions."""
    put(logs, "mixed", ["user=ana took 42.5 ms", '{"a": {"b": [3, 4]}, "n": -2.5}', "user=bo took 7 ms"])
    rows = query(logs, "mixed", "parse @message /user=(?<who>\\w+) took (?<ms>[0-9.]+) ms/ | filter ispresent(who) "
                                "| sort ms desc | display who, ms, unmask(who) as plain")
    assert rows == [{"who": "ana", "ms": "42.5", "plain": "ana"}, {"who": "bo", "ms": "7", "plain": "bo"}]
    row, = query(logs, "mixed", "filter ispresent(n) | fields jsonParse(@message) as j | display abs(n) as a, "
                                "ceil(n) as c, floor(n) as f, greatest(n, 1, 9) as g, least(n, 1) as l, sqrt(16) as s, "
                                "round(log(1)) as ln, coalesce(missing, n) as co, now() > 1700000000 as fresh, "
                                "jsonStringify(j) as text, j.a.b[1] as b1")
    assert row == {"a": "2.5", "c": "-2", "f": "-3", "g": "9", "l": "-2.5", "s": "4", "ln": "0", "co": "-2.5",
                   "fresh": "1", "text": '{"a": {"b": [3, 4]}, "n": -2.5}', "b1": "4"}


PATTERNED = (["2026-01-01 19:00:0%d [INFO] Calling DynamoDB to store for resource id %s-12345" % (i, rid)
              for i, rid in enumerate(["12342342k124", "324892398123", "3ff231242342", "77aa01"])]
             + ["[INFO] Request time: 327 ms", "[INFO] Request time: 41 ms",
                "[ERROR] card 4111 declined for order 77", "[ERROR] card 5500 declined for order 78"])


def test_pattern_clusters_events_by_their_shared_text(logs: Any) -> None:
    """CWL_QuerySyntax-Pattern and CWL_AnalyzeLogData_Patterns: one row per pattern, varying parts as <*>, with
    @ratio, @sampleCount and @severityLabel; filter, parse and sort combine with it."""
    put(logs, "app", PATTERNED)
    rows = query(logs, "app", "pattern @message")
    assert rows == [
        {"@pattern": "<*> <*> [INFO] Calling DynamoDB to store for resource id <*>", "@ratio": "0.50",
         "@sampleCount": "4", "@severityLabel": "Info"},
        {"@pattern": "[ERROR] card <*> declined for order <*>", "@ratio": "0.25", "@sampleCount": "2",
         "@severityLabel": "Error"},
        {"@pattern": "[INFO] Request time: <*> ms", "@ratio": "0.25", "@sampleCount": "2", "@severityLabel": "Info"}]
    # the ratio is of the events given to pattern: after a filter, all of them
    assert query(logs, "app", "filter @message like /ERROR/ | pattern @message") == [
        {"@pattern": "[ERROR] card <*> declined for order <*>", "@ratio": "1.00", "@sampleCount": "2",
         "@severityLabel": "Error"}]
    # a parsed field as the input; the pattern lost its level word, the label still comes from the events' level
    assert query(logs, "app", 'parse @message "[*] *" as level, text | pattern text | sort @sampleCount asc, '
                              "@pattern desc | limit 1") == [
        {"@pattern": "card <*> declined for order <*>", "@ratio": "0.25", "@sampleCount": "2",
         "@severityLabel": "Error"}]
    assert query(logs, "app", 'pattern @message | filter @severityLabel = "Error" | display @sampleCount') == \
        [{"@sampleCount": "2"}]
    assert query(logs, "app", "pattern @message | filter @ratio > 0.3 | display @ratio") == [{"@ratio": "0.50"}]
    with pytest.raises(logs.exceptions.MalformedQueryException, match="not defined after stats"):
        logs.start_query(logGroupName="app", startTime=0, endTime=1, queryString="pattern @message | fields @message")
    # lines one word apart join one pattern; a line sharing that word's neighbours with no other stays whole
    put(logs, "logins", ["User alice logged in", "User bob logged in", "User alice logged in", "User carol logged out",
                         "GET /health", "POST /health"])
    assert query(logs, "logins", "pattern @message | display @pattern, @sampleCount") == [
        {"@pattern": "User <*> logged in", "@sampleCount": "3"}, {"@pattern": "GET /health", "@sampleCount": "1"},
        {"@pattern": "POST /health", "@sampleCount": "1"}, {"@pattern": "User carol logged out", "@sampleCount": "1"}]


def test_unnest_makes_one_event_per_item_of_a_json_list(logs: Any) -> None:
    """CWL_QuerySyntax-Unnest: a jsonParse list flattened into records, then displayed, filtered or aggregated;
    a value that is no list is a list of one."""
    put(logs, "lists", [
        json.dumps({"events": [{"name": "exception"}, {"name": "user action"}]}),
        json.dumps({"events": {"name": "single"}}),
        json.dumps({"accounts": [{"type": "internal", "id": "a1", "dropped": 3},
                                 {"type": "external", "id": "a2", "dropped": 5},
                                 {"type": "internal", "id": "a1", "dropped": 4}], "tags": ["x", "y"]}),
        "no json here"])
    assert query(logs, "lists", "fields jsonParse(@message) as json_message | unnest json_message.events into event "
                                "| sort event.name asc | display event.name") == \
        [{"event.name": "exception"}, {"event.name": "single"}, {"event.name": "user action"}]
    assert query(logs, "lists", 'fields jsonParse(@message) as js | unnest js.accounts into account '
                                '| filter account.type = "internal" | stats sum(account.dropped) as n by account.id') == \
        [{"account.id": "a1", "n": "7"}]
    assert query(logs, "lists", "fields jsonParse(@message) as j | unnest j.tags into tag | sort tag desc "
                                "| display tag") == [{"tag": "y"}, {"tag": "x"}]
    with pytest.raises(logs.exceptions.MalformedQueryException):
        logs.start_query(logGroupName="lists", startTime=0, endTime=1, queryString="unnest j.tags")


def test_filter_index_uses_the_default_indexes_and_skips_unindexed_fields(logs: Any) -> None:
    """CWL_QuerySyntax-FilterIndex (and "filterIndex compared to filter"): on a field a log group is indexed on
    it filters like filter; a log group not indexed on the field is skipped. Apiary's indexes are AWS's default
    ones (@logStream, traceId, ...); it has no custom field indexes."""
    put(logs, "svc", [json.dumps({"requestId": "r-1"}), json.dumps({"requestId": "r-2"})], stream="web")
    logs.create_log_stream(logGroupName="svc", logStreamName="db")
    logs.put_log_events(logGroupName="svc", logStreamName="db",
                        logEvents=[{"timestamp": int(datetime.now(timezone.utc).timestamp() * 1000) - 1000,
                                    "message": json.dumps({"requestId": "r-3"})}])
    by_filter = query(logs, "svc", 'fields requestId | filter @logStream = "web" | sort requestId asc')
    assert by_filter == [{"requestId": "r-1"}, {"requestId": "r-2"}]
    assert query(logs, "svc", 'fields requestId | filterIndex @logStream = "web" | sort requestId asc') == by_filter
    assert len(query(logs, "svc", 'filterIndex @logStream in ["web", "db"] | fields requestId')) == 3
    assert query(logs, "svc", 'fields requestId | filterIndex requestId = "r-1"') == []
    with pytest.raises(logs.exceptions.MalformedQueryException, match="filterIndex takes"):
        logs.start_query(logGroupName="svc", startTime=0, endTime=1, queryString="filterIndex requestId like /r/")


def test_source_selects_the_log_groups_inside_the_query(logs: Any) -> None:
    """CWL_QuerySyntax-Source and StartQuery: log groups chosen by name prefix (and class) in the query string,
    with no log group in the request."""
    for group, lines in (("/app/web", ["GET /", "GET /a"]), ("/app/db", ["SELECT 1"]), ("/other", ["noise"])):
        put(logs, group, lines)
    assert query(logs, None, 'SOURCE logGroups(namePrefix: ["/app/"]) | stats count(*) as n by @log '
                             "| sort @log asc") == [{"@log": "000000000000:/app/db", "n": "1"},
                                                    {"@log": "000000000000:/app/web", "n": "2"}]
    assert query(logs, None, "SOURCE logGroups() | stats count(*) as n") == [{"n": "4"}]
    assert query(logs, None, "SOURCE logGroups(namePrefix: ['/other', '/app/d'], class: 'STANDARD') "
                             "| fields @message | sort @message asc") == [{"@message": "SELECT 1"}, {"@message": "noise"}]
    assert query(logs, None, 'SOURCE logGroups(class: "INFREQUENT_ACCESS") | stats count(*) as n') == [{"n": "0"}]
    with pytest.raises(logs.exceptions.InvalidParameterException, match="not both"):
        logs.start_query(logGroupName="/other", startTime=0, endTime=1, queryString="SOURCE logGroups() | limit 1")
    with pytest.raises(logs.exceptions.InvalidParameterException, match="SOURCE"):
        logs.start_query(startTime=0, endTime=1, queryString="fields @message")
    with pytest.raises(logs.exceptions.MalformedQueryException, match="dataSource"):  # logGroupTags: tests/tagging
        logs.start_query(startTime=0, endTime=1, queryString="SOURCE dataSource(['amazon_vpc.flow']) | limit 1")
    with pytest.raises(logs.exceptions.MalformedQueryException, match="at most 5"):
        logs.start_query(startTime=0, endTime=1,
                         queryString="SOURCE logGroups(namePrefix: ['a', 'b', 'c', 'd', 'e', 'f'])")


def test_addtotals_adds_row_and_column_totals(logs: Any) -> None:
    """CWL_QuerySyntax-Addtotals: a Total column summing the numeric fields of each row (or the fields named,
    under the name given), and with col=true a summary row of column totals at the bottom."""
    put(logs, "bills", [json.dumps({"item": i, "price": p, "tax": t, "qty": q})
                        for i, p, t, q in (("pen", 2, 0.5, 3), ("ink", 10, 2, 1), ("pad", 4, 1, 2))])
    assert query(logs, "bills", "fields item, price, tax, qty | sort price asc | addtotals price, tax") == [
        {"item": "pen", "price": "2", "tax": "0.5", "qty": "3", "Total": "2.5"},
        {"item": "pad", "price": "4", "tax": "1", "qty": "2", "Total": "5"},
        {"item": "ink", "price": "10", "tax": "2", "qty": "1", "Total": "12"}]
    # every numeric field by default (item holds text: nothing to add), under a name of one's own
    assert [r["RowSum"] for r in query(logs, "bills", "fields item, price, qty | sort price desc "
                                                       "| addtotals fieldname=RowSum")] == ["11", "6", "5"]
    assert query(logs, "bills", "stats sum(price) as p, sum(qty) as q by item | sort item asc "
                                "| addtotals row=false col=true p") == [
        {"item": "ink", "p": "10", "q": "1"}, {"item": "pad", "p": "4", "q": "2"}, {"item": "pen", "p": "2", "q": "3"},
        {"p": "16"}]
    with pytest.raises(logs.exceptions.MalformedQueryException, match="addtotals takes"):
        logs.start_query(logGroupName="bills", startTime=0, endTime=1, queryString="fields price | addtotals sum=yes")


def test_diff_compares_patterns_with_the_previous_period(logs: Any) -> None:
    """CWL_QuerySyntax-Diff and CWL_AnalyzeLogData_Compare: the patterns of the query's window beside their counts
    in the window just before it (or a day, week or month back); diff follows pattern."""
    before = ["[ERROR] card 4111 declined"] * 2 + ["[INFO] Request time: %d ms" % n for n in (5, 7, 9)]
    now = ["[ERROR] card 5500 declined"] + ["[INFO] Request time: %d ms" % n for n in (3, 4, 8)] + \
        ["[WARN] disk 91% full", "[WARN] disk 97% full"]
    hour = put_last_two_hours(logs, "shop", before, now)

    def run(text: str) -> list[dict[str, str]]:
        return query(logs, "shop", text, {"startTime": hour, "endTime": hour + 3599})

    assert run("pattern @message | diff") == [
        {"@pattern": "[INFO] Request time: <*> ms", "@ratio": "0.50", "@sampleCount": "3", "@severityLabel": "Info",
         "@previousSampleCount": "3", "@sampleCountChange": "0"},
        {"@pattern": "[WARN] disk <*>% full", "@ratio": "0.33", "@sampleCount": "2", "@severityLabel": "Warning",
         "@previousSampleCount": "0", "@sampleCountChange": "2"},
        {"@pattern": "[ERROR] card <*> declined", "@ratio": "0.17", "@sampleCount": "1", "@severityLabel": "Error",
         "@previousSampleCount": "2", "@sampleCountChange": "-1"}]
    # the same hour a day earlier held nothing: every pattern is new
    assert [r["@previousSampleCount"] for r in run("pattern @message | diff previousDay")] == ["0", "0", "0"]
    assert run("pattern @message | diff | filter @sampleCountChange < 0 | display @pattern") == \
        [{"@pattern": "[ERROR] card <*> declined"}]
    with pytest.raises(logs.exceptions.MalformedQueryException, match="diff has to follow pattern"):
        logs.start_query(logGroupName="shop", startTime=0, endTime=1, queryString="filter @message like /x/ | diff")


# -- join and subqueries (CWL_QuerySyntax-Join, CWL_QuerySyntax-Subqueries) ------------------------------------
# The queries follow the shapes of the examples on AWS's two pages (API Gateway requests joined with a Lambda
# function's lines, orders left-joined with payments, requests picked by another service's failures); the log
# lines and the answers are this module's own.

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
                            {"requestId": "q3", "endpoint": "/c", "userId": "u3"}, {"endpoint": "/health"}))
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
    assert r["statistics"]["recordsScanned"] == 8.0 and r["statistics"]["recordsMatched"] == 2.0
    # an event without the field passes neither `in` nor `not in`, as with a list
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
