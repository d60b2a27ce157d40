"""The narrow view of the server the Rollbar receiver gets (``app.state.rollbar``): a key check and the error store.

The error store both takes reports (``report`` answers once committed) and
serves the receiver's own read API (items, occurrences, status changes).
"""

from __future__ import annotations

from typing import Protocol

from apiary.store.base import ErrorStore
from apiary.store.meta import ApiKey


class RollbarSink(Protocol):
    #: None while the error store is not open: every call answers 503.
    errors: ErrorStore | None

    def authenticate(self, key: str | None) -> ApiKey | None:
        """The key's record, or None for a missing or unknown key."""
