"""ListLogGroups: the newer listing of log groups (botocore's ``logs`` model), with the filters AWS documents.

It answers a summary per group (name, ARN, class) rather than DescribeLogGroups' statistics, pages up to
1,000 groups at a time, and filters by what its request names; several filters must all hold:

* ``logGroupNamePattern``: up to five alternatives joined by ``|``, each 3 to 24 characters of a group name's
  alphabet, matched case-sensitively as a substring, or as a prefix after ``^`` (``^/aws/lambda|discovery``);
* ``logGroupClass``: every Apiary group is ``STANDARD``, so another class selects none;
* ``logGroupTags``: AWS's ``TagFilter`` (`apiary.query.tag_filter`, as Insights' ``SOURCE logGroupTags`` uses it),
  on the tags the tagging operations gave the groups;
* ``includeLinkedAccounts`` / ``accountIdentifiers``: Apiary is one account with no linked source accounts, so they
  are checked and add no group;
* ``dataSources`` and ``fieldIndexNames`` are refused by name: Apiary records neither the data source of a log
  event nor any field index policy, and guessing would list groups AWS would not.
"""

from __future__ import annotations

import re
from typing import Any, Callable

from apiary.permissions import Permission, needs
from apiary.query.tag_filter import MAX_FILTERS, BadTagFilter, TagFilter, all_match
from apiary.receivers.cloudwatch.errors import invalid
from apiary.receivers.cloudwatch.operations import Call, group_page, listing

PAGE, MAX_PAGE = 50, 1000
CLASSES = ("STANDARD", "INFREQUENT_ACCESS", "DELIVERY", "ESSENTIALS")
_PATTERN = re.compile(r"(\^?[.\-_/#A-Za-z0-9]{3,24})(\|\^?[.\-_/#A-Za-z0-9]{3,24}){0,4}")
_ACCOUNT = re.compile(r"\d{12}")
MAX_ACCOUNTS = 20


def _name_test(pattern: str) -> Callable[[str], bool]:
    """``logGroupNamePattern`` as a test of a name: any alternative matches (``^`` anchors it at the start)."""
    if not 3 <= len(pattern) <= 129 or not _PATTERN.fullmatch(pattern):
        raise invalid(f"1 validation error detected: Value '{pattern}' at 'logGroupNamePattern' failed to satisfy "
                      "constraint: Member must satisfy regular expression pattern: "
                      r"(\^?[\.\-_\/#A-Za-z0-9]{3,24})(\|\^?[\.\-_\/#A-Za-z0-9]{3,24}){0,4}")
    prefixes = tuple(p[1:] for p in pattern.split("|") if p.startswith("^"))
    parts = tuple(p for p in pattern.split("|") if not p.startswith("^"))
    return lambda name: name.startswith(prefixes) or any(p in name for p in parts)


def _tag_filters(raw: Any) -> tuple[TagFilter, ...]:
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_FILTERS:
        raise invalid(f"logGroupTags takes 1 to {MAX_FILTERS} tag filters")
    out = []
    for f in raw:
        values = f.get("values", []) if isinstance(f, dict) else None
        if not isinstance(f, dict) or not isinstance(f.get("key"), str) or not isinstance(values, list) \
                or not all(isinstance(v, str) for v in values):
            raise invalid("each of logGroupTags is {\"key\": \"...\", \"values\": [\"...\"]} (values optional)")
        try:
            out.append(TagFilter(f["key"], tuple(values)))
        except BadTagFilter as exc:
            raise invalid(f"logGroupTags: {exc}") from None
    return tuple(out)


def _check_accounts(call: Call) -> None:
    accounts = call.params.get("accountIdentifiers")
    if accounts is None:
        return
    if not isinstance(accounts, list) or len(accounts) > MAX_ACCOUNTS \
            or not all(isinstance(a, str) and _ACCOUNT.fullmatch(a) for a in accounts):
        raise invalid(f"accountIdentifiers takes at most {MAX_ACCOUNTS} account IDs of 12 digits")


@needs(Permission.READ)
async def list_log_groups(call: Call) -> dict[str, Any]:
    for member, what in (("dataSources", "the data sources of log events"),
                         ("fieldIndexNames", "field index policies")):
        if call.params.get(member) is not None:
            raise invalid(f"Apiary does not support {member} in ListLogGroups: it records no {what}")
    _check_accounts(call)
    limit = call.int("limit", 1, MAX_PAGE) or PAGE
    tests: list[Callable[[str], bool]] = []
    pattern = call.str("logGroupNamePattern")
    if pattern is not None:
        tests.append(_name_test(pattern))
    group_class = call.str("logGroupClass")
    if group_class is not None and group_class not in CLASSES:
        raise invalid(f"1 validation error detected: Value '{group_class}' at 'logGroupClass' failed to satisfy "
                      f"constraint: Member must satisfy enum value set: [{', '.join(CLASSES)}]")
    if group_class not in (None, "STANDARD"):
        tests.append(lambda name: False)
    if call.params.get("logGroupTags") is not None:
        filters = _tag_filters(call.params["logGroupTags"])
        tests.append(lambda name: all_match(filters, call.logs.tags(call.env, name)))
    keep = (lambda name: all(t(name) for t in tests)) if tests else None
    page, token = group_page(call, limit, keep=keep)
    return listing("logGroups", [{"logGroupName": g.name, "logGroupArn": call.arn(g.name),
                                  "logGroupClass": "STANDARD"} for g in page], token)


OPERATIONS = {"ListLogGroups": list_log_groups}
