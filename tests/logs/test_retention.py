"""Retention as a user sees it, on each store: a log group's own policy (PutRetentionPolicy) removes its older
events and only its own; the server's ``--retention-days`` removes older log events and Rollbar occurrences."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Iterator

import boto3
import httpx
import pytest

from tests.stores import STORES, Tenant, running

DAY_MS = 86_400_000


@pytest.fixture(params=STORES)
def apiary(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Tenant]:
    """A server keeping two days of everything, whose retention pass runs every second (hourly by default)."""
    with running(request.param, tmp_path, tenants=1, extra_args=["--retention-days", "2"],
                 env={"APIARY_RETENTION_INTERVAL_S": "1"}) as server:
        yield server.take()


def messages(logs: Any, group: str) -> list[str]:
    return [e["message"] for e in logs.filter_log_events(logGroupName=group)["events"]]


def wait_until(check: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "retention did not happen in time"
        time.sleep(0.5)


def test_group_retention_and_server_retention(aws_env: Tenant, logs: Any) -> None:
    now = int(time.time() * 1000)
    ages = {"three days": now - 3 * DAY_MS, "thirty hours": now - 30 * 3600_000, "fresh": now}
    for group in ("short", "kept"):
        logs.create_log_group(logGroupName=group)
        logs.create_log_stream(logGroupName=group, logStreamName="s")
        for label, ts in ages.items():  # one call per age: a batch may not span 24 hours
            r = logs.put_log_events(logGroupName=group, logStreamName="s",
                                    logEvents=[{"timestamp": ts, "message": f"{group} {label}"}])
            assert "rejectedLogEventsInfo" not in r
    rollbar = f"{aws_env.url}/api/1/item/"
    for label, ts in (("old", now - 3 * DAY_MS), ("new", now)):
        body = {"data": {"environment": "production", "timestamp": ts // 1000, "body": {"message": {"body": label}}}}
        assert httpx.post(rollbar, json=body, headers={"X-Rollbar-Access-Token": aws_env.key}).json()["err"] == 0

    logs.put_retention_policy(logGroupName="short", retentionInDays=1)
    [short] = logs.describe_log_groups(logGroupNamePrefix="short")["logGroups"]
    assert short["retentionInDays"] == 1

    wait_until(lambda: messages(logs, "short") == ["short fresh"])
    wait_until(lambda: messages(logs, "kept") == ["kept thirty hours", "kept fresh"])  # only the server's two days

    def titles() -> list[str]:
        found = httpx.get(f"{aws_env.url}/api/1/items", headers={"X-Rollbar-Access-Token": aws_env.key}).json()
        return [i["title"] for i in found["result"]["items"]]

    wait_until(lambda: titles() == ["new"])
    # Nothing newer was touched, and the stream still answers GetLogEvents.
    events = logs.get_log_events(logGroupName="kept", logStreamName="s", startFromHead=True)["events"]
    assert [e["message"] for e in events] == ["kept thirty hours", "kept fresh"]
