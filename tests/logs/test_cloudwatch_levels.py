"""The LEVEL of a CloudWatch log event, which carries none on the wire: read from the line as loggers write it.

CloudWatch events are plain text; the UI's LEVEL column and `@severity` come from the message -- a JSON ``level``
field, logfmt's ``level=`` (Go's and Node's loggers), an upper-case level word (Python's logging formats), or a
lower-case level opening the line (``error: ...``). A line that states no level has none.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import httpx
import watchtower

from tests.stores import Tenant

LINES = {
    '{"level": "warn", "msg": "slow query"}': "warn",
    'ts=2026-12-06T10:00:00Z level=error msg="db down"': "ERROR",
    'time="10:00" lvl=debug msg=tick': "DEBUG",
    "error: connection refused": "ERROR",
    "[info] listening on 8080": "INFO",
    "HomeActivities": None,
    "an error occurred somewhere": None,
}


def ui_levels(tenant: Tenant, group: str, expect: int) -> dict[str, Any]:
    env = httpx.get(f"{tenant.url}/1/auth", headers={"X-Honeycomb-Team": tenant.key}).json()["environment"]["slug"]
    deadline = time.monotonic() + 20
    while True:
        r = httpx.get(f"{tenant.url}/ui/api/logs/events", params={"env": env, "group": group}, timeout=30)
        assert r.status_code == 200, r.text
        events = r.json()["events"]
        if len(events) >= expect or time.monotonic() > deadline:
            return {e["message"]: e["level"] for e in events}
        time.sleep(0.3)


def test_levels_read_from_the_lines_as_loggers_write_them(aws_env: Tenant, logs: Any) -> None:
    logs.create_log_group(logGroupName="levels")
    logs.create_log_stream(logGroupName="levels", logStreamName="app")
    now = int(time.time() * 1000)
    logs.put_log_events(logGroupName="levels", logStreamName="app",
                        logEvents=[{"timestamp": now + i, "message": m} for i, m in enumerate(LINES)])
    assert ui_levels(aws_env, "levels", len(LINES)) == LINES


def test_python_logging_format_through_watchtower(aws_env: Tenant) -> None:
    handler = watchtower.CloudWatchLogHandler(log_group_name="py", log_stream_name="web", create_log_group=True)
    handler.setFormatter(logging.Formatter("%(levelname)s:%(name)s:%(message)s"))  # logging.basicConfig's format
    logger = logging.getLogger("cruddur.levels")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    try:
        logger.warning("cache cold")
        logger.error("payment failed")
        logger.debug("tick")
    finally:
        logger.removeHandler(handler)
        handler.close()
    assert ui_levels(aws_env, "py", 3) == {"WARNING:cruddur.levels:cache cold": "WARNING",
                                           "ERROR:cruddur.levels:payment failed": "ERROR",
                                           "DEBUG:cruddur.levels:tick": "DEBUG"}
