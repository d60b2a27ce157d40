"""The narrow view of the server the CloudWatch Logs receiver gets (``app.state.cloudwatch``).

A key check, the log store (PutLogEvents appends to it and answers once
committed; the read operations query it) and the server's registry of Logs
Insights queries; nothing else of the server.
"""

from __future__ import annotations

from typing import Protocol

from apiary.receivers.cloudwatch.insights import Registry
from apiary.store.base import LogStore
from apiary.store.meta import ApiKey


class LogsSink(Protocol):
    #: None while the log store is not open: every operation answers ServiceUnavailableException.
    logs: LogStore | None
    #: Logs Insights queries started on this server (StartQuery -> GetQueryResults).
    insights: Registry

    def authenticate(self, key: str | None) -> ApiKey | None:
        """The key's record, or None for a missing or unknown key."""
