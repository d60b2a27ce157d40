"""X-Ray sampling rules: validation and matching; they are kept by the meta store's ``sampling_rules``.

A rule matches a request when every one of its service name, service type,
host, HTTP method and URL path patterns matches (``*`` any run of
characters, ``?`` one character, case-insensitive) and its attributes are all
present with matching values. Rules are tried by priority (lower first), then
name; ``Default`` (priority 10000, matching everything) always exists and
cannot be deleted, as in AWS.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import Any, Mapping

from apiary.store.meta_sampling import SamplingRuleRows

DEFAULT_RULE = "Default"
DEFAULT_PRIORITY = 10000

_LIMITS = {"ServiceName": 64, "ServiceType": 64, "Host": 64, "HTTPMethod": 10, "URLPath": 128, "ResourceARN": 500}


class RuleError(ValueError):
    """``code``: the AWS error type (InvalidRequestException, RuleLimitExceededException ...)."""

    def __init__(self, message: str, code: str = "InvalidRequestException") -> None:
        super().__init__(message)
        self.code = code


@dataclass
class SamplingRule:
    RuleName: str
    Priority: int
    FixedRate: float
    ReservoirSize: int
    ServiceName: str = "*"
    ServiceType: str = "*"
    Host: str = "*"
    HTTPMethod: str = "*"
    URLPath: str = "*"
    ResourceARN: str = "*"
    Version: int = 1
    Attributes: dict[str, str] = field(default_factory=dict)

    def arn(self, region: str = "us-east-1", account: str = "000000000000") -> str:
        return f"arn:aws:xray:{region}:{account}:sampling-rule/{self.RuleName}"

    def to_aws(self) -> dict[str, Any]:
        out = asdict(self)
        out["RuleARN"] = self.arn()
        # AWS always sends Attributes, {} when empty; the Node.js SDK drops a rule whose Attributes is missing.
        return out

    def matches(self, service: str = "", service_type: str = "", host: str = "", method: str = "", path: str = "",
                attributes: Mapping[str, str] | None = None) -> bool:
        if not (wildcard(self.ServiceName, service) and wildcard(self.ServiceType, service_type)
                and wildcard(self.Host, host) and wildcard(self.HTTPMethod, method) and wildcard(self.URLPath, path)):
            return False
        attrs = attributes or {}
        return all(k in attrs and wildcard(v, attrs[k]) for k, v in self.Attributes.items())

    def sort_key(self) -> tuple[int, str]:
        return (self.Priority, self.RuleName)


def default_rule() -> SamplingRule:
    return SamplingRule(DEFAULT_RULE, DEFAULT_PRIORITY, 0.05, 1)


def wildcard(pattern: str, value: str | None) -> bool:
    if pattern == "*":
        return True
    return bool(_compile(pattern).match(value or ""))


@lru_cache(maxsize=1024)
def _compile(pattern: str) -> re.Pattern[str]:
    # X-Ray's only wildcards are * and ? (fnmatch would also read [ ] as a class).
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(f"^{body}$", re.I | re.S)


def rule_from_request(doc: Any, *, creating: bool) -> SamplingRule:
    """Validate a ``SamplingRule`` structure from CreateSamplingRule, with AWS's messages."""
    if not isinstance(doc, dict):
        raise RuleError("SamplingRule must be an object")
    if creating:
        missing = [k for k in ("RuleName", "ResourceARN", "Priority", "FixedRate", "ReservoirSize", "ServiceName",
                               "ServiceType", "Host", "HTTPMethod", "URLPath", "Version") if doc.get(k) is None]
        if missing:
            raise RuleError(f"SamplingRule is missing required field(s): {', '.join(missing)}")
    rule = SamplingRule(
        RuleName=doc.get("RuleName"), Priority=doc.get("Priority"), FixedRate=doc.get("FixedRate"),
        ReservoirSize=doc.get("ReservoirSize"), ServiceName=doc.get("ServiceName", "*"),
        ServiceType=doc.get("ServiceType", "*"), Host=doc.get("Host", "*"), HTTPMethod=doc.get("HTTPMethod", "*"),
        URLPath=doc.get("URLPath", "*"), ResourceARN=doc.get("ResourceARN", "*"), Version=doc.get("Version", 1),
        Attributes=doc.get("Attributes") or {})
    check(rule)
    return rule


def check(rule: SamplingRule) -> None:
    name = rule.RuleName
    if not isinstance(name, str) or not 1 <= len(name) <= 32:
        raise RuleError("RuleName must be 1 to 32 characters")
    if not isinstance(rule.Priority, int) or isinstance(rule.Priority, bool) or not 1 <= rule.Priority <= 9999:
        if not (name == DEFAULT_RULE and rule.Priority == DEFAULT_PRIORITY):
            raise RuleError(f"Priority must be an integer from 1 to 9999, got {rule.Priority!r}")
    if not isinstance(rule.FixedRate, (int, float)) or isinstance(rule.FixedRate, bool) or not 0 <= rule.FixedRate <= 1:
        raise RuleError(f"FixedRate must be between 0 and 1 (a fraction of requests), got {rule.FixedRate!r}")
    if not isinstance(rule.ReservoirSize, int) or isinstance(rule.ReservoirSize, bool) or rule.ReservoirSize < 0:
        raise RuleError(f"ReservoirSize must be a non-negative integer, got {rule.ReservoirSize!r}")
    if rule.Version != 1:
        raise RuleError(f"Version must be 1, got {rule.Version!r}")
    for k, limit in _LIMITS.items():
        v = getattr(rule, k)
        if not isinstance(v, str) or len(v) > limit:
            raise RuleError(f"{k} must be a string of at most {limit} characters")
    if not isinstance(rule.Attributes, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in rule.Attributes.items()):
        raise RuleError("Attributes must map strings to strings")
    rule.FixedRate = float(rule.FixedRate)


@dataclass
class RuleRecord:
    rule: SamplingRule
    created_at: float
    modified_at: float

    def to_aws(self) -> dict[str, Any]:
        return {"SamplingRule": self.rule.to_aws(), "CreatedAt": self.created_at, "ModifiedAt": self.modified_at}


class RuleStore:
    """Rules per environment, kept by the meta store's `SamplingRuleRows`."""

    def __init__(self, rows: SamplingRuleRows) -> None:
        self.rows = rows

    def _ensure_default(self, env: str) -> None:
        self.rows.add_if_missing(env, DEFAULT_RULE, json.dumps(asdict(default_rule())), time.time())

    def list(self, env: str) -> list[RuleRecord]:
        self._ensure_default(env)
        rows = self.rows.all(env)
        records = [RuleRecord(SamplingRule(**json.loads(r)), c, m) for r, c, m in rows]
        return sorted(records, key=lambda rec: rec.rule.sort_key())

    def get(self, env: str, name: str) -> RuleRecord | None:
        return next((r for r in self.list(env) if r.rule.RuleName == name), None)

    def last_modified(self, env: str) -> float:
        return max(r.modified_at for r in self.list(env))

    def create(self, env: str, rule: SamplingRule) -> RuleRecord:
        if rule.RuleName == DEFAULT_RULE:
            raise RuleError("a rule named Default already exists; update it instead")
        self._ensure_default(env)
        if len(self.list(env)) >= 25:
            raise RuleError("each account can have at most 25 sampling rules", "RuleLimitExceededException")
        now = time.time()
        if not self.rows.add(env, rule.RuleName, json.dumps(asdict(rule)), now):
            raise RuleError(f"a sampling rule named {rule.RuleName!r} already exists")
        return RuleRecord(rule, now, now)

    def update(self, env: str, changes: dict[str, Any]) -> RuleRecord:
        name = _rule_name(changes)
        rec = self.get(env, name)
        if rec is None:
            raise RuleError(f"no sampling rule named {name!r}")
        data = asdict(rec.rule)
        for k in ("Priority", "FixedRate", "ReservoirSize", "ServiceName", "ServiceType", "Host", "HTTPMethod",
                  "URLPath", "ResourceARN", "Attributes"):
            if changes.get(k) is not None:
                data[k] = changes[k]
        rule = SamplingRule(**data)
        check(rule)
        if name == DEFAULT_RULE and any(getattr(rule, k) != getattr(rec.rule, k) for k in
                                        ("Priority", "ServiceName", "ServiceType", "Host", "HTTPMethod", "URLPath")):
            raise RuleError("the Default rule can only change its FixedRate and ReservoirSize")
        now = time.time()
        self.rows.replace(env, name, json.dumps(asdict(rule)), now)
        return RuleRecord(rule, rec.created_at, now)

    def delete(self, env: str, ident: dict[str, Any]) -> RuleRecord:
        name = _rule_name(ident)
        if name == DEFAULT_RULE:
            raise RuleError("the Default rule cannot be deleted")
        rec = self.get(env, name)
        if rec is None:
            raise RuleError(f"no sampling rule named {name!r}")
        self.rows.remove(env, name)
        return rec

    def match(self, env: str, **request: Any) -> SamplingRule:
        for rec in self.list(env):
            if rec.rule.matches(**request):
                return rec.rule
        return default_rule()


def _rule_name(doc: dict[str, Any]) -> str:
    name = doc.get("RuleName")
    if not name and isinstance(doc.get("RuleARN"), str):
        name = doc["RuleARN"].rsplit("/", 1)[-1]
    if not isinstance(name, str) or not name:
        raise RuleError("give RuleName or RuleARN")
    return name
