"""The CloudWatch Logs operations, each ``(call) -> response dict``, raising `AwsError` in AWS's words.

Shapes follow botocore's service model for ``logs`` (2014-03-28); only the
members a client reads are filled in. The account id in ARNs is a fixed
``000000000000``: Apiary environments are not AWS accounts.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from apiary.model.timestamps import MAX_TIMESTAMP_US
from apiary.permissions import Permission, Refusal, check, needs
from apiary.query import insights
from apiary.receivers import aws_tags
from apiary.receivers.cloudwatch import events as put_events
from apiary.receivers.cloudwatch.errors import AwsError, group_not_found, invalid, stream_not_found
from apiary.receivers.cloudwatch.filter_pattern import PatternError, parse
from apiary.receivers.cloudwatch.insights import Registry
from apiary.store.base import LogGroup, LogStore, LogStream
from apiary.store.meta import ApiKey

ACCOUNT = "000000000000"
# What each operation needs (`apiary.permissions`): creating a group or stream is part of sending, as
# watchtower does it on first use and AWS's agent policies allow it to writers; reading, querying,
# deleting and retention are not.
_GROUP_NAME = re.compile(r"^[\.\-_/#A-Za-z0-9]{1,512}$")
_RETENTION_DAYS = {1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
                   3288, 3653}
FILTER_SCAN_BUDGET = 2_000_000  # rows examined per FilterLogEvents call before answering with a nextToken
PAGE = 50


@dataclass
class Call:
    env: str
    region: str
    params: dict[str, Any]
    logs: LogStore
    #: This server's Logs Insights queries.
    queries: Registry
    #: The request's key, for an operation whose parameters ask for more than the operation itself (`require`).
    key: ApiKey | None = None

    def require(self, need: Permission, action: str) -> None:
        """AccessDeniedException unless the key may also do ``need`` (CreateLogGroup with ``tags`` is tagging)."""
        if self.key is None:
            return
        try:
            check(self.key, need, f"logs:{action}")
        except Refusal as exc:
            raise AwsError("AccessDeniedException", f"User: apiary key {self.key.masked} is not authorized to "
                           f"perform: logs:{action} ({exc.message})") from None

    def str(self, name: str, required: bool = False) -> str | None:
        v = self.params.get(name)
        if v is None:
            if required:
                raise invalid(f"1 validation error detected: Value null at '{name}' failed to satisfy constraint: "
                              f"Member must not be null")
            return None
        if not isinstance(v, str):
            raise invalid(f"{name} must be a string")
        return v

    def int(self, name: str, lo: int | None = None, hi: int | None = None) -> int | None:
        v = self.params.get(name)
        if v is None:
            return None
        if not isinstance(v, int) or isinstance(v, bool):
            raise invalid(f"{name} must be an integer")
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            raise invalid(f"1 validation error detected: Value '{v}' at '{name}' failed to satisfy constraint: "
                          f"Member must be between {lo} and {hi}")
        return v

    def group_name(self) -> str:
        name = self.str("logGroupName") or _from_identifier(self.str("logGroupIdentifier"))
        if not name:
            raise invalid("1 validation error detected: Value null at 'logGroupName' failed to satisfy constraint: "
                          "Member must not be null")
        return name

    def existing_group(self) -> LogGroup:
        name = self.group_name()
        g = self.logs.group(self.env, name)
        if g is None:
            raise group_not_found(name)
        return g

    def arn(self, group: str) -> str:
        return f"arn:aws:logs:{self.region}:{ACCOUNT}:log-group:{group}"


def _from_identifier(ident: str | None) -> str | None:
    """``logGroupIdentifier`` may be a name or an ARN (``...:log-group:name[:*]``)."""
    if ident and ident.startswith("arn:"):
        name = ident.split(":log-group:", 1)[-1]
        return name[:-2] if name.endswith(":*") else name
    return ident


def _group_json(call: Call, g: LogGroup) -> dict[str, Any]:
    out: dict[str, Any] = {"logGroupName": g.name, "creationTime": g.created_ms, "metricFilterCount": 0,
                           "arn": call.arn(g.name) + ":*", "logGroupArn": call.arn(g.name), "storedBytes": g.stored_bytes,
                           "logGroupClass": "STANDARD"}
    if g.retention_days:
        out["retentionInDays"] = g.retention_days
    return out


def _stream_json(call: Call, s: LogStream) -> dict[str, Any]:
    out: dict[str, Any] = {"logStreamName": s.name, "creationTime": s.created_ms,
                           "arn": f"{call.arn(s.log_group)}:log-stream:{s.name}", "storedBytes": s.stored_bytes}
    if s.first_event_ms is not None:
        out.update(firstEventTimestamp=s.first_event_ms, lastEventTimestamp=s.last_event_ms,
                   lastIngestionTime=s.last_ingestion_ms, uploadSequenceToken=_sequence_token(s))
    return out


def _sequence_token(s: LogStream) -> str:
    # Sequence tokens are accepted and ignored (as AWS does since 2023); answer one that grows anyway.
    return str(49_000_000_000_000_000_000_000_000 + (s.last_ingestion_ms or s.created_ms))


def _after(token: str | None) -> str:
    """The name a ``nextToken`` resumes after (``n/<name>``, as `_name_token` writes it); "" for the first page."""
    if not token:
        return ""
    if not token.startswith("n/"):
        raise invalid("The specified nextToken is invalid.")
    return token[2:]


def _name_token(last: str) -> str:
    return "n/" + last


def _page(items: list[Any], key: Callable[[Any], str], token: str | None, limit: int) -> tuple[list[Any], str | None]:
    start = 0
    if token:
        after = _after(token)
        start = next((i for i, it in enumerate(items) if key(it) > after), len(items))
    page = items[start:start + limit]
    more = start + limit < len(items)
    return page, (_name_token(key(page[-1])) if more and page else None)


def listing(member: str, shown: list[dict[str, Any]], token: str | None) -> dict[str, Any]:
    """A Describe* answer: one page of ``member``, and the token of the next page when there is one."""
    out: dict[str, Any] = {member: shown}
    if token:
        out["nextToken"] = token
    return out


# -- groups and streams ---------------------------------------------------------------------------

@needs(Permission.INGEST)
async def create_log_group(call: Call) -> dict[str, Any]:
    name = call.group_name()
    if not _GROUP_NAME.match(name):
        raise invalid(f"1 validation error detected: Value '{name}' at 'logGroupName' failed to satisfy constraint: "
                      r"Member must satisfy regular expression pattern: [\.\-_/#A-Za-z0-9]+")
    tags = None
    if call.params.get("tags") is not None:
        # AWS: "To assign tags when you create a log group, you must have ... logs:TagResource".
        call.require(Permission.CONFIGURE, "TagResource")
        tags = log_group_tags(call.params["tags"], "tags")
    if not await call.logs.create_group(call.env, name, tags):
        raise AwsError("ResourceAlreadyExistsException", "The specified log group already exists")
    return {}


def log_group_tags(tags: Any, member: str, counted: bool = False) -> dict[str, str]:
    """``tags`` checked by AWS's rules (`apiary.receivers.aws_tags`), refused in CloudWatch Logs' words."""
    try:
        return aws_tags.checked(tags, member)
    except aws_tags.BadTags as exc:
        raise tag_error(exc, counted) from None


def tag_error(exc: aws_tags.BadTags, counted: bool) -> AwsError:
    """``TooManyTagsException`` where the operation has it (``counted``: TagResource); else, as CreateLogGroup and
    TagLogGroup list no such error, ``InvalidParameterException``."""
    return AwsError("TooManyTagsException", str(exc)) if exc.too_many and counted else invalid(str(exc))


@needs(Permission.CONFIGURE)
async def delete_log_group(call: Call) -> dict[str, Any]:
    g = call.existing_group()
    await call.logs.delete_group(call.env, g.name)
    return {}


def _stream_name(call: Call) -> str:
    name = call.str("logStreamName", required=True) or ""
    if not 1 <= len(name) <= 512 or ":" in name or "*" in name:
        raise invalid(f"1 validation error detected: Value '{name}' at 'logStreamName' failed to satisfy constraint: "
                      "Member must satisfy regular expression pattern: [^:*]*")
    return name


@needs(Permission.INGEST)
async def create_log_stream(call: Call) -> dict[str, Any]:
    g = call.existing_group()
    name = _stream_name(call)
    if not await call.logs.create_stream(call.env, g.name, name):
        raise AwsError("ResourceAlreadyExistsException", "The specified log stream already exists")
    return {}


@needs(Permission.CONFIGURE)
async def delete_log_stream(call: Call) -> dict[str, Any]:
    g = call.existing_group()
    name = _stream_name(call)
    if call.logs.stream(call.env, g.name, name) is None:
        raise stream_not_found(g.name, name)
    await call.logs.delete_stream(call.env, g.name, name)
    return {}


def group_page(call: Call, limit: int, prefix: str = "",
               keep: Callable[[str], bool] | None = None) -> tuple[list[LogGroup], str | None]:
    """One page of the environment's log groups by name, from the request's ``nextToken``, and the next page's
    token: the store reads this page's groups only (`LogStore.groups`), however many the environment holds."""
    found = call.logs.groups(call.env, prefix, after=_after(call.str("nextToken")), limit=limit + 1, keep=keep)
    page = found[:limit]
    return page, (_name_token(page[-1].name) if len(found) > limit else None)


@needs(Permission.READ)
async def describe_log_groups(call: Call) -> dict[str, Any]:
    prefix = call.str("logGroupNamePrefix") or ""
    pattern = call.str("logGroupNamePattern")
    if prefix and pattern:
        raise invalid("LogGroupNamePrefix and LogGroupNamePattern are mutually exclusive parameters.")
    limit = call.int("limit", 1, 50) or PAGE
    keep = (lambda name: pattern.lower() in name.lower()) if pattern else None
    page, token = group_page(call, limit, prefix, keep)
    return listing("logGroups", [_group_json(call, g) for g in page], token)


@needs(Permission.READ)
async def describe_log_streams(call: Call) -> dict[str, Any]:
    g = call.existing_group()
    prefix = call.str("logStreamNamePrefix") or ""
    order = call.str("orderBy") or "LogStreamName"
    if order not in ("LogStreamName", "LastEventTime"):
        raise invalid("orderBy must be LogStreamName or LastEventTime")
    if prefix and order == "LastEventTime":
        raise invalid("Cannot order by LastEventTime with a logStreamNamePrefix.")
    descending = bool(call.params.get("descending"))
    limit = call.int("limit", 1, 50) or PAGE
    streams = call.logs.streams(call.env, g.name, prefix)
    if order == "LastEventTime":
        streams.sort(key=lambda s: (s.last_event_ms or 0, s.name), reverse=descending)
        keyed = [(f"{i:012d}", s) for i, s in enumerate(streams)]
    else:
        if descending:
            streams.reverse()
        keyed = [(f"{i:012d}", s) for i, s in enumerate(streams)]
    page, token = _page(keyed, lambda kv: kv[0], call.str("nextToken"), limit)
    return listing("logStreams", [_stream_json(call, s) for _, s in page], token)


@needs(Permission.CONFIGURE)
async def put_retention_policy(call: Call) -> dict[str, Any]:
    g = call.existing_group()
    days = call.int("retentionInDays")
    if days not in _RETENTION_DAYS:
        raise invalid(f"1 validation error detected: Value '{days}' at 'retentionInDays' failed to satisfy constraint: "
                      f"Member must satisfy enum value set: {sorted(_RETENTION_DAYS)}")
    await call.logs.put_retention(call.env, g.name, days)
    return {}


@needs(Permission.CONFIGURE)
async def delete_retention_policy(call: Call) -> dict[str, Any]:
    g = call.existing_group()
    await call.logs.put_retention(call.env, g.name, None)
    return {}


# -- events ---------------------------------------------------------------------------------------

@needs(Permission.INGEST)
async def put_log_events(call: Call) -> dict[str, Any]:
    g = call.existing_group()
    name = _stream_name(call)
    s = call.logs.stream(call.env, g.name, name)
    if s is None:
        raise stream_not_found(g.name, name)
    try:
        decoded = put_events.decode(g.name, name, call.params.get("logEvents"), g.retention_days)
    except put_events.InvalidEvents as exc:
        raise invalid(str(exc)) from None
    await call.logs.append(call.env, decoded.batch)
    out: dict[str, Any] = {"nextSequenceToken": _sequence_token(call.logs.stream(call.env, g.name, name) or s)}
    if decoded.rejected:
        out["rejectedLogEventsInfo"] = decoded.rejected
    return out


def _position(token: str, prefix: str) -> tuple[int, int]:
    try:
        if not token.startswith(prefix):
            raise ValueError
        ts, seq = token[len(prefix):].split("-", 1)
        return int(ts), int(seq)
    except ValueError:
        raise invalid("The specified nextToken is invalid.") from None


def _token(prefix: str, pos: tuple[int, int]) -> str:
    return f"{prefix}{pos[0]}-{pos[1]}"


@needs(Permission.READ)
async def get_log_events(call: Call) -> dict[str, Any]:
    g = call.existing_group()
    name = _stream_name(call)
    if call.logs.stream(call.env, g.name, name) is None:
        raise stream_not_found(g.name, name)
    limit = call.int("limit", 1, 10_000) or 10_000
    token = call.str("nextToken")
    head = bool(call.params.get("startFromHead"))
    kwargs = dict(start_ms=call.int("startTime"), end_ms=call.int("endTime"), limit=limit)
    if token and token.startswith("f/"):
        rows = await asyncio.to_thread(call.logs.events, call.env, g.name, [name], after=_position(token, "f/"), **kwargs)
    elif token:
        rows = await asyncio.to_thread(call.logs.events, call.env, g.name, [name], before=_position(token, "b/"),
                                       descending=True, **kwargs)
    else:
        rows = await asyncio.to_thread(call.logs.events, call.env, g.name, [name], descending=not head, **kwargs)
    data = rows.to_pydict()
    order = range(rows.num_rows) if (token or "").startswith("f/") or (not token and head) else range(rows.num_rows - 1, -1, -1)
    events = [{"timestamp": data["timestamp_us"][i] // 1000, "message": data["message"][i],
               "ingestionTime": data["ingestion_ms"][i]} for i in order]
    positions = [(data["timestamp_us"][i], data["seq"][i]) for i in order]
    if positions:
        forward, backward = _token("f/", positions[-1]), _token("b/", positions[0])
    else:
        forward = token if token and token.startswith("f/") else _token("f/", (0, 0))
        backward = token if token and token.startswith("b/") else _token("b/", (0, 0))
    return {"events": events, "nextForwardToken": forward, "nextBackwardToken": backward}


@needs(Permission.READ)
async def filter_log_events(call: Call) -> dict[str, Any]:
    g = call.existing_group()
    names = call.params.get("logStreamNames")
    prefix = call.str("logStreamNamePrefix")
    if names is not None and prefix is not None:
        raise invalid("logStreamNames and logStreamNamePrefix are mutually exclusive")
    if prefix is not None:
        names = [s.name for s in call.logs.streams(call.env, g.name, prefix)]
    if names is not None and (not isinstance(names, list) or not all(isinstance(n, str) for n in names)):
        raise invalid("logStreamNames must be a list of strings")
    limit = call.int("limit", 1, 10_000) or 10_000
    try:
        pattern = parse(call.str("filterPattern"))
    except PatternError as exc:
        raise invalid(str(exc)) from None
    token = call.str("nextToken")
    after = _position(token, "t/") if token else None
    message_filter = pattern.prefilter()
    start_ms, end_ms = call.int("startTime"), call.int("endTime")

    def scan() -> tuple[list[dict[str, Any]], tuple[int, int] | None]:
        out: list[dict[str, Any]] = []
        pos = after
        scanned = 0
        while True:
            want = limit - len(out)
            chunk = want + 1 if pattern.exact_in_sql else max(want * 4, 5000)
            rows = call.logs.events(call.env, g.name, names, start_ms=start_ms, end_ms=end_ms, after=pos,
                                    limit=chunk, message_filter=message_filter)
            d = rows.to_pydict()
            n = rows.num_rows
            for i in range(n):
                msg = d["message"][i]
                if not pattern.exact_in_sql and not pattern.matches(msg):
                    continue
                if len(out) == limit:  # one more match exists: answer with a token after the last one returned
                    return out, pos
                ts = d["timestamp_us"][i]
                out.append({"logStreamName": d["log_stream"][i], "timestamp": ts // 1000, "message": msg,
                            "ingestionTime": d["ingestion_ms"][i], "eventId": str(d["seq"][i])})
                pos = (ts, d["seq"][i])
            if n:
                last = (d["timestamp_us"][n - 1], d["seq"][n - 1])
                if len(out) < limit:
                    pos = last
            scanned += n
            if n < chunk:
                return out, None
            if len(out) == limit and pattern.exact_in_sql:
                return out, pos
            if scanned >= FILTER_SCAN_BUDGET:  # answer what we have; the token resumes the scan
                return out, pos

    events, next_pos = await asyncio.to_thread(scan)
    out: dict[str, Any] = {"events": events, "searchedLogStreams": []}
    if next_pos is not None:
        out["nextToken"] = _token("t/", next_pos)
    return out


# -- Logs Insights --------------------------------------------------------------------------------

#: Unix seconds of the last time the stores hold.
MAX_TIME_S = MAX_TIMESTAMP_US // 1_000_000


@needs(Permission.READ)
async def start_query(call: Call) -> dict[str, Any]:
    names = call.params.get("logGroupNames") or call.params.get("logGroupIdentifiers")
    if names is None and call.params.get("logGroupName"):
        names = [call.params["logGroupName"]]
    if names is not None and (not isinstance(names, list) or not all(isinstance(n, str) for n in names)):
        raise invalid("logGroupName, logGroupNames and logGroupIdentifiers are strings")
    groups = [_from_identifier(n) or "" for n in names or []]
    for n in groups:
        if call.logs.group(call.env, n) is None:
            raise group_not_found(n)
    start, end = call.int("startTime"), call.int("endTime")
    if start is None or end is None:
        raise invalid("StartQuery needs startTime and endTime (seconds since the epoch)")
    if end < start:
        raise invalid("endTime must be greater than or equal to startTime")
    # Nothing is stored outside 1970..2262 (``apiary.model.timestamps``): cut the window there, so no
    # time the database cannot represent reaches the query.
    start, end = min(max(start, 0), MAX_TIME_S), min(max(end, 0), MAX_TIME_S)
    text = call.str("queryString", required=True) or ""
    if len(text) > insights.MAX_QUERY_LENGTH:
        raise invalid(f"1 validation error detected: Value at 'queryString' failed to satisfy constraint: "
                      f"Member must have length less than or equal to {insights.MAX_QUERY_LENGTH}")
    try:
        compiled = insights.compile_query(text, call.int("limit", 1, 10_000), call.logs.dialect,
                                          insights.fields_of_lookup_tables(call.logs, call.env))
    except insights.QueryError as exc:
        raise AwsError("MalformedQueryException", str(exc)) from None
    # A group named in the query (SOURCE '<group>', in a subquery or a join's right side) is checked as those of
    # the request are: one of this environment's, else ResourceNotFoundException.
    for n in insights.named_groups(compiled):
        if call.logs.group(call.env, n) is None:
            raise group_not_found(n)
    # The log groups come from the request or from the query's SOURCE command, never from both (StartQuery).
    if compiled.source is not None:
        if groups:
            raise invalid("Specify the log groups either in the request or with SOURCE in the query, not both")
        groups = compiled.source.select([g.name for g in call.logs.groups(call.env)],
                                        lambda name: call.logs.tags(call.env, name))
    elif not groups:
        raise invalid("StartQuery needs logGroupName, logGroupNames or logGroupIdentifiers, "
                      "or a SOURCE command in queryString")
    query_id = call.queries.start(call.env, call.logs, groups, start, end, compiled)
    return {"queryId": query_id}


@needs(Permission.READ)
async def get_query_results(call: Call) -> dict[str, Any]:
    query_id = call.str("queryId", required=True) or ""
    q = call.queries.get(call.env, query_id)
    if q is None:
        raise AwsError("ResourceNotFoundException", f"Query does not exist: {query_id}")
    await q.wait(timeout=0.5)
    return q.response()


@needs(Permission.READ)
async def stop_query(call: Call) -> dict[str, Any]:
    query_id = call.str("queryId", required=True) or ""
    q = call.queries.get(call.env, query_id)
    if q is None:
        raise AwsError("ResourceNotFoundException", f"Query does not exist: {query_id}")
    return {"success": q.stop()}


@needs(Permission.READ)
async def describe_queries(call: Call) -> dict[str, Any]:
    return {"queries": [q.summary() for q in call.queries.list(call.env)]}


OPERATIONS: dict[str, Callable[[Call], Awaitable[dict[str, Any]]]] = {
    "CreateLogGroup": create_log_group,
    "CreateLogStream": create_log_stream,
    "DeleteLogGroup": delete_log_group,
    "DeleteLogStream": delete_log_stream,
    "DescribeLogGroups": describe_log_groups,
    "DescribeLogStreams": describe_log_streams,
    "PutRetentionPolicy": put_retention_policy,
    "DeleteRetentionPolicy": delete_retention_policy,
    "PutLogEvents": put_log_events,
    "GetLogEvents": get_log_events,
    "FilterLogEvents": filter_log_events,
    "StartQuery": start_query,
    "GetQueryResults": get_query_results,
    "StopQuery": stop_query,
    "DescribeQueries": describe_queries,
}
