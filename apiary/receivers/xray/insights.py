"""X-Ray Insights in AWS's shapes: GetInsightSummaries, GetInsight, GetInsightEvents, GetInsightImpactGraph.

Nothing is kept: every call runs the detector (`apiary.query.xray_insights`) over the spans of the group's traces,
so an insight appears, grows and closes as spans arrive. An insight's id is therefore derived, not stored: a UUID
whose first eight hex digits are its start (epoch seconds) and whose rest hashes the environment, group,
root-cause service and start -- the same insight gets the same id on every call, and GetInsight knows from the id
alone which hours to read again.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

from apiary.query.xray_filter import And, Compare, Node, RootCause
from apiary.query.xray_insights import BASELINE_S, WINDOW_S, Anomaly, Counts, detect, window_rows
from apiary.receivers.xray import paging, queries
from apiary.receivers.xray.filter import parse, resolve_groups
from apiary.receivers.xray.groups import Group, GroupStore, name_of
from apiary.receivers.xray.refusal import Refused
from apiary.store.base import Store

#: botocore's InsightId pattern: a UUID of version 1 to 5.
_INSIGHT_ID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[1-5][0-9a-fA-F]{3}-[89abAB][0-9a-fA-F]{3}-[0-9a-fA-F]{12}")
_NAMESPACE = uuid.UUID("5f0c1c2e-7a0b-4f57-9d4e-0a1b2c3d4e5f")
#: "The start time can't be more than 30 days old"; the impact graph's range "can't be more than six hours".
MAX_AGE = timedelta(days=30)
MAX_GRAPH_RANGE = timedelta(hours=6)
#: How far after its start an insight is followed (to see it close); the window limit of Apiary's other reads.
MAX_FOLLOW = timedelta(days=31)
STATES = ("ACTIVE", "CLOSED")


def insight_id(env: str, group: str, node: str, node_type: str, start_s: int) -> str:
    digest = str(uuid.uuid5(_NAMESPACE, "\x1f".join((env, group, node, node_type, str(start_s)))))
    return f"{start_s:08x}{digest[8:]}"


def _start_of(value: Any) -> int:
    if not isinstance(value, str) or not _INSIGHT_ID.fullmatch(value):
        raise Refused(f"InsightId must be a UUID as GetInsightSummaries gives them, got {value!r}")
    return int(value[:8], 16)


def _counts(c: Counts) -> dict[str, int]:
    return {"FaultCount": c.faults, "OkCount": c.ok, "TotalCount": c.total}


def _clock(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


@dataclass
class Found:
    """An anomaly of a group, with its id."""

    group: Group
    anomaly: Anomaly
    id: str


class Insights:
    def __init__(self, groups: GroupStore, store: Store, clock: Callable[[], datetime] | None = None) -> None:
        self.groups, self.store = groups, store
        self.clock = clock or (lambda: datetime.now(timezone.utc))

    # -- reading -------------------------------------------------------------------------------

    def _traces(self, env: str, group: Group) -> Node | None:
        return resolve_groups(parse(group.filter_expression),
                              lambda field, value: self.groups.expression(env, field, value))

    def _found(self, env: str, group: Group, since: datetime, now: datetime) -> list[Found]:
        """The group's anomalies, judged over its traces from ``since`` (less a baseline) to now."""
        start = since - timedelta(seconds=BASELINE_S)
        end = min(now, since + MAX_FOLLOW)
        if end <= start:
            return []
        rows = window_rows(self.store, env, start, end, self._traces(env, group))
        return [Found(group, a, insight_id(env, group.name, a.node, a.node_type, a.start_s)) for a in detect(rows, now)]

    def _insight(self, env: str, value: Any) -> Found:
        start_s = _start_of(value)
        now = self.clock()
        since = datetime.fromtimestamp(start_s, timezone.utc)
        for group in self.groups.list(env):
            if group.insights and since <= now:
                for found in self._found(env, group, since, now):
                    if found.id == value.lower():
                        return found
        raise Refused(f"InsightId {value} is not an insight of any group with insights enabled")

    # -- the shapes ----------------------------------------------------------------------------

    def _events(self, found: Found) -> list[dict[str, Any]]:
        """An event per anomalous window (at its end, or now while it lasts) with the insight's impact so far, and
        one more when the insight closed."""
        a, now_s = found.anomaly, self.clock().timestamp()
        service = queries.service_id(a.node, a.node_type)
        events, so_far_service, so_far_client = [], Counts(), Counts()
        for w in a.windows:
            so_far_service, so_far_client = so_far_service + w.service, so_far_client + w.client
            events.append({"Summary": f"{w.root_causes} of {w.service.total} requests to {a.node} from "
                                      f"{_clock(w.start_s)} had their fault root cause there; "
                                      f"{w.expected:.1f} expected",
                           "EventTime": min(w.start_s + WINDOW_S, now_s),
                           "ClientRequestImpactStatistics": _counts(so_far_client),
                           "RootCauseServiceRequestImpactStatistics": _counts(so_far_service),
                           "TopAnomalousServices": [{"ServiceId": service}]})
        if a.closed:
            events.append({"Summary": f"the faults of {a.node} are back within the expected range",
                           "EventTime": a.end_s + WINDOW_S,
                           "ClientRequestImpactStatistics": _counts(so_far_client),
                           "RootCauseServiceRequestImpactStatistics": _counts(so_far_service),
                           "TopAnomalousServices": [{"ServiceId": service}]})
        return events

    def _shape(self, found: Found, summary: bool) -> dict[str, Any]:
        a, service = found.anomaly, queries.service_id(found.anomaly.node, found.anomaly.node_type)
        worst = max(a.windows, key=lambda w: w.root_causes / max(w.service.total, 1))
        out: dict[str, Any] = {
            "InsightId": found.id, "GroupARN": found.group.arn(), "GroupName": found.group.name,
            "RootCauseServiceId": service, "Categories": ["FAULT"], "State": "CLOSED" if a.closed else "ACTIVE",
            "StartTime": a.start_s,
            "Summary": f"Faults rooted in {a.node} rose above the expected range: at worst {worst.root_causes} of "
                       f"{worst.service.total} requests ({worst.expected:.1f} expected) from {_clock(worst.start_s)}",
            "ClientRequestImpactStatistics": _counts(a.client()),
            "RootCauseServiceRequestImpactStatistics": _counts(a.service()),
            "TopAnomalousServices": [{"ServiceId": service}]}
        if a.closed:
            out["EndTime"] = a.end_s
        if summary:
            out["LastUpdateTime"] = self._events(found)[-1]["EventTime"]
        return out

    # -- the operations ------------------------------------------------------------------------

    def _not_too_old(self, name: str, at: datetime) -> None:
        if at < self.clock() - MAX_AGE:
            raise Refused(f"{name} can't be more than 30 days old")

    def summaries(self, env: str, params: dict[str, Any], start: datetime, end: datetime) -> dict[str, Any]:
        """The insights of the group that started in [start, end), oldest first, MaxResults (1 to 100) a page."""
        self._not_too_old("StartTime", start)
        self._not_too_old("EndTime", end)
        states = params.get("States")
        if states is not None and (not isinstance(states, list) or len(states) > 1
                                   or any(s not in STATES for s in states)):
            raise Refused("States takes at most one of ACTIVE and CLOSED")
        size = _max_results(params, 100)
        group = self.groups.get(env, name_of(params))
        found = self._found(env, group, start, self.clock()) if group.insights else []
        shown = [self._shape(f, summary=True) for f in found
                 if start.timestamp() <= f.anomaly.start_s < end.timestamp()]
        shown = [s for s in shown if not states or s["State"] in states]
        listing = f"insights/{group.name}/{start.timestamp()}/{end.timestamp()}/{','.join(states or [])}"
        page, token = paging.page(shown, lambda s: f"{s['StartTime']:012d}/{s['InsightId']}",
                                  params.get("NextToken"), size, listing)
        return {"InsightSummaries": page, **({"NextToken": token} if token else {})}

    def get(self, env: str, params: dict[str, Any]) -> dict[str, Any]:
        return {"Insight": self._shape(self._insight(env, params.get("InsightId")), summary=False)}

    def events(self, env: str, params: dict[str, Any]) -> dict[str, Any]:
        """The insight's events, oldest first, MaxResults (1 to 50) a page."""
        size = _max_results(params, 50)
        found = self._insight(env, params.get("InsightId"))
        numbered = list(enumerate(self._events(found)))
        page, token = paging.page(numbered, lambda e: f"{e[0]:06d}", params.get("NextToken"), size,
                                  f"insight-events/{found.id}")
        return {"InsightEvents": [e for _, e in page], **({"NextToken": token} if token else {})}

    def impact_graph(self, env: str, params: dict[str, Any], start: datetime, end: datetime) -> dict[str, Any]:
        """The services and edges of the group's traces in [start, end) whose fault root cause is in the insight's
        root-cause service, drawn as GetServiceGraph draws them, structure only; one page."""
        self._not_too_old("StartTime", start)
        if end - start > MAX_GRAPH_RANGE:
            raise Refused("The time range between StartTime and EndTime can't be more than six hours")
        found = self._insight(env, params.get("InsightId"))
        if params.get("NextToken") is not None:
            raise Refused("NextToken is not one this server gave out: the impact graph comes in one page")
        a = found.anomaly
        cause: Node = RootCause("fault", "service", And(Compare("name", "=", a.node), Compare("type", "=", a.node_type)))
        traces = self._traces(env, found.group)
        graph = queries.service_graph(self.store, env, start, end, And(traces, cause) if traces is not None else cause)
        services = [{"ReferenceId": s["ReferenceId"], "Type": s["Type"], "Name": s["Name"], "Names": s["Names"],
                     "Edges": [{"ReferenceId": e["ReferenceId"]} for e in s["Edges"]]} for s in graph]
        starts = [s["StartTime"] for s in graph if "StartTime" in s]
        ends = [s["EndTime"] for s in graph if "EndTime" in s]
        return {"InsightId": found.id, "StartTime": start.timestamp(), "EndTime": end.timestamp(),
                "ServiceGraphStartTime": min(starts) if starts else start.timestamp(),
                "ServiceGraphEndTime": max(ends) if ends else end.timestamp(), "Services": services}


def _max_results(params: dict[str, Any], most: int) -> int:
    value = params.get("MaxResults", most)
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= most:
        raise Refused(f"MaxResults must be from 1 to {most}, got {value!r}")
    return value
