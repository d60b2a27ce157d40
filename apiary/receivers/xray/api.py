"""The X-Ray API on the main port: REST-JSON, at the paths botocore's service model names.

Every request is SigV4-signed with an Apiary key (as both access key id and
secret); the key picks the environment. Errors have AWS's shape: the type in
``x-amzn-ErrorType`` and ``{"message": ...}`` in the body, which botocore
turns into ``ClientError`` with the same code.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from apiary.input_limits import InputError, load_json
from apiary.model.ids import normalise_trace_id
from apiary.permissions import Permission, needs, permission_of
from apiary.receivers import aws_auth
from apiary.keyed_routes import error, guarded
from apiary.receivers.encoding import read_body
from apiary.receivers.refusals import refusal_for
from apiary.receivers.xray import queries
from apiary.query.xray import SelectorError, selects_edges
from apiary.query.xray_filter import Node
from apiary.receivers.xray.filter import FilterError, parse, resolve_groups
from apiary.receivers.xray.groups import GroupError, name_of
from apiary.receivers.xray.refusal import Refused
from apiary.receivers.xray.tags import TagError, tag_map
from apiary.receivers.xray.transaction_search import DESTINATION, check_destination
from apiary.receivers.xray.service import XRay
from apiary.sampling.rules import RuleError, rule_from_request
from apiary.store.meta import ApiKey

#: PutTraceSegments takes at most 64 KiB per document; a request of many is bounded here.
MAX_BODY = 8 * 1024 * 1024
MAX_WINDOW_S = 24 * 3600 * 31
SERVICE = "xray"  # the SigV4 signing name
#: Apiary stores spans unencrypted in its own files; KMS keys do not exist here.
NO_ENCRYPTION = {"EncryptionConfig": {"Status": "ACTIVE", "Type": "NONE"}}


class AwsError(Exception):
    def __init__(self, code: str, message: str, status: int = 400, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.status, self.retry_after = code, message, status, retry_after

    def response(self) -> Response:
        headers = {"x-amzn-ErrorType": self.code}
        if self.retry_after:
            headers["Retry-After"] = str(self.retry_after)
        return JSONResponse({"message": self.message}, self.status, headers)


@dataclass
class Call:
    xray: XRay
    env: str
    params: dict[str, Any]


def _refused(exc: Exception) -> AwsError:
    """X-Ray's words for the answer `apiary.receivers.refusals` gives ``exc``; a bug propagates."""
    refusal = refusal_for(exc, "segments")
    if refusal is None:
        raise exc
    code = {429: "ThrottledException", 503: "ServiceUnavailableException"}.get(refusal.http_status,
                                                                                 "InvalidRequestException")
    return AwsError(code, refusal.message, refusal.http_status, refusal.retry_after)


def _authorize(xray: XRay, request: Request, body: bytes, action: str, need: Permission) -> str:
    """The environment of a correctly signed request whose key may do ``need``; AwsError otherwise."""
    try:
        key, _region = aws_auth.authorize(
            xray.sink.authenticate, request.method, request.scope.get("raw_path", b"").decode("latin-1") or request.url.path,
            request.url.query, dict(request.headers), body, service=SERVICE, action=action, need=need)
    except aws_auth.AwsDenied as exc:
        # REST-JSON: a refused signature or permission is a 403, a malformed Authorization header a 400.
        raise AwsError(exc.code, exc.message, 400 if exc.code == "IncompleteSignatureException" else 403) from None
    return key.environment


def operation(fn: Callable[[Call], Awaitable[dict[str, Any]]], action: str) -> Callable[[Request], Awaitable[Response]]:
    need = permission_of(fn)  # declared, or the route is never built

    async def endpoint(request: Request) -> Response:
        xray: XRay = request.app.state.xray
        try:
            body = await read_body(request, MAX_BODY)
            env = _authorize(xray, request, body, action, need)
            try:
                params = load_json(body or b"{}", "request body")
            except InputError as exc:
                raise AwsError("InvalidRequestException", str(exc)) from None
            except (ValueError, UnicodeDecodeError) as exc:
                raise AwsError("InvalidRequestException", f"request body is not valid JSON: {exc}") from None
            if not isinstance(params, dict):
                raise AwsError("InvalidRequestException", "request body must be a JSON object")
            return JSONResponse(await fn(Call(xray, env, params)))
        except AwsError as exc:
            return exc.response()
        except (FilterError, RuleError, GroupError, TagError, Refused, queries.BadToken) as exc:
            return AwsError(getattr(exc, "code", "InvalidRequestException"), str(exc),
                            getattr(exc, "status", 400)).response()
        except Exception as exc:  # too large a body, overload, an unavailable store
            return _refused(exc).response()
    return endpoint


def _time(params: dict[str, Any], name: str, required: bool = True) -> datetime | None:
    v = params.get(name)
    if v is None:
        if required:
            raise AwsError("InvalidRequestException", f"{name} is required")
        return None
    try:
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return datetime.fromtimestamp(float(v), timezone.utc)
        if isinstance(v, str):
            return datetime.fromisoformat(v.replace("Z", "+00:00")).astimezone(timezone.utc)
    except (ValueError, OverflowError, OSError):
        pass
    raise AwsError("InvalidRequestException", f"{name} must be epoch seconds or an ISO 8601 time, got {v!r}")


def _window(params: dict[str, Any]) -> tuple[datetime, datetime]:
    start, end = _time(params, "StartTime"), _time(params, "EndTime")
    assert start is not None and end is not None
    if end <= start:
        raise AwsError("InvalidRequestException", "EndTime must be after StartTime")
    if (end - start).total_seconds() > MAX_WINDOW_S:
        raise AwsError("InvalidRequestException", "StartTime and EndTime may be at most 31 days apart")
    return start, end


def _trace_ids(params: dict[str, Any]) -> list[str]:
    ids = params.get("TraceIds")
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
        raise AwsError("InvalidRequestException", "TraceIds must be a non-empty list of trace ids")
    if len(ids) > 5:
        raise AwsError("InvalidRequestException", "TraceIds takes at most 5 ids per call")
    return ids


def _resolved(call: Call, node: Node | None) -> Node | None:
    """The filter with every ``group.name`` / ``group.arn`` replaced by that group's expression."""
    return resolve_groups(node, lambda field, value: call.xray.groups.expression(call.env, field, value))


# -- traces ---------------------------------------------------------------------------------------

@needs(Permission.INGEST)
async def put_trace_segments(call: Call) -> dict[str, Any]:
    docs = call.params.get("TraceSegmentDocuments")
    if not isinstance(docs, list):
        raise AwsError("InvalidRequestException", "TraceSegmentDocuments must be a list of JSON strings")
    return {"UnprocessedTraceSegments": await call.xray.put_documents(call.env, docs)}


@needs(Permission.READ)
async def get_trace_summaries(call: Call) -> dict[str, Any]:
    start, end = _window(call.params)
    node = await asyncio.to_thread(_resolved, call, parse(call.params.get("FilterExpression") or ""))
    sampling = None
    if call.params.get("Sampling"):
        strategy = call.params.get("SamplingStrategy") or {}
        value = strategy.get("Value")
        sampling = float(value) if isinstance(value, (int, float)) and 0 < value <= 1 else 0.1
    page = await asyncio.to_thread(queries.trace_summaries, call.xray.sink.store, call.env, start, end, node,
                                   sampling=sampling, token=call.params.get("NextToken"))
    out: dict[str, Any] = {"TraceSummaries": page.summaries, "ApproximateTime": end.timestamp(),
                           "TracesProcessedCount": page.processed}
    if page.next_token:
        out["NextToken"] = page.next_token
    return out


@needs(Permission.READ)
async def batch_get_traces(call: Call) -> dict[str, Any]:
    traces, unprocessed = [], []
    for tid in _trace_ids(call.params):
        try:
            w3c = normalise_trace_id(tid)
        except ValueError:
            unprocessed.append(tid)
            continue
        found = await asyncio.to_thread(queries.trace_documents, call.xray.sink.store, call.env, w3c)
        if found is None:
            unprocessed.append(tid)
            continue
        docs, duration = found
        traces.append({"Id": tid, "Duration": round(duration, 6), "LimitExceeded": False, "Segments": docs})
    return {"Traces": traces, "UnprocessedTraceIds": unprocessed}


@needs(Permission.READ)
async def get_trace_graph(call: Call) -> dict[str, Any]:
    ids = []
    for tid in _trace_ids(call.params):
        try:
            ids.append(normalise_trace_id(tid))
        except ValueError:
            raise AwsError("InvalidRequestException", f"not a trace id: {tid!r}") from None
    # The trace index knows each trace's time range; read only the window that holds them.
    lo, hi = await asyncio.to_thread(_trace_range, call.xray.sink.store, call.env, ids)
    if lo is None:
        return {"Services": []}
    services = await asyncio.to_thread(queries.service_graph, call.xray.sink.store, call.env, lo, hi, None, ids)
    return {"Services": services}


def _trace_range(store: Any, env: str, ids: list[str]) -> tuple[datetime | None, datetime | None]:
    lo = hi = None
    for tid in ids:
        t = store.trace(env, tid)
        if t.num_rows:
            ts = t.column("timestamp").to_pylist()
            lo = min(ts) if lo is None else min(lo, min(ts))
            hi = max(ts) if hi is None else max(hi, max(ts))
    if lo is None or hi is None:
        return None, None
    return lo, hi + timedelta(seconds=1)


@needs(Permission.READ)
async def get_service_graph(call: Call) -> dict[str, Any]:
    start, end = _window(call.params)
    node = await _group_filter(call)
    services = await asyncio.to_thread(queries.service_graph, call.xray.sink.store, call.env, start, end, node)
    return {"StartTime": start.timestamp(), "EndTime": end.timestamp(), "Services": services,
            "ContainsOldGroupVersions": False}


async def _group_filter(call: Call) -> Node | None:
    """The expression of the group GroupName or GroupARN names (GroupError if there is none); None without one."""
    group_name = call.params.get("GroupName") or (
        call.params["GroupARN"].split("/")[1] if isinstance(call.params.get("GroupARN"), str)
        and call.params["GroupARN"].count("/") >= 1 else None)
    if not group_name:
        return None
    group = await asyncio.to_thread(call.xray.groups.get, call.env, group_name)
    return await asyncio.to_thread(_resolved, call, parse(group.filter_expression))


def _period(params: dict[str, Any]) -> int:
    """Period in seconds: 60 (the default) or a multiple of it, X-Ray's one-minute resolution."""
    period = params.get("Period")
    if period is None:
        return 60
    if not isinstance(period, int) or isinstance(period, bool) or period < 60 or period % 60:
        raise AwsError("InvalidRequestException", f"Period must be 60 seconds or a multiple of 60, got {period!r}")
    return period


@needs(Permission.READ)
async def get_time_series_service_statistics(call: Call) -> dict[str, Any]:
    """Statistics per period of the services (``service()`` / ``id()``) or edges (``edge()``, or no
    EntitySelectorExpression) selected. ForecastStatistics is accepted and answered without forecasts: Apiary
    does not forecast."""
    start, end = _window(call.params)
    period = _period(call.params)
    selector = call.params.get("EntitySelectorExpression")
    if selector is not None and not isinstance(selector, str):
        raise AwsError("InvalidRequestException", "EntitySelectorExpression must be a string")
    entity = parse(selector or "")
    try:
        selects_edges(entity)
    except SelectorError as exc:
        raise AwsError("InvalidRequestException", str(exc)) from None
    traces = await _group_filter(call)
    page = await asyncio.to_thread(queries.time_series_statistics, call.xray.sink.store, call.env, start, end, traces,
                                   entity, period, call.params.get("NextToken"))
    out: dict[str, Any] = {"TimeSeriesServiceStatistics": page.statistics, "ContainsOldGroupVersions": False}
    if page.next_token:
        out["NextToken"] = page.next_token
    return out


# -- insights -------------------------------------------------------------------------------------
# Found at read time from the group's spans (apiary/query/xray_insights.py): reads, like the service graph.

@needs(Permission.READ)
async def get_insight_summaries(call: Call) -> dict[str, Any]:
    start, end = _window(call.params)
    return await asyncio.to_thread(call.xray.insights.summaries, call.env, call.params, start, end)


@needs(Permission.READ)
async def get_insight(call: Call) -> dict[str, Any]:
    return await asyncio.to_thread(call.xray.insights.get, call.env, call.params)


@needs(Permission.READ)
async def get_insight_events(call: Call) -> dict[str, Any]:
    return await asyncio.to_thread(call.xray.insights.events, call.env, call.params)


@needs(Permission.READ)
async def get_insight_impact_graph(call: Call) -> dict[str, Any]:
    start, end = _window(call.params)
    return await asyncio.to_thread(call.xray.insights.impact_graph, call.env, call.params, start, end)


# -- groups ---------------------------------------------------------------------------------------

@needs(Permission.CONFIGURE)
async def create_group(call: Call) -> dict[str, Any]:
    tags = tag_map(call.params.get("Tags"))  # refused tags create nothing
    group = await asyncio.to_thread(call.xray.groups.create, call.env, call.params)
    await asyncio.to_thread(call.xray.tags.created, call.env, f"group/{group.name}", tags)
    return {"Group": group.to_aws()}


@needs(Permission.READ)
async def get_group(call: Call) -> dict[str, Any]:
    return {"Group": (await asyncio.to_thread(call.xray.groups.get, call.env, name_of(call.params))).to_aws()}


@needs(Permission.READ)
async def get_groups(call: Call) -> dict[str, Any]:
    return {"Groups": [g.to_aws() for g in await asyncio.to_thread(call.xray.groups.list, call.env)]}


@needs(Permission.CONFIGURE)
async def update_group(call: Call) -> dict[str, Any]:
    return {"Group": (await asyncio.to_thread(call.xray.groups.update, call.env, call.params)).to_aws()}


@needs(Permission.CONFIGURE)
async def delete_group(call: Call) -> dict[str, Any]:
    await asyncio.to_thread(call.xray.groups.delete, call.env, call.params)
    await asyncio.to_thread(call.xray.tags.deleted, call.env, f"group/{name_of(call.params)}")
    return {}


# -- sampling -------------------------------------------------------------------------------------
# Reading the rules and reporting statistics for targets is what a daemon does while sending, so an
# ingest-only key may (AWS's AWSXRayDaemonWriteAccess policy grants the same two); creating, changing
# and deleting rules is configuration, and the statistic summaries are a read.

@needs(Permission.CONFIGURE)
async def create_sampling_rule(call: Call) -> dict[str, Any]:
    rule = rule_from_request(call.params.get("SamplingRule"), creating=True)
    tags = tag_map(call.params.get("Tags"))
    record = await asyncio.to_thread(call.xray.rules.create, call.env, rule)
    await asyncio.to_thread(call.xray.tags.created, call.env, f"sampling-rule/{rule.RuleName}", tags)
    return {"SamplingRuleRecord": record.to_aws()}


@needs(Permission.INGEST)
async def get_sampling_rules(call: Call) -> dict[str, Any]:
    records = await asyncio.to_thread(call.xray.rules.list, call.env)
    return {"SamplingRuleRecords": [r.to_aws() for r in records]}


@needs(Permission.CONFIGURE)
async def update_sampling_rule(call: Call) -> dict[str, Any]:
    changes = call.params.get("SamplingRuleUpdate")
    if not isinstance(changes, dict):
        raise AwsError("InvalidRequestException", "SamplingRuleUpdate is required")
    record = await asyncio.to_thread(call.xray.rules.update, call.env, changes)
    return {"SamplingRuleRecord": record.to_aws()}


@needs(Permission.CONFIGURE)
async def delete_sampling_rule(call: Call) -> dict[str, Any]:
    record = await asyncio.to_thread(call.xray.rules.delete, call.env, call.params)
    await asyncio.to_thread(call.xray.tags.deleted, call.env, f"sampling-rule/{record.rule.RuleName}")
    return {"SamplingRuleRecord": record.to_aws()}


# -- tags of groups and sampling rules ------------------------------------------------------------

@needs(Permission.CONFIGURE)
async def tag_resource(call: Call) -> dict[str, Any]:
    await asyncio.to_thread(call.xray.tags.tag, call.env, call.params.get("ResourceARN"), call.params.get("Tags"))
    return {}


@needs(Permission.CONFIGURE)
async def untag_resource(call: Call) -> dict[str, Any]:
    await asyncio.to_thread(call.xray.tags.untag, call.env, call.params.get("ResourceARN"), call.params.get("TagKeys"))
    return {}


@needs(Permission.READ)
async def list_tags_for_resource(call: Call) -> dict[str, Any]:
    """The tags by key, a page at a time (`apiary.receivers.xray.tags.TAGS_PAGE`), with NextToken."""
    tags, token = await asyncio.to_thread(call.xray.tags.list, call.env, call.params.get("ResourceARN"),
                                          call.params.get("NextToken"))
    return {"Tags": tags, **({"NextToken": token} if token else {})}


@needs(Permission.INGEST)
async def get_sampling_targets(call: Call) -> dict[str, Any]:
    docs = call.params.get("SamplingStatisticsDocuments")
    if not isinstance(docs, list) or not all(isinstance(d, dict) for d in docs):
        raise AwsError("InvalidRequestException", "SamplingStatisticsDocuments must be a list of objects")
    return await asyncio.to_thread(call.xray.targets.report, call.env, docs)


@needs(Permission.READ)
async def get_sampling_statistic_summaries(call: Call) -> dict[str, Any]:
    return {"SamplingStatisticSummaries": await asyncio.to_thread(call.xray.targets.summaries, call.env)}


@needs(Permission.READ)
async def get_encryption_config(call: Call) -> dict[str, Any]:
    return NO_ENCRYPTION


@needs(Permission.CONFIGURE)
async def put_encryption_config(call: Call) -> dict[str, Any]:
    if call.params.get("Type") != "NONE":
        raise AwsError("InvalidRequestException", "Apiary does not encrypt with KMS keys: only Type NONE is accepted")
    return NO_ENCRYPTION


@needs(Permission.INGEST)
async def put_telemetry_records(call: Call) -> dict[str, Any]:
    """The real X-Ray daemon reports its own health here every minute; Apiary answers as X-Ray does and keeps none."""
    if not isinstance(call.params.get("TelemetryRecords"), list):
        raise AwsError("InvalidRequestException", "TelemetryRecords is required and must be a list")
    return {}


# -- resource policies, Transaction Search's settings, trace retrieval ------------------------------
# Policies, indexing rules and the destination are configuration; a trace retrieval is a read of the spans.

@needs(Permission.CONFIGURE)
async def put_resource_policy(call: Call) -> dict[str, Any]:
    return {"ResourcePolicy": await asyncio.to_thread(call.xray.policies.put, call.env, call.params)}


@needs(Permission.READ)
async def list_resource_policies(call: Call) -> dict[str, Any]:
    policies, token = await asyncio.to_thread(call.xray.policies.list, call.env, call.params.get("NextToken"))
    return {"ResourcePolicies": policies, **({"NextToken": token} if token else {})}


@needs(Permission.CONFIGURE)
async def delete_resource_policy(call: Call) -> dict[str, Any]:
    await asyncio.to_thread(call.xray.policies.delete, call.env, call.params)
    return {}


@needs(Permission.READ)
async def get_indexing_rules(call: Call) -> dict[str, Any]:
    rules, token = await asyncio.to_thread(call.xray.indexing.list, call.env, call.params.get("NextToken"))
    return {"IndexingRules": rules, **({"NextToken": token} if token else {})}


@needs(Permission.CONFIGURE)
async def update_indexing_rule(call: Call) -> dict[str, Any]:
    return {"IndexingRule": await asyncio.to_thread(call.xray.indexing.update, call.env, call.params)}


@needs(Permission.READ)
async def get_trace_segment_destination(call: Call) -> dict[str, Any]:
    return dict(DESTINATION)


@needs(Permission.CONFIGURE)
async def update_trace_segment_destination(call: Call) -> dict[str, Any]:
    return dict(check_destination(call.params))


@needs(Permission.READ)
async def start_trace_retrieval(call: Call) -> dict[str, Any]:
    return await asyncio.to_thread(call.xray.retrievals.start, call.env, call.params)


@needs(Permission.READ)
async def list_retrieved_traces(call: Call) -> dict[str, Any]:
    return await asyncio.to_thread(call.xray.retrievals.list, call.env, call.params)


@needs(Permission.READ)
async def get_retrieved_traces_graph(call: Call) -> dict[str, Any]:
    return await asyncio.to_thread(call.xray.retrievals.graph, call.env, call.params)


@needs(Permission.READ)
async def cancel_trace_retrieval(call: Call) -> dict[str, Any]:
    await asyncio.to_thread(call.xray.retrievals.cancel, call.env, call.params)
    return {}


_OPERATIONS: dict[str, Callable[[Call], Awaitable[dict[str, Any]]]] = {
    "/TraceSegments": put_trace_segments,
    "/TraceSummaries": get_trace_summaries,
    "/Traces": batch_get_traces,
    "/TraceGraph": get_trace_graph,
    "/ServiceGraph": get_service_graph,
    "/TimeSeriesServiceStatistics": get_time_series_service_statistics,
    "/InsightSummaries": get_insight_summaries,
    "/Insight": get_insight,
    "/InsightEvents": get_insight_events,
    "/InsightImpactGraph": get_insight_impact_graph,
    "/CreateGroup": create_group,
    "/GetGroup": get_group,
    "/Groups": get_groups,
    "/UpdateGroup": update_group,
    "/DeleteGroup": delete_group,
    "/CreateSamplingRule": create_sampling_rule,
    "/GetSamplingRules": get_sampling_rules,
    "/UpdateSamplingRule": update_sampling_rule,
    "/DeleteSamplingRule": delete_sampling_rule,
    "/SamplingTargets": get_sampling_targets,
    "/SamplingStatisticSummaries": get_sampling_statistic_summaries,
    "/EncryptionConfig": get_encryption_config,
    "/PutEncryptionConfig": put_encryption_config,
    "/TelemetryRecords": put_telemetry_records,
    "/TagResource": tag_resource,
    "/UntagResource": untag_resource,
    "/ListTagsForResource": list_tags_for_resource,
    "/PutResourcePolicy": put_resource_policy,
    "/ListResourcePolicies": list_resource_policies,
    "/DeleteResourcePolicy": delete_resource_policy,
    "/GetIndexingRules": get_indexing_rules,
    "/UpdateIndexingRule": update_indexing_rule,
    "/GetTraceSegmentDestination": get_trace_segment_destination,
    "/UpdateTraceSegmentDestination": update_trace_segment_destination,
    "/StartTraceRetrieval": start_trace_retrieval,
    "/ListRetrievedTraces": list_retrieved_traces,
    "/GetRetrievedTracesGraph": get_retrieved_traces_graph,
    "/CancelTraceRetrieval": cancel_trace_retrieval,
}

@needs(Permission.READ)
async def daemon_stats(request: Request, key: ApiKey) -> Response:
    """Apiary's own view of the built-in daemon: datagrams received, stored, malformed, dropped.

    Shown only to a read key of the environment the daemon sends to: the counts (and the last malformed
    datagram's error) are that environment's traffic.
    """
    daemon = getattr(request.app.state, "xray_daemon", None)
    if daemon is None:
        return error(404, "the X-Ray daemon is off (--xray-port 0, or network exposure without --xray-daemon-host)")
    if daemon.xray.daemon_env() != key.environment:
        return error(404, f"the X-Ray daemon does not send to environment {key.environment!r}")
    return JSONResponse(daemon.stats())


ACTIONS = {"/TraceSegments": "PutTraceSegments", "/TraceSummaries": "GetTraceSummaries", "/Traces": "BatchGetTraces",
           "/TraceGraph": "GetTraceGraph", "/ServiceGraph": "GetServiceGraph", "/Groups": "GetGroups",
           "/SamplingTargets": "GetSamplingTargets", "/EncryptionConfig": "GetEncryptionConfig",
           "/TelemetryRecords": "PutTelemetryRecords",
           "/TimeSeriesServiceStatistics": "GetTimeSeriesServiceStatistics",
           "/InsightSummaries": "GetInsightSummaries", "/Insight": "GetInsight", "/InsightEvents": "GetInsightEvents",
           "/InsightImpactGraph": "GetInsightImpactGraph"}

routes = [Route(path, operation(fn, ACTIONS.get(path, path[1:])), methods=["POST"]) for path, fn in _OPERATIONS.items()]
routes.append(Route("/api/xray/daemon", guarded(daemon_stats), methods=["GET"]))
