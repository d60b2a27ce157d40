"""FilterLogEvents with each filter pattern kind, and an Insights `stats count(*) by bin(1m)`, checked against the test's own count."""

from __future__ import annotations

import json
import time
from collections import Counter
from datetime import datetime, timezone
from typing import Any

import pytest

NOW_MS = int(time.time() * 1000) // 60_000 * 60_000 - 30 * 60_000  # half an hour ago, on a minute


def _lines() -> dict[str, list[tuple[int, str]]]:
    """Two streams, events interleaved in time: access-log lines, JSON lines and plain lines."""
    web, api = [], []
    for i in range(120):
        ts = NOW_MS + i * 7_000  # spread over 14 minutes
        status = [200, 404, 500, 201][i % 4]
        web.append((ts, f'10.0.0.{i % 5} - user{i % 3} [22/Nov/2026:10:00:{i % 60:02d} +0000] "GET /p/{i} HTTP/1.1" '
                        f"{status} {100 * i}"))
        level = ["INFO", "ERROR", "WARN"][i % 3]
        if i % 2:
            api.append((ts + 1, json.dumps({"level": level, "latency": i * 3, "path": f"/api/{i}", "ok": i % 4 == 1})))
        else:
            api.append((ts + 1, f"{level} handled request {i}" + (" Exiting" if i % 10 == 0 else "")))
    return {"web": web, "api": api}


@pytest.fixture
def seeded(logs: Any) -> dict[str, list[tuple[int, str]]]:
    data = _lines()
    logs.create_log_group(logGroupName="patterns")
    for stream, events in data.items():
        logs.create_log_stream(logGroupName="patterns", logStreamName=stream)
        r = logs.put_log_events(logGroupName="patterns", logStreamName=stream,
                                logEvents=[{"timestamp": t, "message": m} for t, m in events])
        assert "rejectedLogEventsInfo" not in r
    return data


def _filter(logs: Any, pattern: str, **kw: Any) -> list[str]:
    out = []
    for page in logs.get_paginator("filter_log_events").paginate(logGroupName="patterns", filterPattern=pattern,
                                                                 PaginationConfig={"PageSize": 17}, **kw):
        out += [e["message"] for e in page["events"]]
    return out


def _all(data: dict[str, list[tuple[int, str]]]) -> list[str]:
    """Every event, interleaved by time as FilterLogEvents returns them."""
    return [m for _, m in sorted(data["web"] + data["api"])]


def _json(m: str) -> dict[str, Any] | None:
    try:
        doc = json.loads(m)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


def test_filter_patterns_return_exactly_the_matching_events(logs: Any, seeded: dict[str, Any]) -> None:
    every = _all(seeded)
    assert _filter(logs, "") == every
    assert _filter(logs, "ERROR") == [m for m in every if "ERROR" in m]
    assert _filter(logs, "ERROR handled") == [m for m in every if "ERROR" in m and "handled" in m]
    assert _filter(logs, '"handled request 1"') == [m for m in every if "handled request 1" in m]
    assert _filter(logs, "?ERROR ?WARN") == [m for m in every if "ERROR" in m or "WARN" in m]
    assert _filter(logs, "handled -Exiting") == [m for m in every if "handled" in m and "Exiting" not in m]
    want = [m for m in every if (d := _json(m)) and d["level"] == "ERROR" and d["latency"] > 100]
    assert want and _filter(logs, '{ $.level = "ERROR" && $.latency > 100 }') == want
    want = [m for m in every if (d := _json(m)) and (d["level"] == "WARN" or d["ok"] is True)]
    assert want and _filter(logs, '{ $.level = "WARN" || $.ok IS TRUE }') == want
    want = [m for m in every if m.startswith("10.") and m.split()[-2].startswith("4") and int(m.split()[-1]) > 1000]
    assert want and _filter(logs, "[ip, user, username, timestamp, request, status_code = 4*, bytes > 1000]") == want
    want = [m for m in every if m.startswith("10.") and m.split()[-2] in ("500", "201")]
    assert want and _filter(logs, "[ip, ..., status = 500 || status = 201, bytes]") == want
    # Restricted to one stream, and to a time window.
    assert _filter(logs, "ERROR", logStreamNames=["api"]) == [m for _, m in seeded["api"] if "ERROR" in m]
    window = [m for t, m in sorted(seeded["web"] + seeded["api"]) if NOW_MS + 60_000 <= t < NOW_MS + 120_000]
    assert _filter(logs, "", startTime=NOW_MS + 60_000, endTime=NOW_MS + 120_000) == window


def test_bad_filter_pattern_is_an_invalid_parameter(logs: Any, seeded: dict[str, Any]) -> None:
    with pytest.raises(logs.exceptions.InvalidParameterException, match="Invalid filter pattern"):
        logs.filter_log_events(logGroupName="patterns", filterPattern="{ $.level = }")


def test_insights_count_by_minute_matches_the_test_count(logs: Any, seeded: dict[str, Any]) -> None:
    expected = Counter()
    for t, _ in seeded["web"] + seeded["api"]:
        minute = datetime.fromtimestamp(t // 60_000 * 60, timezone.utc)
        expected[minute.strftime("%Y-%m-%d %H:%M:00.000")] += 1
    q = logs.start_query(logGroupName="patterns", startTime=NOW_MS // 1000 - 60, endTime=NOW_MS // 1000 + 3600,
                         queryString="stats count(*) by bin(1m)")
    deadline = time.monotonic() + 10
    while True:
        r = logs.get_query_results(queryId=q["queryId"])
        if r["status"] not in ("Scheduled", "Running") or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert r["status"] == "Complete"
    got = {row["bin(1m)"]: int(row["count(*)"]) for row in ({f["field"]: f["value"] for f in res} for res in r["results"])}
    assert got == dict(expected)
    assert r["statistics"]["recordsScanned"] == 240


def test_insights_fields_filter_parse_sort_limit(logs: Any, seeded: dict[str, Any]) -> None:
    text = ('fields @timestamp, @message, latency | filter level = "ERROR" and latency > 100 '
            '| parse path "/api/*" as n | sort latency desc | limit 3')
    q = logs.start_query(logGroupName="patterns", startTime=NOW_MS // 1000 - 60, endTime=NOW_MS // 1000 + 3600,
                         queryString=text)
    while (r := logs.get_query_results(queryId=q["queryId"]))["status"] == "Running":
        time.sleep(0.1)
    assert r["status"] == "Complete"
    rows = [{f["field"]: f["value"] for f in res} for res in r["results"]]
    docs = sorted((d for _, m in seeded["api"] if (d := _json(m)) and d["level"] == "ERROR" and d["latency"] > 100),
                  key=lambda d: -d["latency"])[:3]
    assert [int(row["latency"]) for row in rows] == [d["latency"] for d in docs]
    with pytest.raises(logs.exceptions.MalformedQueryException):
        logs.start_query(logGroupName="patterns", startTime=0, endTime=1, queryString="stats count(* by")
