"""Hypothesis against the two CloudWatch Logs languages, through boto3, on DuckDB and on ClickHouse.

Every generated Logs Insights query is either refused with AWS's 400 ``MalformedQueryException`` or
accepted and then completes (a query the compiler accepted must not fail in the database); every filter
pattern is either answered or refused with 400 ``InvalidParameterException``. Never a 5xx, never a
dropped connection (botocore would raise it). Deep nesting and huge expressions are explicit examples.
"""

from __future__ import annotations

import time
from typing import Any, Iterator

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.stores import STORES, StoreServer, Tenant, running

FUZZ = settings(max_examples=60, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                       HealthCheck.data_too_large])
GROUP = "fuzzed"
LINES = ['{"level": "ERROR", "latency": 120, "user": {"id": "u1"}, "tags": ["a", "b"], "ip": "10.0.0.1"}',
         '{"level": "INFO", "latency": 3.5e-2, "ok": true, "note": null}', "plain text line 42",
         '10.0.0.7 - bob [10/Oct/2026:13:55:36 -0700] "GET / HTTP/1.0" 200 15',
         "REPORT RequestId: ab-1\tDuration: 1.5 ms\tBilled Duration: 2 ms\tMemory Size: 128 MB\tMax Memory Used: 9 MB",
         "2 123456789012 eni-0a1b 10.0.0.7 10.0.1.9 443 49152 6 10 840 1700000000 1700000060 ACCEPT OK"]


@pytest.fixture(scope="module", params=STORES)
def tenant(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tenant]:
    with running(request.param, tmp_path_factory.mktemp(request.param), tenants=1) as server:
        t: StoreServer = server
        yield t.take()


@pytest.fixture(scope="module")
def logs(tenant: Tenant) -> Iterator[Any]:
    client = boto3.client("logs", endpoint_url=tenant.url, region_name="us-east-1", aws_access_key_id=tenant.key,
                          aws_secret_access_key=tenant.key, config=Config(retries={"total_max_attempts": 1}))
    client.create_log_group(logGroupName=GROUP, tags={"team": "web", "env": "prod-eu"})  # for SOURCE logGroupTags
    client.create_log_stream(logGroupName=GROUP, logStreamName="s")
    now = int(time.time() * 1000) - 10_000
    client.put_log_events(logGroupName=GROUP, logStreamName="s",
                          logEvents=[{"timestamp": now + i, "message": m} for i, m in enumerate(LINES)])
    yield client
    client.close()


def refused_as(exc: ClientError, *codes: str) -> None:
    status = exc.response["ResponseMetadata"]["HTTPStatusCode"]
    assert status == 400 and exc.response["Error"]["Code"] in codes, exc.response["Error"]


# -- Logs Insights ---------------------------------------------------------------------------------

names = st.sampled_from(["@timestamp", "@message", "@logStream", "@log", "@ingestionTime", "level", "latency",
                         "user.id", "`user.id`", "tags.0", "ok", "note", "missing", "@duration", "srcAddr", "bytes",
                         "@type", "x"])
literals = (st.integers(-10**6, 10**6).map(str) | st.sampled_from(['"ERROR"', "'x'", '""', "1e-3", "5m", "1h", "0",
                                                                    '"10.0.0.0/8"', '"2001:db8::/32"']))
functions = st.sampled_from(["abs", "ceil", "floor", "log", "sqrt", "strlen", "toupper", "tolower", "trim", "ltrim",
                             "rtrim", "substr", "replace", "strcontains", "isempty", "isblank", "concat", "coalesce",
                             "greatest", "least", "ispresent", "toMillis", "fromMillis", "datefloor", "dateceil",
                             "bin", "isValidIp", "isValidIpV4", "isValidIpV6", "isIpInSubnet", "isIpv4InSubnet",
                             "isIpv6InSubnet", "unmask", "jsonParse", "now", "nosuch"])


def _expressions() -> st.SearchStrategy[str]:
    def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        binary = st.tuples(inner, st.sampled_from(["+", "-", "*", "/", "%", "^", "=", "!=", "<", ">=", "and", "or",
                                                   "like", "=~"]), inner).map(" ".join)
        call = st.tuples(functions, st.lists(inner, max_size=3)).map(lambda t: f"{t[0]}({', '.join(t[1])})")
        return (binary | call | inner.map(lambda e: f"({e})") | inner.map(lambda e: f"not {e}")
                | st.tuples(inner, st.lists(literals, min_size=1, max_size=3)).map(
                    lambda t: f"{t[0]} {'not in' if len(t[1]) % 2 else 'in'} [{', '.join(t[1])}]"))
    return st.recursive(names | literals | st.just("/ERR.r/"), extend, max_leaves=8)


expressions = _expressions()
aggregates = st.tuples(st.sampled_from(["count", "count_distinct", "avg", "sum", "min", "max", "stddev", "pct",
                                        "earliest", "latest", "sortsFirst", "sortsLast"]), names).map(
    lambda t: f"{t[0]}({t[1]}, 50)" if t[0] == "pct" else f"{t[0]}({t[1]})")
commands = (st.lists(expressions, min_size=1, max_size=3).map(lambda es: "fields " + ", ".join(
                f"{e} as f{i}" for i, e in enumerate(es)))
            | expressions.map(lambda e: f"filter {e}")
            | st.tuples(st.lists(aggregates, min_size=1, max_size=2), st.lists(names | st.just("bin(5m)"), max_size=2))
            .map(lambda t: "stats " + ", ".join(t[0]) + (" by " + ", ".join(t[1]) if t[1] else ""))
            | st.tuples(names, st.sampled_from(["asc", "desc", ""])).map(lambda t: f"sort {t[0]} {t[1]}")
            | st.integers(-5, 20_000).map(lambda n: f"limit {n}")
            | st.lists(names, min_size=1, max_size=2).map(lambda ns: "dedup " + ", ".join(ns))
            | st.sampled_from(['parse @message "* - * [*" as a, b, c', "parse @message /(?<word>\\w+) line/",
                               "display level, latency", "pattern @message", "# a comment\nfields @message",
                               "fields jsonParse(@message) as j | unnest j.tags into t", "unnest tags into t",
                               "pattern level", "pattern concat(level, @message)", "diff", "anomaly",
                               "pattern @message | diff", "pattern @message | diff previousMonth"])
            | expressions.map(lambda e: f"pattern {e}")
            | expressions.map(lambda e: f"filterIndex {e}")
            | st.tuples(names, st.sampled_from(["=", "in"]), literals).map(
                lambda t: f"filterIndex {t[0]} {t[1]} {'[' + t[2] + ']' if t[1] == 'in' else t[2]}")
            | st.tuples(st.lists(st.sampled_from(["fieldname=Sum", "row=false", "col=true", "col=maybe", "x=1"]),
                                 max_size=2), st.lists(names, max_size=2)).map(
                lambda t: "addtotals " + " ".join(t[0]) + (" " + ", ".join(t[1]) if t[1] else "")))
# CWL_QuerySyntax-Join and CWL_QuerySyntax-Subqueries: a query inside the query, well-formed or not (a join type AWS
# lacks, aliases missing or alike, a key of neither side, SOURCE forms a subquery does not take, nesting).
inner_queries = st.tuples(st.sampled_from([f"SOURCE '{GROUP}' | ", "", f"SOURCE '{GROUP}', '{GROUP}' | ",
                                           "SOURCE logGroups() | ", f"SOURCE '{GROUP}' "]),
                          st.lists(commands, min_size=1, max_size=3).map(" | ".join)).map("".join)
joins = st.tuples(st.sampled_from(["", "type=inner ", "type=LEFT ", "type=outer ", "type= "]),
                  st.sampled_from(["left=a right=b", "left=a right=a", "right=b", "left=a right=b left=c", ""]),
                  st.sampled_from(["a.level=b.level", "b.user.id=a.user.id", "a.x=c.x", "a.latency>b.latency", "a=b"]),
                  inner_queries,
                  st.sampled_from(["", " | fields a.level, b.latency, b.@message", " | stats count(*) by b.level",
                                   " | sort b.latency desc | limit 3", f" | filter a.level in (SOURCE '{GROUP}' "
                                   "| fields level)"])).map(
    lambda t: f"join {t[0]}{t[1]} where {t[2]} ({t[3]}){t[4]}")
subqueries = st.tuples(names, st.sampled_from(["in", "not in", "IN"]), inner_queries).map(
    lambda t: f"filter {t[0]} {t[1]} ({t[2]})")
commands = commands | joins | subqueries
# SOURCE logGroupTags: tag filters as CloudWatch Logs' TagFilter writes them (a key, its values: exact, *wildcards*,
# !negations), well-formed or not (no key, a key given twice, a '*' mid-value, six values).
tag_values = st.lists(st.sampled_from(["'web'", '"prod*"', "'!legacy'", "'*eu'", "'*'", "''", "'a*b'", "'!'", "1"]),
                      max_size=6).map(lambda vs: "[" + ", ".join(vs) + "]")
tag_filters = st.tuples(st.sampled_from(["key: 'team'", '"key": "env"', "key: ''", "", "key: 'a', key: 'b'",
                                         "key: ['team']", "nope: 'x'"]),
                        st.one_of(st.just(""), tag_values.map(lambda v: "values: " + v))).map(
    lambda t: "{" + ", ".join(p for p in t if p) + "}")
tag_sources = st.lists(tag_filters, max_size=6).map(lambda fs: "SOURCE logGroupTags([" + ", ".join(fs) + "]) | ")
sources = (st.sampled_from(["", "SOURCE logGroups() | ", 'SOURCE logGroups(namePrefix: ["fuz"]) | ',
                            "SOURCE logGroups(class: 'INFREQUENT_ACCESS') | ", "SOURCE logGroups(namePrefix: 1) | ",
                            "SOURCE logGroupTags([]) | ", "SOURCE dataSource(['amazon_vpc.flow']) | "])
           | tag_sources
           | tag_sources.map(lambda s: s.replace("SOURCE ", "SOURCE logGroups(namePrefix: ['fuz']) ", 1)))
queries = (st.tuples(sources, st.lists(commands, min_size=1, max_size=4).map(" | ".join)).map("".join)
           | st.text(max_size=80))


@FUZZ
@given(queries)
@example("(" * 60 + "latency" + ")" * 60)
@example("filter " + " and ".join(f"latency != {i}" for i in range(2000)))
@example("fields " + "+".join(["latency"] * 3000) + " as big")
@example("fields " + "+".join(["x"] * 999) + " as within_the_length_limit")
@example("filter " + "not " * 200 + "ok")
@example("fields substr(@message, 1e30, -1e30), fromMillis(1e300), datefloor(@timestamp, 99999999y), 2 ^ 99999")
@example("fields `" + "a" * 10_000 + "`")
@example("pattern " + "concat(" * 40 + "@message" + ")" * 40)
@example("addtotals")
@example(f"filter level in (SOURCE '{GROUP}' | filter latency > 1 | fields level) | join left=a right=b "
         f"where a.level=b.level (SOURCE '{GROUP}' | stats count(*) as n by level) | fields a.level, b.n")
@example(f"join type=left left=a right=b where a.level=b.level (SOURCE '{GROUP}' | limit 2) | pattern @message | diff")
@example(f"join left=a right=b where a.level=b.level (SOURCE '{GROUP}') | sort b.latency desc | dedup a.level")
@example("fields jsonParse(@message) as j | unnest j.tags into t | unnest t into u | pattern u | addtotals col=true")
def test_insights_queries_are_refused_in_aws_words_or_complete(logs: Any, query: str) -> None:
    window = {"startTime": 0, "endTime": int(time.time()) + 60}
    try:
        if query.lstrip().upper().startswith("SOURCE"):  # the query names its log groups itself
            started = logs.start_query(queryString=query, **window)
        else:
            started = logs.start_query(logGroupName=GROUP, queryString=query, **window)
    except ClientError as exc:
        # MalformedQueryException for the language; InvalidParameterException past StartQuery's 10,000 characters
        refused_as(exc, "MalformedQueryException", "InvalidParameterException")
        return
    deadline = time.monotonic() + 60
    while (r := logs.get_query_results(queryId=started["queryId"]))["status"] == "Running":
        assert time.monotonic() < deadline, query[:300]
        time.sleep(0.02)
    assert r["status"] == "Complete", (query[:300], r["status"])
    assert all(isinstance(f["value"], str) for row in r["results"] for f in row)


# -- filter patterns -------------------------------------------------------------------------------

selectors = st.sampled_from(["$.level", "$.latency", "$.user.id", "$.tags[0]", "$.tags[*]", "$.note", "$.ok",
                             "$.missing", "$", "$.a[99999999999999999999]"])
values = st.sampled_from(['"ERROR"', "120", "1e-3", "-2.5E+2", "ERR*", "%ERR%", "%^1[0-9]%", '""', "*", "null",
                          "true", "%a(b)%", "1e999"])
json_atoms = (st.tuples(selectors, st.sampled_from(["=", "!=", "<", ">", "<=", ">="]), values).map(" ".join)
              | st.tuples(selectors, st.sampled_from(["IS NULL", "NOT EXISTS", "IS TRUE", "IS FALSE"])).map(" ".join))
json_exprs = st.recursive(json_atoms, lambda inner: st.tuples(inner, st.sampled_from(["&&", "||"]), inner).map(
    " ".join) | inner.map(lambda e: f"({e})"), max_leaves=6)
space_fields = st.sampled_from(["ip", "user", "...", "status = 2*", "bytes > 10", "ip = %^10%", "a != b",
                                "status = 200 || status = 404", "x < 1e2"])
patterns = (json_exprs.map(lambda e: "{ " + e + " }")
            | st.lists(space_fields, min_size=1, max_size=8).map(lambda fs: "[" + ", ".join(fs) + "]")
            | st.lists(st.sampled_from(["ERROR", "?INFO", "-plain", '"text line"', "%[0-9]+%", "%ERR|INF%", "%(x)%",
                                        "?%^plain%"]), max_size=5).map(" ".join)
            | st.text(max_size=60))


@FUZZ
@given(patterns)
@example("{ " + "(" * 60 + "$.level = 1" + ")" * 60 + " }")
@example("{ " + " && ".join(f"$.latency != {i}" for i in range(1500)) + " }")
@example("[" + ", ".join(["..."] * 3000) + "]")
@example("%" + "a" * 5000 + "%")
@example("{ $.latency > " + "9" * 5000 + " }")
def test_filter_patterns_are_answered_or_refused_in_aws_words(logs: Any, pattern: str) -> None:
    try:
        r = logs.filter_log_events(logGroupName=GROUP, filterPattern=pattern)
    except ClientError as exc:
        refused_as(exc, "InvalidParameterException")
        return
    assert all(e["message"] in LINES for e in r["events"])
