"""Tags on log groups (botocore's ``logs`` model): TagResource, UntagResource, ListTagsForResource by ARN, and the
older TagLogGroup, UntagLogGroup, ListTagsLogGroup by name.

Tags are kept per environment with the group in the log store (`LogStore.retag`), so they go when the group
goes, and Logs Insights' ``SOURCE logGroupTags(...)`` selects groups by them. A log group is the only Apiary
resource AWS lets one tag through these operations (its destinations are not served), so any other ARN is
``ResourceNotFoundException``, as is a group of another environment. Setting or removing tags changes
configuration; listing them is a read (`apiary.permissions`).
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable

from apiary.permissions import Permission, needs
from apiary.receivers import aws_tags
from apiary.receivers.cloudwatch.errors import AwsError, group_not_found, invalid
from apiary.receivers.cloudwatch.operations import ACCOUNT, Call, log_group_tags, tag_error


Operation = Callable[[Call], Awaitable[dict[str, Any]]]


def _group_of_arn(call: Call) -> str:
    """The log group ``resourceArn`` names (``arn:aws:logs:<region>:<account>:log-group:<name>``, ``:*`` allowed)."""
    arn = call.str("resourceArn", required=True) or ""
    parts = arn.split(":", 6)
    if len(parts) < 7 or parts[0] != "arn" or not parts[2]:
        raise invalid(f"resourceArn {arn!r} is not an ARN (arn:aws:logs:<region>:<account>:log-group:<name>)")
    _, _, service, region, account, kind, rest = parts
    name = rest[:-2] if rest.endswith(":*") else rest
    if service != "logs" or kind != "log-group" or region != call.region or account != ACCOUNT \
            or call.logs.group(call.env, name) is None:
        raise AwsError("ResourceNotFoundException", f"The specified resource does not exist: {arn}")
    return name


def _named_group(call: Call) -> str:
    name = call.group_name()
    if call.logs.group(call.env, name) is None:
        raise group_not_found(name)
    return name


async def _retag(call: Call, group: str, change: Callable[[dict[str, str]], dict[str, str]],
                 counted: bool = False) -> None:
    """``counted``: the operation answers too many tags with TooManyTagsException (TagResource only)."""
    try:
        done = await call.logs.retag(call.env, group, change)
    except aws_tags.BadTags as exc:
        raise tag_error(exc, counted) from None
    if done is None:  # deleted since it was looked up
        raise group_not_found(group)


async def _add(call: Call, group: str, counted: bool = False) -> dict[str, Any]:
    added = log_group_tags(call.params.get("tags"), "tags", counted)
    await _retag(call, group, lambda current: aws_tags.merged(current, added), counted)
    return {}


async def _remove(call: Call, group: str, member: str) -> dict[str, Any]:
    try:
        removed = aws_tags.checked_keys(call.params.get(member), member)
    except aws_tags.BadTags as exc:
        raise invalid(str(exc)) from None
    await _retag(call, group, lambda current: aws_tags.merged(current, removed=removed))
    return {}


def _operations(find: Callable[[Call], str], keys_member: str, counted: bool) -> tuple[Operation, Operation, Operation]:
    """Tag, untag and list for one way of naming the group (``find``): by ARN, or by name in the older operations.
    ``keys_member`` holds the keys to remove (UntagResource's ``tagKeys``, UntagLogGroup's ``tags``)."""

    @needs(Permission.CONFIGURE)
    async def tag(call: Call) -> dict[str, Any]:
        return await _add(call, find(call), counted)

    @needs(Permission.CONFIGURE)
    async def untag(call: Call) -> dict[str, Any]:
        return await _remove(call, find(call), keys_member)

    @needs(Permission.READ)
    async def list_tags(call: Call) -> dict[str, Any]:
        return {"tags": call.logs.tags(call.env, find(call))}

    return tag, untag, list_tags


tag_resource, untag_resource, list_tags_for_resource = _operations(_group_of_arn, "tagKeys", counted=True)
tag_log_group, untag_log_group, list_tags_log_group = _operations(_named_group, "tags", counted=False)

OPERATIONS = {
    "TagResource": tag_resource,
    "UntagResource": untag_resource,
    "ListTagsForResource": list_tags_for_resource,
    "TagLogGroup": tag_log_group,
    "UntagLogGroup": untag_log_group,
    "ListTagsLogGroup": list_tags_log_group,
}
