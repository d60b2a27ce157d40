"""The Cruddur guide's CloudWatch logging, unchanged: watchtower's handler in a Flask app, boto3 pointed at Apiary."""

from __future__ import annotations

import logging
from time import strftime
from typing import Any

import watchtower
from flask import Flask, request

from tests.stores import Tenant


def test_flask_app_logs_reach_the_cruddur_group(aws_env: Tenant, logs: Any) -> None:
    LOGGER = logging.getLogger("cruddur.backend")
    LOGGER.setLevel(logging.DEBUG)
    LOGGER.propagate = False
    sent: list[str] = []

    class Remember(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            sent.append(self.format(record))

    cw_handler = watchtower.CloudWatchLogHandler(log_group="cruddur")
    LOGGER.addHandler(cw_handler)
    LOGGER.addHandler(Remember())
    try:
        LOGGER.info("test log")
        app = Flask(__name__)

        @app.route("/api/activities/home")
        def home() -> list[dict[str, str]]:
            LOGGER.info("HomeActivities")
            return [{"handle": "Andrew Brown", "message": "Cloud is very fun!"}]

        @app.after_request
        def after_request(response: Any) -> Any:
            timestamp = strftime("[%Y-%b-%d %H:%M]")
            LOGGER.error("%s %s %s %s %s %s", timestamp, request.remote_addr, request.method, request.scheme,
                         request.full_path, response.status)
            return response

        client = app.test_client()
        for _ in range(25):
            assert client.get("/api/activities/home").status_code == 200
        cw_handler.flush()
    finally:
        LOGGER.removeHandler(cw_handler)
        cw_handler.close()

    groups = logs.describe_log_groups(logGroupNamePrefix="cruddur")["logGroups"]
    assert [g["logGroupName"] for g in groups] == ["cruddur"]
    streams = logs.describe_log_streams(logGroupName="cruddur")["logStreams"]
    assert len(streams) == 1 and streams[0]["storedBytes"] > 0
    stream = streams[0]["logStreamName"]

    got: list[str] = []
    kwargs: dict[str, Any] = {"logGroupName": "cruddur", "logStreamName": stream, "startFromHead": True, "limit": 7}
    while True:  # page forward until the token stops changing, as the AWS docs say to
        page = logs.get_log_events(**kwargs)
        got += [e["message"] for e in page["events"]]
        if page["nextForwardToken"] == kwargs.get("nextToken"):
            break
        kwargs["nextToken"] = page["nextForwardToken"]
    assert got == sent
    assert len(sent) == 1 + 25 * 2
    assert sum("HomeActivities" in m for m in got) == 25

    # Newest first from the tail, then backwards.
    tail = logs.get_log_events(logGroupName="cruddur", logStreamName=stream, limit=5)
    assert [e["message"] for e in tail["events"]] == sent[-5:]
    before = logs.get_log_events(logGroupName="cruddur", logStreamName=stream, limit=5, nextToken=tail["nextBackwardToken"])
    assert [e["message"] for e in before["events"]] == sent[-10:-5]
