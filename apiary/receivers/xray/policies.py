"""X-Ray resource policies (PutResourcePolicy, ListResourcePolicies, DeleteResourcePolicy), kept per environment.

As X-Ray documents them: at most 5 policies an account (here: an environment), names of 1 to 128 of
``[\\w+=,.@-]``, documents of at most 5 KB that are IAM policy JSON, each change raising the policy's revision id
(``"1"`` for a new policy); a PolicyRevisionId given must be the latest (``"0"``: the policy must not exist yet),
else InvalidPolicyRevisionIdException.

Apiary keeps and lists the policies but does not evaluate them: who may call what is decided by Apiary's keys
(`apiary.permissions`), so a policy cannot lock its writer out, and LockoutPreventionException is never
answered (BypassPolicyLockoutCheck is accepted and changes nothing).
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

from apiary.receivers.xray.paging import page
from apiary.receivers.xray.refusal import Refused
from apiary.store.meta_policies import PolicyRow, RevisionMismatch, TooManyPolicies, XRayPolicyRows

MAX_POLICIES = 5
MAX_DOCUMENT_BYTES = 5 * 1024
_NAME = re.compile(r"[\w+=,.@-]{1,128}")
_VERSIONS = ("2012-10-17", "2008-10-17")


def _name(params: dict[str, Any]) -> str:
    name = params.get("PolicyName")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise Refused("PolicyName must be 1 to 128 letters, digits or + = , . @ _ -")
    return name


def _revision(params: dict[str, Any]) -> int | None:
    """The PolicyRevisionId given, as a number; one that is not a revision id Apiary gives matches none (-1)."""
    given = params.get("PolicyRevisionId")
    if given is None:
        return None
    if not isinstance(given, str):
        raise Refused("PolicyRevisionId must be a string")
    return int(given) if given.isdigit() else -1


def check_document(document: Any) -> str:
    """The document, once it is IAM policy JSON of at most `MAX_DOCUMENT_BYTES`."""
    if not isinstance(document, str) or not document.strip():
        raise Refused("PolicyDocument is required", "MalformedPolicyDocumentException")
    if len(document.encode()) > MAX_DOCUMENT_BYTES:
        raise Refused(f"PolicyDocument is {len(document.encode())} bytes; a resource policy may hold at most "
                      f"{MAX_DOCUMENT_BYTES}", "PolicySizeLimitExceededException")
    try:
        policy = json.loads(document)
    except ValueError as exc:
        raise Refused(f"PolicyDocument is not JSON: {exc}", "MalformedPolicyDocumentException") from None
    if not isinstance(policy, dict):
        raise Refused("PolicyDocument must be a JSON object", "MalformedPolicyDocumentException")
    if "Version" in policy and policy["Version"] not in _VERSIONS:
        raise Refused(f"PolicyDocument's Version must be one of {', '.join(_VERSIONS)}",
                      "MalformedPolicyDocumentException")
    statements = policy.get("Statement")
    statements = [statements] if isinstance(statements, dict) else statements
    if not isinstance(statements, list) or not statements:
        raise Refused("PolicyDocument needs a Statement: an object or a list of them", "MalformedPolicyDocumentException")
    for i, statement in enumerate(statements):
        if not isinstance(statement, dict) or statement.get("Effect") not in ("Allow", "Deny"):
            raise Refused(f"Statement {i} of PolicyDocument needs an Effect of Allow or Deny",
                          "MalformedPolicyDocumentException")
        if not any(k in statement for k in ("Action", "NotAction")):
            raise Refused(f"Statement {i} of PolicyDocument needs an Action", "MalformedPolicyDocumentException")
    return document


def to_aws(row: PolicyRow) -> dict[str, Any]:
    return {"PolicyName": row.name, "PolicyDocument": row.document, "PolicyRevisionId": str(row.revision),
            "LastUpdatedTime": row.updated_at}


def _mismatch(name: str, current: int | None, given: int | None) -> Refused:
    if given == 0:
        return Refused(f"a resource policy named {name} already exists; PolicyRevisionId 0 creates a new one only",
                       "InvalidPolicyRevisionIdException")
    latest = f"its latest revision is {current}" if current is not None else "it does not exist"
    return Refused(f"PolicyRevisionId does not match resource policy {name}: {latest}", "InvalidPolicyRevisionIdException")


class ResourcePolicies:
    def __init__(self, rows: XRayPolicyRows) -> None:
        self.rows = rows

    def put(self, env: str, params: dict[str, Any]) -> dict[str, Any]:
        name, document, given = _name(params), check_document(params.get("PolicyDocument")), _revision(params)
        if params.get("BypassPolicyLockoutCheck") is not None and not isinstance(params["BypassPolicyLockoutCheck"], bool):
            raise Refused("BypassPolicyLockoutCheck must be true or false")
        try:
            return to_aws(self.rows.put(env, name, document, given, time.time(), MAX_POLICIES))
        except RevisionMismatch as exc:
            raise _mismatch(name, exc.args[0], given) from None
        except TooManyPolicies:
            raise Refused(f"this account already has {MAX_POLICIES} resource policies, the most X-Ray keeps",
                          "PolicyCountLimitExceededException") from None

    def list(self, env: str, token: Any) -> tuple[list[dict[str, Any]], str | None]:
        shown, following = page(self.rows.all(env), lambda r: r.name, token, MAX_POLICIES, "resource-policies")
        return [to_aws(r) for r in shown], following

    def delete(self, env: str, params: dict[str, Any]) -> None:
        name, given = _name(params), _revision(params)
        try:
            self.rows.remove(env, name, given)
        except RevisionMismatch as exc:
            raise _mismatch(name, exc.args[0], given) from None
