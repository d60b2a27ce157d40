"""NextToken paging of X-Ray's small configuration listings (tags, resource policies, retrieved traces).

A token names the key of the last item handed out and what was listed (a resource's ARN, a retrieval), so a
listing that changes between pages neither repeats nor skips the items that stayed, and a token cannot be
carried over to another listing. A token Apiary did not give out is ``InvalidRequestException``, as X-Ray
answers one it cannot read.
"""

from __future__ import annotations

import base64
import json
from typing import Any, Callable, Sequence, TypeVar

from apiary.receivers.xray.refusal import Refused

T = TypeVar("T")


def _encode(listing: str, after: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"l": listing, "a": after}).encode()).decode()


def _after(token: Any, listing: str) -> str | None:
    if token is None or token == "":
        return None
    try:
        doc = json.loads(base64.urlsafe_b64decode(str(token).encode()))
        after, same = doc["a"], doc["l"] == listing
    except (ValueError, KeyError, TypeError):
        raise Refused("NextToken is not one this server gave out") from None
    if not same or not isinstance(after, str):
        raise Refused("NextToken belongs to another listing")
    return after


def page(items: Sequence[T], key: Callable[[T], str], token: Any, size: int,
         listing: str) -> tuple[list[T], str | None]:
    """One page of ``items`` (sorted by ``key``) after the token's item, and the token of the next page, if any."""
    after = _after(token, listing)
    rest = [it for it in items if after is None or key(it) > after]
    shown = list(rest[:size])
    return shown, (_encode(listing, key(shown[-1])) if len(rest) > size else None)
