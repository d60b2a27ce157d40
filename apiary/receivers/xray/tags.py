"""Tags on X-Ray groups and sampling rules (TagResource, UntagResource, ListTagsForResource, and ``Tags`` on
CreateGroup and CreateSamplingRule), kept per environment by the meta store's ``xray_tags``.

X-Ray names a resource by ARN: ``arn:aws:xray:<region>:<account>:group/<name>/<id>`` or
``...:sampling-rule/<name>``, the ARNs Apiary's groups and rules answer with. An ARN of anything else, or of a
group or rule this environment does not have, is ``ResourceNotFoundException`` (404), as X-Ray answers. AWS's
rules on keys and values (`apiary.receivers.aws_tags`) are checked before a resource is created with tags, so a
refused tag never leaves a group or rule behind; deleting a group or rule deletes its tags.
"""

from __future__ import annotations

import threading
from typing import Any

from apiary.receivers import aws_tags
from apiary.receivers.xray.groups import GroupError, GroupStore
from apiary.receivers.xray.paging import page
from apiary.sampling.rules import RuleStore
from apiary.store.meta_tags import XRayTagRows

ACCOUNT = "000000000000"
#: Tags a ListTagsForResource page holds. AWS documents no page size (the request has no MaxResults); with at
#: most 50 tags a resource, 25 a page lets a client that follows NextToken see every one.
TAGS_PAGE = 25


class TagError(ValueError):
    """Refused in X-Ray's words: ``code`` is the error type, ``status`` its HTTP status."""

    def __init__(self, message: str, code: str = "InvalidRequestException", status: int = 400) -> None:
        super().__init__(message)
        self.code, self.status = code, status


def _error(exc: aws_tags.BadTags, counted: bool = True) -> TagError:
    """TooManyTagsException where the operation has it (TagResource); CreateGroup and CreateSamplingRule list
    none, so there it is InvalidRequestException."""
    return TagError(str(exc), "TooManyTagsException" if exc.too_many and counted else "InvalidRequestException")


def tag_map(tags: Any, member: str = "Tags", counted: bool = False) -> dict[str, str]:
    """X-Ray's ``[{"Key": k, "Value": v}, ...]`` as a map, each key and value checked by AWS's rules."""
    if tags is None:
        return {}
    if not isinstance(tags, list) or not all(isinstance(t, dict) and set(t) <= {"Key", "Value"}
                                             and isinstance(t.get("Key"), str) for t in tags):
        raise TagError(f"{member} must be a list of {{Key, Value}} objects")
    try:
        return aws_tags.checked({t["Key"]: t.get("Value", "") for t in tags}, member)
    except aws_tags.BadTags as exc:
        raise _error(exc, counted) from None


def tag_list(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in sorted(tags.items())]


class ResourceTags:
    """The tags of one environment's groups and rules; changes to one environment are made one at a time."""

    def __init__(self, rows: XRayTagRows, groups: GroupStore, rules: RuleStore) -> None:
        self.rows, self.groups, self.rules = rows, groups, rules
        self._lock = threading.Lock()

    def resource(self, env: str, arn: Any) -> str:
        """``group/<name>`` or ``sampling-rule/<name>`` of an ARN naming one of ``env``'s groups or rules."""
        if not isinstance(arn, str) or not arn:
            raise TagError("ResourceARN is required")
        parts = arn.split(":", 5)
        missing = TagError(f"Resource not found: {arn}", "ResourceNotFoundException", 404)
        if len(parts) != 6 or parts[:3] != ["arn", "aws", "xray"] or parts[4] != ACCOUNT:
            raise missing
        kind, _, rest = parts[5].partition("/")
        if kind == "group":
            try:
                return f"group/{self.groups.get(env, rest.split('/', 1)[0]).name}"
            except GroupError:
                raise missing from None
        if kind == "sampling-rule" and self.rules.get(env, rest) is not None:
            return f"sampling-rule/{rest}"
        raise missing

    def list(self, env: str, arn: Any, token: Any = None) -> tuple[list[dict[str, str]], str | None]:
        """One page of the resource's tags by key, `TAGS_PAGE` a page, and the next page's token if any."""
        resource = self.resource(env, arn)
        return page(tag_list(self.rows.get(env, resource)), lambda t: t["Key"], token, TAGS_PAGE, f"tags/{resource}")

    def tag(self, env: str, arn: Any, tags: Any) -> None:
        added = tag_map(tags, counted=True)
        with self._lock:
            resource = self.resource(env, arn)
            self._put(env, resource, added, ())

    def untag(self, env: str, arn: Any, keys: Any) -> None:
        try:
            removed = aws_tags.checked_keys(keys, "TagKeys")
        except aws_tags.BadTags as exc:
            raise _error(exc) from None
        with self._lock:
            self._put(env, self.resource(env, arn), {}, removed)

    def created(self, env: str, resource: str, tags: dict[str, str]) -> None:
        """The ``Tags`` of a CreateGroup or CreateSamplingRule (checked with `tag_map` before creating)."""
        if tags:
            with self._lock:
                self.rows.put(env, resource, tags)

    def deleted(self, env: str, resource: str) -> None:
        with self._lock:
            self.rows.remove(env, resource)

    def _put(self, env: str, resource: str, added: dict[str, str], removed: Any) -> None:
        try:
            self.rows.put(env, resource, aws_tags.merged(self.rows.get(env, resource), added, removed))
        except aws_tags.BadTags as exc:
            raise _error(exc) from None
