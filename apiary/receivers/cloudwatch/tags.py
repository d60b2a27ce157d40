"""Tags on log groups and lookup tables (botocore's ``logs`` model): TagResource, UntagResource, ListTagsForResource
by ARN, and the older TagLogGroup, UntagLogGroup, ListTagsLogGroup by a log group's name.

Tags are kept per environment with their resource in the log store (`LogStore.retag`,
`LogStore.retag_lookup_table`), so they go when it goes, and Logs Insights' ``SOURCE logGroupTags(...)`` selects
groups by them. A log group (``...:log-group:<name>``) and a lookup table (``...:lookup-table:<name>``, which
CreateLookupTable documents as taking tags) are the Apiary resources one can tag (AWS's destinations are not
served), so any other ARN is ``ResourceNotFoundException``, as is a resource of another environment. Setting or
removing tags changes configuration; listing them is a read (`apiary.permissions`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from apiary.permissions import Permission, needs
from apiary.receivers import aws_tags
from apiary.receivers.cloudwatch.errors import AwsError, group_not_found, invalid
from apiary.receivers.cloudwatch.operations import ACCOUNT, Call, log_group_tags, tag_error


Operation = Callable[[Call], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class Resource:
    """A taggable resource of the environment: where its tags are read and changed."""

    name: str
    lookup_table: bool = False

    def tags(self, call: Call) -> dict[str, str]:
        if self.lookup_table:
            table = call.logs.lookup_table(call.env, self.name)
            return dict(table.tags) if table is not None else {}
        return call.logs.tags(call.env, self.name)

    async def retag(self, call: Call, change: Callable[[dict[str, str]], dict[str, str]]) -> dict[str, str] | None:
        if self.lookup_table:
            return await call.logs.retag_lookup_table(call.env, self.name, change)
        return await call.logs.retag(call.env, self.name, change)


_KINDS = ("log-group", "lookup-table")


def _resource_of_arn(call: Call) -> Resource:
    """The log group or lookup table ``resourceArn`` names (``arn:aws:logs:<region>:<account>:<kind>:<name>``; a
    log group's ARN may end ``:*``)."""
    arn = call.str("resourceArn", required=True) or ""
    parts = arn.split(":", 6)
    if len(parts) < 7 or parts[0] != "arn" or not parts[2]:
        raise invalid(f"resourceArn {arn!r} is not an ARN (arn:aws:logs:<region>:<account>:log-group:<name> or "
                      "...:lookup-table:<name>)")
    _, _, service, region, account, kind, rest = parts
    name = rest[:-2] if rest.endswith(":*") and kind == "log-group" else rest
    found = service == "logs" and kind in _KINDS and region == call.region and account == ACCOUNT and (
        call.logs.lookup_table(call.env, name) if kind == "lookup-table" else call.logs.group(call.env, name))
    if not found:
        raise AwsError("ResourceNotFoundException", f"The specified resource does not exist: {arn}")
    return Resource(name, lookup_table=kind == "lookup-table")


def _named_group(call: Call) -> Resource:
    name = call.group_name()
    if call.logs.group(call.env, name) is None:
        raise group_not_found(name)
    return Resource(name)


async def _retag(call: Call, resource: Resource, change: Callable[[dict[str, str]], dict[str, str]],
                 counted: bool = False) -> None:
    """``counted``: the operation answers too many tags with TooManyTagsException (TagResource only)."""
    try:
        done = await resource.retag(call, change)
    except aws_tags.BadTags as exc:
        raise tag_error(exc, counted) from None
    if done is None:  # deleted since it was looked up
        raise (AwsError("ResourceNotFoundException", f"The specified lookup table does not exist: {resource.name}")
               if resource.lookup_table else group_not_found(resource.name))


async def _add(call: Call, resource: Resource, counted: bool = False) -> dict[str, Any]:
    added = log_group_tags(call.params.get("tags"), "tags", counted)
    await _retag(call, resource, lambda current: aws_tags.merged(current, added), counted)
    return {}


async def _remove(call: Call, resource: Resource, member: str) -> dict[str, Any]:
    try:
        removed = aws_tags.checked_keys(call.params.get(member), member)
    except aws_tags.BadTags as exc:
        raise invalid(str(exc)) from None
    await _retag(call, resource, lambda current: aws_tags.merged(current, removed=removed))
    return {}


def _operations(find: Callable[[Call], Resource], keys_member: str,
                counted: bool) -> tuple[Operation, Operation, Operation]:
    """Tag, untag and list for one way of naming the resource (``find``): by ARN, or a log group by name in the older
    operations.
    ``keys_member`` holds the keys to remove (UntagResource's ``tagKeys``, UntagLogGroup's ``tags``)."""

    @needs(Permission.CONFIGURE)
    async def tag(call: Call) -> dict[str, Any]:
        return await _add(call, find(call), counted)

    @needs(Permission.CONFIGURE)
    async def untag(call: Call) -> dict[str, Any]:
        return await _remove(call, find(call), keys_member)

    @needs(Permission.READ)
    async def list_tags(call: Call) -> dict[str, Any]:
        return {"tags": find(call).tags(call)}

    return tag, untag, list_tags


tag_resource, untag_resource, list_tags_for_resource = _operations(_resource_of_arn, "tagKeys", counted=True)
tag_log_group, untag_log_group, list_tags_log_group = _operations(_named_group, "tags", counted=False)

OPERATIONS = {
    "TagResource": tag_resource,
    "UntagResource": untag_resource,
    "ListTagsForResource": list_tags_for_resource,
    "TagLogGroup": tag_log_group,
    "UntagLogGroup": untag_log_group,
    "ListTagsLogGroup": list_tags_log_group,
}
