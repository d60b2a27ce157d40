"""FilterLogEvents with the filter patterns of AWS's "Filter pattern syntax for metric filters, subscription
filters, filter log events, and Live Tail" page, through boto3, on DuckDB and on ClickHouse.

Each test names the section it follows; the lines and patterns are this test's own. Every expectation is
computed from the lines the test sent, so a pattern returning too much or too little fails.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Iterator

import pytest

from tests.logs.insights_client import put
from tests.stores import STORES, StoreServer, running

DOCS = [
    {"event": "login", "user": {"id": 1, "email": "ana@example.com"}, "latency": 0.0004, "ok": True,
     "tags": ["blue", "green"], "orders": [{"id": 10, "total": 25.5}], "ip": "10.0.0.5", "note": None},
    {"event": "logout", "user": {"id": 2, "email": "bo@example.org"}, "latency": 0.02, "ok": False,
     "tags": ["red"], "orders": [], "ip": "10.0.1.77"},
    {"event": "login", "user": {"id": 3}, "latency": 1.5e3, "ok": True, "tags": [], "orders": [{"id": 11, "total": 4}],
     "ip": "192.168.0.1"},
]
PLAIN = ["[ERROR 401] UNAUTHORIZED REQUEST id=ab12", "[SUCCESS 200] AUTHORIZED REQUEST id=cd34",
         "WARN disk at 91% on host-7", "INFO heartbeat ok", "ERROR: Exiting after timeout"]
ACCESS = ['127.0.0.1 - frank [10/Oct/2026:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 1534',
          '127.0.0.2 - mia [10/Oct/2026:13:55:37 -0700] "GET /index.html HTTP/1.0" 404 0',
          '10.1.1.9 - zed [10/Oct/2026:13:55:38 -0700] "POST /login HTTP/1.1" 500 12']
EVERY = [json.dumps(d) for d in DOCS] + PLAIN + ACCESS


@pytest.fixture(scope="module", params=STORES)
def store_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[StoreServer]:
    with running(request.param, tmp_path_factory.mktemp(request.param), tenants=12) as server:
        yield server


@pytest.fixture
def seeded(logs: Any) -> Callable[[str], list[str]]:
    put(logs, "patterns", EVERY)

    def matching(pattern: str) -> list[str]:
        out: list[str] = []
        for page in logs.get_paginator("filter_log_events").paginate(logGroupName="patterns", filterPattern=pattern):
            out += [e["message"] for e in page["events"]]
        return out
    return matching


def docs_where(test: Callable[[dict[str, Any]], bool]) -> list[str]:
    return [json.dumps(d) for d in DOCS if test(d)]


def test_terms_quoted_terms_or_and_exclusion(seeded: Callable[[str], list[str]]) -> None:
    """"Matching terms in unstructured log events": AND of terms, quoted phrases, ?OR, -exclusion, case-sensitive."""
    assert seeded("ERROR") == [m for m in EVERY if "ERROR" in m]
    assert seeded("error") == []
    assert seeded("AUTHORIZED REQUEST") == PLAIN[:2]
    assert seeded('"AUTHORIZED REQUEST id=cd"') == [PLAIN[1]]
    assert seeded("?WARN ?heartbeat") == PLAIN[2:4]
    assert seeded("ERROR -Exiting") == [PLAIN[0]]
    assert seeded('REQUEST -"id=ab"') == [PLAIN[1]]
    assert seeded("") == EVERY


def test_regex_terms(seeded: Callable[[str], list[str]]) -> None:
    """"Supported regular expressions (regex) syntax": %...% terms with the documented operators."""
    assert seeded("%AUTHORIZED%") == PLAIN[:2]
    assert seeded("%^\\[ERROR%") == [PLAIN[0]]
    assert seeded("%ok$%") == [PLAIN[3]]
    assert seeded("%id=[a-c][b-d][0-9]{2}%") == PLAIN[:2]
    assert seeded("%\\d{1,3}\\.\\d{1,3}\\.\\d{1,3}\\.\\d{1,3}%") == [m for m in EVERY if m in ACCESS or "10.0." in m
                                                                        or "192.168" in m]
    assert seeded("%[Ee]xit|[Tt]imeout%") == [PLAIN[4]]
    assert seeded("%colou?r%") == []


@pytest.mark.parametrize("pattern,why", [
    ("%a(b)%", "parentheses are not supported"),
    ("%disk!%", "'!' is not a supported character"),
    ("%a% %b% %c%", "at most 2 regular expressions"),
    ("{ $.latency > %1% }", "cannot compare with the regular expression"),
])
def test_regex_outside_the_supported_subset_is_refused(logs: Any, seeded: Callable[[str], list[str]], pattern: str,
                                                       why: str) -> None:
    with pytest.raises(logs.exceptions.InvalidParameterException, match=why):
        logs.filter_log_events(logGroupName="patterns", filterPattern=pattern)


def test_json_selectors_arrays_and_numbers(seeded: Callable[[str], list[str]]) -> None:
    """"Using filter patterns to match terms in JSON log events": selectors, arrays, numbers with exponents."""
    assert seeded('{ $.event = "login" }') == docs_where(lambda d: d["event"] == "login")
    assert seeded('{ $.event = "log*" }') == docs_where(lambda d: True)
    assert seeded('{ $.event != "login" }') == docs_where(lambda d: d["event"] != "login")
    assert seeded("{ $.user.id >= 2 }") == docs_where(lambda d: d["user"]["id"] >= 2)
    assert seeded('{ $.user.email = "*@example.com" }') == docs_where(lambda d: d["user"].get("email", "").endswith(
        "@example.com"))
    assert seeded("{ $.latency < 1e-3 }") == docs_where(lambda d: d["latency"] < 1e-3)
    assert seeded("{ $.latency = 1.5E+3 }") == docs_where(lambda d: d["latency"] == 1500)
    assert seeded("{ $.latency > -2.5e-1 && $.latency <= 2E-2 }") == docs_where(lambda d: d["latency"] <= 0.02)
    assert seeded('{ $.tags[0] = "blue" }') == docs_where(lambda d: d["tags"][:1] == ["blue"])
    assert seeded('{ $.tags[*] = "green" }') == docs_where(lambda d: "green" in d["tags"])
    assert seeded("{ $.orders[0].total > 10 }") == docs_where(lambda d: bool(d["orders"]) and d["orders"][0]["total"] > 10)
    assert seeded("{ $.orders[*].id = 11 }") == docs_where(lambda d: any(o["id"] == 11 for o in d["orders"]))
    assert seeded("{ $.ip = %^10\\.0\\.% }") == docs_where(lambda d: d["ip"].startswith("10.0."))


def test_json_null_exists_booleans_and_parentheses(seeded: Callable[[str], list[str]]) -> None:
    """"IS NULL", "NOT EXISTS", "IS TRUE"/"IS FALSE", and && / || with parentheses."""
    assert seeded("{ $.note IS NULL }") == docs_where(lambda d: "note" in d and d["note"] is None)
    assert seeded("{ $.user.email NOT EXISTS }") == docs_where(lambda d: "email" not in d["user"])
    assert seeded("{ $.ok IS TRUE }") == docs_where(lambda d: d["ok"] is True)
    assert seeded("{ $.ok IS FALSE }") == docs_where(lambda d: d["ok"] is False)
    assert seeded('{ ($.event = "login" && $.user.id = 3) || ($.ok IS FALSE) }') == docs_where(
        lambda d: (d["event"] == "login" and d["user"]["id"] == 3) or d["ok"] is False)
    assert seeded('{ $.event = "login" && ($.user.id = 1 || $.latency > 1000) }') == docs_where(
        lambda d: d["event"] == "login" and (d["user"]["id"] == 1 or d["latency"] > 1000))


def test_space_delimited_patterns(seeded: Callable[[str], list[str]]) -> None:
    """"Using filter patterns to match terms in space-delimited log events": named fields, ..., conditions."""
    assert seeded("[ip, id, user, timestamp, request, status_code = 404, bytes]") == [ACCESS[1]]
    assert seeded("[ip, id, user, timestamp, request, status_code = 4* || status_code = 5*, bytes]") == ACCESS[1:]
    assert seeded("[..., status_code >= 400, bytes < 100]") == ACCESS[1:]
    assert seeded("[ip = %^127\\.0\\.0\\.[1-9]$%, ...]") == ACCESS[:2]
    assert seeded("[ip != 127.0.0.1, ..., bytes > 10]") == [ACCESS[2]]
    assert seeded('[ip, id, user = "mia", ...]') == [ACCESS[1]]
