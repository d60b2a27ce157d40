"""X-Ray groups: a name and a filter expression, kept per environment by the meta store's ``xray_groups``.

The expression is parsed when the group is created or updated, so a group
always holds one that compiles; GetServiceGraph with a group evaluates it.
The Default group (every trace) exists without being created; only its
InsightsConfiguration may change, as in X-Ray, and is then kept as a row of
its name (CreateGroup refuses that name, so no group can take it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from apiary.receivers.xray.filter import parse
from apiary.store.meta_groups import XRayGroupRows

_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,32}$")
DEFAULT = "Default"


class GroupError(ValueError):
    def __init__(self, message: str, code: str = "InvalidRequestException") -> None:
        super().__init__(message)
        self.code = code


@dataclass
class Group:
    name: str
    filter_expression: str
    insights: bool = False
    notifications: bool = False

    def arn(self) -> str:
        return f"arn:aws:xray:us-east-1:000000000000:group/{self.name}/{self.name}"

    def to_aws(self) -> dict[str, Any]:
        out: dict[str, Any] = {"GroupName": self.name, "GroupARN": self.arn(),
                               "InsightsConfiguration": {"InsightsEnabled": self.insights,
                                                         "NotificationsEnabled": self.notifications}}
        if self.filter_expression:
            out["FilterExpression"] = self.filter_expression
        return out


def name_of(doc: dict[str, Any]) -> str:
    name = doc.get("GroupName")
    if not name and isinstance(doc.get("GroupARN"), str):
        parts = doc["GroupARN"].split("/")
        name = parts[1] if len(parts) >= 2 else None
    if not isinstance(name, str) or not name:
        raise GroupError("give GroupName or GroupARN")
    return name


class GroupStore:
    def __init__(self, rows: XRayGroupRows) -> None:
        self.rows = rows

    def list(self, env: str) -> list[Group]:
        stored = self.rows.all(env)
        flags = next(((i, no) for n, _f, i, no in stored if n == DEFAULT), (False, False))
        return [Group(DEFAULT, "", *flags)] + [Group(n, f, i, no) for n, f, i, no in stored if n != DEFAULT]

    def get(self, env: str, name: str) -> Group:
        for g in self.list(env):
            if g.name == name:
                return g
        raise GroupError(f"Group not found: {name}")

    def expression(self, env: str, field: str, value: str) -> str:
        """The filter expression of the group a filter names with ``group.name`` or ``group.arn``."""
        for g in self.list(env):
            if (g.name if field == "name" else g.arn()) == value:
                return g.filter_expression
        raise GroupError(f"Group not found: {value} (named by group.{field} in the filter expression)")

    def create(self, env: str, doc: dict[str, Any]) -> Group:
        name = doc.get("GroupName")
        if not isinstance(name, str) or not _NAME.match(name) or name == DEFAULT:
            raise GroupError("GroupName must be 1 to 32 letters, digits, '.', '_' or '-', and not Default")
        expr = doc.get("FilterExpression") or ""
        parse(expr)  # FilterError -> InvalidRequestException with its position
        insights = doc.get("InsightsConfiguration") or {}
        group = Group(name, expr, bool(insights.get("InsightsEnabled")), bool(insights.get("NotificationsEnabled")))
        if not self.rows.add(env, name, expr, group.insights, group.notifications):
            raise GroupError(f"Group already exists: {name}")
        return group

    def update(self, env: str, doc: dict[str, Any]) -> Group:
        group = self.get(env, name_of(doc))
        if group.name == DEFAULT and doc.get("FilterExpression") is not None:
            raise GroupError("the Default group's filter expression cannot be changed (only its InsightsConfiguration)")
        if doc.get("FilterExpression") is not None:
            parse(doc["FilterExpression"])
            group.filter_expression = doc["FilterExpression"]
        insights = doc.get("InsightsConfiguration") or {}
        if insights.get("InsightsEnabled") is not None:
            group.insights = bool(insights["InsightsEnabled"])
        if insights.get("NotificationsEnabled") is not None:
            group.notifications = bool(insights["NotificationsEnabled"])
        if not self.rows.add(env, group.name, group.filter_expression, group.insights, group.notifications):
            self.rows.replace(env, group.name, group.filter_expression, group.insights, group.notifications)
        return group

    def delete(self, env: str, doc: dict[str, Any]) -> None:
        name = name_of(doc)
        if name == DEFAULT:
            raise GroupError("the Default group cannot be deleted")
        if not self.rows.remove(env, name):
            raise GroupError(f"Group not found: {name}")
