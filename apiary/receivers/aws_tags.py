"""The tag rules AWS applies to a taggable resource, checked once for CloudWatch Logs and X-Ray.

Both services document the same limits (botocore's ``logs`` and ``xray`` models: ``TagKey``, ``TagValue``,
``Tags``): at most 50 tags on a resource; keys of 1 to 128 and values of 0 to 256 characters, each a
Unicode letter, digit or space or one of ``_ . : / = + - @``; and keys starting ``aws:`` belong to AWS,
so a user may neither set nor remove them. Each receiver turns `BadTags` into its own error words
(``InvalidParameterException`` for Logs, ``InvalidRequestException`` for X-Ray, and
``TooManyTagsException`` for both when the count is the problem).
"""

from __future__ import annotations

import unicodedata
from typing import Any, Iterable, Mapping

MAX_TAGS = 50
MAX_KEY, MAX_VALUE = 128, 256
_PUNCTUATION = set("_.:/=+-@")
RESERVED_PREFIX = "aws:"


class BadTags(ValueError):
    """The tags cannot be stored; ``too_many`` when only their number is wrong (TooManyTagsException)."""

    def __init__(self, message: str, too_many: bool = False) -> None:
        super().__init__(message)
        self.too_many = too_many


def _allowed(text: str) -> bool:
    return all(c in _PUNCTUATION or unicodedata.category(c)[0] in "LZN" for c in text)


def check_key(key: Any, member: str) -> str:
    if not isinstance(key, str) or not 1 <= len(key) <= MAX_KEY or not _allowed(key):
        raise BadTags(f"tag key {key!r} in {member} must be 1 to {MAX_KEY} letters, digits, spaces or _ . : / = + - @")
    if key.lower().startswith(RESERVED_PREFIX):
        raise BadTags(f"tag key {key!r} in {member}: the aws: prefix is reserved for AWS's own tags")
    return key


def checked(tags: Any, member: str) -> dict[str, str]:
    """``tags`` (a JSON object of key to value) once every key and value is one AWS accepts."""
    if not isinstance(tags, dict):
        raise BadTags(f"{member} must be a map of tag keys to tag values")
    for key, value in tags.items():
        check_key(key, member)
        if not isinstance(value, str) or len(value) > MAX_VALUE or not _allowed(value):
            raise BadTags(f"the value of tag {key!r} in {member} must be at most {MAX_VALUE} letters, digits, "
                          "spaces or _ . : / = + - @")
    if len(tags) > MAX_TAGS:
        raise BadTags(f"{member} holds {len(tags)} tags; a resource can have at most {MAX_TAGS}", too_many=True)
    return dict(tags)


def checked_keys(keys: Any, member: str) -> list[str]:
    """Tag keys to remove (UntagResource), each one a user may remove."""
    if not isinstance(keys, list):
        raise BadTags(f"{member} must be a list of tag keys")
    return [check_key(k, member) for k in keys]


def merged(current: Mapping[str, str], added: Mapping[str, str] | None = None,
           removed: Iterable[str] = ()) -> dict[str, str]:
    """The tags after adding (a key already there takes the new value) and removing; at most `MAX_TAGS`."""
    out = {**current, **(added or {})}
    for key in removed:
        out.pop(key, None)
    if len(out) > MAX_TAGS:
        raise BadTags(f"the resource would have {len(out)} tags; a resource can have at most {MAX_TAGS}",
                      too_many=True)
    return out
