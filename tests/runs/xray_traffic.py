"""Requests traced by the AWS X-Ray SDK, each segment annotated with the run ``apiary run`` names in ``APIARY_RUN``.

The SDK finds the daemon in ``AWS_XRAY_DAEMON_ADDRESS``, as in any app; the annotation is the one line an app adds
(X-Ray SDKs read no resource attributes).
"""

from __future__ import annotations

import os
import time

from aws_xray_sdk.core import xray_recorder

SEGMENTS = int(os.environ.get("TRAFFIC_REQUESTS", "5"))


def main() -> None:
    xray_recorder.configure(service="backend-xray", sampling=False, context_missing="LOG_ERROR")
    for _ in range(SEGMENTS):
        segment = xray_recorder.begin_segment("backend-xray")
        segment.put_annotation("apiary_run", os.environ["APIARY_RUN"])
        with xray_recorder.in_subsegment("db-query"):
            time.sleep(0.002)
        xray_recorder.end_segment()


if __name__ == "__main__":
    main()
