"""TestMetricFilter: a filter pattern tried on sample lines, answered as AWS answers it (botocore's ``logs`` model).

It stores and reads nothing: the pattern is parsed by the same engine FilterLogEvents uses
(`apiary.receivers.cloudwatch.filter_pattern`), and each matching line comes back with its number (from 0, in the
order given) and the values a metric filter could publish from it (`Pattern.extracted`). Metric filters themselves
(PutMetricFilter, metrics from log events) are not served: Apiary keeps no CloudWatch metrics of log groups.
"""

from __future__ import annotations

from typing import Any

from apiary.permissions import Permission, needs
from apiary.receivers.cloudwatch.errors import invalid
from apiary.receivers.cloudwatch.filter_pattern import PatternError, parse
from apiary.receivers.cloudwatch.operations import Call

MAX_PATTERN = 1024
MAX_MESSAGES = 50


@needs(Permission.READ)
async def test_metric_filter(call: Call) -> dict[str, Any]:
    text = call.str("filterPattern", required=True) or ""
    if len(text) > MAX_PATTERN:
        raise invalid(f"1 validation error detected: Value at 'filterPattern' failed to satisfy constraint: "
                      f"Member must have length less than or equal to {MAX_PATTERN}")
    messages = call.params.get("logEventMessages")
    if not isinstance(messages, list) or not 1 <= len(messages) <= MAX_MESSAGES \
            or not all(isinstance(m, str) and m for m in messages):
        raise invalid(f"logEventMessages takes 1 to {MAX_MESSAGES} log event messages, none empty")
    try:
        pattern = parse(text)
    except PatternError as exc:
        raise invalid(str(exc)) from None
    matches = []
    for number, message in enumerate(messages):
        values = pattern.extracted(message)
        if values is not None:
            matches.append({"eventNumber": number, "eventMessage": message, "extractedValues": values})
    return {"matches": matches}


OPERATIONS = {"TestMetricFilter": test_metric_filter}
