"""Transaction Search's settings in X-Ray's API: indexing rules and the trace segment destination.

On AWS, Transaction Search sends spans to a CloudWatch Logs log group (destination ``CloudWatchLogs``) and indexes
a share of them for X-Ray's trace reads, that share set by the ``Default`` indexing rule. Apiary keeps every span it
accepts in its own store and answers every X-Ray read from all of them, so:

* the destination is ``XRay``, ``ACTIVE``; asking for ``CloudWatchLogs`` is refused by name (Apiary does not write
  spans into a log group);
* the ``Default`` indexing rule's DesiredSamplingPercentage (0 to 100) is kept per environment, and its
  ActualSamplingPercentage is 100: every stored span is indexed, whatever the desired share.
"""

from __future__ import annotations

import math
import time
from typing import Any

from apiary.receivers.xray.paging import page
from apiary.receivers.xray.refusal import Refused
from apiary.store.meta_indexing import XRayIndexingRows

#: The one indexing rule X-Ray has; Apiary's desired share is its own behaviour, every span.
DEFAULT_RULE = "Default"
INDEXED_PERCENTAGE = 100.0
DESTINATION = {"Destination": "XRay", "Status": "ACTIVE"}


def check_destination(params: dict[str, Any]) -> dict[str, str]:
    """UpdateTraceSegmentDestination: ``XRay`` is what Apiary is; ``CloudWatchLogs`` is refused by name."""
    destination = params.get("Destination")
    if destination is None or destination == "XRay":
        if params.get("CloudWatchLogsConfiguration") is not None:
            raise Refused("CloudWatchLogsConfiguration is for the CloudWatchLogs destination only")
        return DESTINATION
    if destination == "CloudWatchLogs":
        raise Refused("Apiary does not send trace segments to a CloudWatch Logs log group (Transaction Search's "
                      "aws/spans): it keeps them in its own store, read through the X-Ray API; the destination "
                      "stays XRay")
    raise Refused(f"Destination must be XRay or CloudWatchLogs, got {destination!r}")


class IndexingRules:
    def __init__(self, rows: XRayIndexingRows) -> None:
        self.rows = rows

    def _rule(self, env: str) -> dict[str, Any]:
        desired, modified = self.rows.all(env).get(DEFAULT_RULE, (INDEXED_PERCENTAGE, 0.0))
        rule: dict[str, Any] = {"Name": DEFAULT_RULE,
                                "Rule": {"Probabilistic": {"DesiredSamplingPercentage": desired,
                                                           "ActualSamplingPercentage": INDEXED_PERCENTAGE}}}
        if modified:
            rule["ModifiedAt"] = modified
        return rule

    def list(self, env: str, token: Any) -> tuple[list[dict[str, Any]], str | None]:
        return page([self._rule(env)], lambda r: r["Name"], token, 100, "indexing-rules")

    def update(self, env: str, params: dict[str, Any]) -> dict[str, Any]:
        name = params.get("Name")
        if not isinstance(name, str) or not name:
            raise Refused("Name is required")
        rule = params.get("Rule")
        if not isinstance(rule, dict) or set(rule) != {"Probabilistic"} or not isinstance(rule["Probabilistic"], dict):
            raise Refused("Rule must hold exactly one rule type, Probabilistic")
        desired = rule["Probabilistic"].get("DesiredSamplingPercentage")
        if isinstance(desired, bool) or not isinstance(desired, (int, float)) or not math.isfinite(desired) \
                or not 0 <= desired <= 100:
            raise Refused("DesiredSamplingPercentage must be a number from 0 to 100")
        if name != DEFAULT_RULE:
            raise Refused(f"Indexing rule not found: {name} (X-Ray has one, {DEFAULT_RULE})",
                          "ResourceNotFoundException", 404)
        self.rows.put(env, name, float(desired), time.time())
        return self._rule(env)
