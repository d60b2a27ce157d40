"""Running a Logs Insights query the way a boto3 user does: StartQuery, then GetQueryResults until it is done."""

from __future__ import annotations

import time
from typing import Any

WINDOW = {"startTime": 0, "endTime": 4_000_000_000}


def query(logs: Any, group: str | None, text: str, window: dict[str, int] = WINDOW) -> list[dict[str, str]]:
    """The result rows as {field: value}, without @ptr; fails the test unless the query completes.
    With no ``group``, the query selects its log groups itself (``SOURCE``)."""
    q = logs.start_query(queryString=text, **({"logGroupName": group} if group else {}), **window)
    deadline = time.monotonic() + 30
    while (r := logs.get_query_results(queryId=q["queryId"]))["status"] in ("Scheduled", "Running"):
        assert time.monotonic() < deadline, f"query still running: {text}"
        time.sleep(0.05)
    assert r["status"] == "Complete", (text, r)
    return [{f["field"]: f["value"] for f in row if f["field"] != "@ptr"} for row in r["results"]]


def put(logs: Any, group: str, messages: list[str], stream: str = "s", start_ms: int | None = None) -> int:
    """Sends ``messages`` one millisecond apart (oldest first) with PutLogEvents; returns the first timestamp."""
    t0 = start_ms if start_ms is not None else int(time.time() * 1000) - 60_000
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName=stream)
    r = logs.put_log_events(logGroupName=group, logStreamName=stream,
                            logEvents=[{"timestamp": t0 + i, "message": m} for i, m in enumerate(messages)])
    assert "rejectedLogEventsInfo" not in r
    return t0


def put_last_two_hours(logs: Any, group: str, before: list[str], now: list[str]) -> int:
    """``before`` in the hour before the last whole hour and ``now`` in the last whole hour, a minute apart;
    returns the start of the last whole hour (a query window for patterns compared with their previous period)."""
    hour = int(time.time()) // 3600 * 3600 - 3600
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="s")
    events = [{"timestamp": (hour - 3600 + 60 * i) * 1000, "message": m} for i, m in enumerate(before)]
    events += [{"timestamp": (hour + 60 * i) * 1000, "message": m} for i, m in enumerate(now)]
    logs.put_log_events(logGroupName=group, logStreamName="s", logEvents=events)
    return hour
