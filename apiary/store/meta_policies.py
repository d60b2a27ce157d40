"""X-Ray resource policies as rows of the SQLite metadata store: ``(name, document, revision, updated_at)``.

The receiver (`apiary.receivers.xray.policies`) checks names and documents; this repository keeps them and makes
PolicyRevisionId's promise hold: each change checks the revision it was given and writes in one transaction, so two
writers holding the same revision cannot both win.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from apiary.store.meta import MetaStore

SCHEMA = """
CREATE TABLE IF NOT EXISTS xray_resource_policies (
    environment TEXT NOT NULL,
    name TEXT NOT NULL,
    document TEXT NOT NULL,
    revision INTEGER NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (environment, name)
);
"""


class PolicyRow(NamedTuple):
    name: str
    document: str
    revision: int
    updated_at: float


class RevisionMismatch(Exception):
    """The policy's latest revision is not the one given (or the policy exists where none was expected)."""


class TooManyPolicies(Exception):
    """A new policy would pass the environment's limit."""


class XRayPolicyRows:
    def __init__(self, meta: "MetaStore") -> None:
        self._meta = meta
        meta._script(SCHEMA)

    def all(self, env: str) -> list[PolicyRow]:
        rows = self._meta._run("SELECT name, document, revision, updated_at FROM xray_resource_policies "
                               "WHERE environment = ? ORDER BY name", (env,))
        return [PolicyRow(*r) for r in rows]

    def put(self, env: str, name: str, document: str, expected: int | None, now: float, limit: int) -> PolicyRow:
        """Create the policy at revision 1 or replace it at the next revision. ``expected``: the revision it must be
        at (0: it must not exist); None takes whatever is there."""
        with self._meta._tx() as db:
            row = db.execute("SELECT revision FROM xray_resource_policies WHERE environment = ? AND name = ?",
                             (env, name)).fetchone()
            current = row[0] if row else None
            if expected is not None and (current or 0) != expected:
                raise RevisionMismatch(current)
            if current is None:
                count = db.execute("SELECT count(*) FROM xray_resource_policies WHERE environment = ?", (env,)).fetchone()[0]
                if count >= limit:
                    raise TooManyPolicies(count)
            revision = (current or 0) + 1
            db.execute("INSERT OR REPLACE INTO xray_resource_policies VALUES (?, ?, ?, ?, ?)",
                       (env, name, document, revision, now))
        return PolicyRow(name, document, revision, now)

    def remove(self, env: str, name: str, expected: int | None) -> None:
        """Delete the policy (nothing when there is none and no revision was expected)."""
        with self._meta._tx() as db:
            row = db.execute("SELECT revision FROM xray_resource_policies WHERE environment = ? AND name = ?",
                             (env, name)).fetchone()
            if expected is not None and (row is None or row[0] != expected):
                raise RevisionMismatch(row[0] if row else None)
            db.execute("DELETE FROM xray_resource_policies WHERE environment = ? AND name = ?", (env, name))
