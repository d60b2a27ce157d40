"""One byte budget for the request bodies every receiver holds at once.

Memory used to be bounded by requests, not bytes: 40 concurrent 19 MiB trace
bodies took the server to 2.3 GB, because each body was read whole before
any check. Here a body's bytes are reserved as they are read (its declared
Content-Length at once, before a byte is buffered; a chunked body chunk by
chunk), and given back when its response has been sent. A body that does not
fit is refused with 429 and Retry-After, which OTLP exporters, botocore and
pyrollbar all retry.

Small bodies (a real SDK's periodic export of a few spans) keep a share of
the budget that large ones may not take, so a flood of large bodies does not
starve well-behaved clients.
"""

from __future__ import annotations

import time

from apiary.store.base import StoreOverloaded

#: A body up to this size may use the whole budget; larger ones leave ``SMALL_SHARE`` of it free.
SMALL_BODY_BYTES = 1024 * 1024
SMALL_SHARE = 8  # one eighth of the budget stays for small bodies
#: Where the middleware puts a request's allowance in the ASGI scope.
SCOPE_KEY = "apiary.body_allowance"


class BodyOverBudget(StoreOverloaded):
    """The server holds as many body bytes as it may: retry later (429 + Retry-After)."""

    def __init__(self, retry_after: int = 1) -> None:
        super().__init__(retry_after)
        self.args = ("the server is reading as many request bodies as its memory bound allows "
                     f"(APIARY_MAX_INFLIGHT_BYTES); retry after {retry_after}s",)


class BodyTimeout(Exception):
    """The client took longer than the body timeout to send its body."""


class BodyBudget:
    """Bytes reserved by bodies being read or handled; used from the event loop only."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self.peak = 0
        self.refused = 0
        self._large_cap = limit - limit // SMALL_SHARE

    def take(self, n: int, body_size: int) -> bool:
        """Reserve ``n`` more bytes of a body that will then hold ``body_size``; False if they do not fit."""
        cap = self.limit if body_size <= SMALL_BODY_BYTES else self._large_cap
        if self.used + n > cap:
            self.refused += 1
            return False
        self.used += n
        self.peak = max(self.peak, self.used)
        return True

    def give_back(self, n: int) -> None:
        self.used -= n


class BodyAllowance:
    """One request's share: what it holds, and when its body must have arrived."""

    def __init__(self, budget: BodyBudget, body_timeout_s: float) -> None:
        self.budget = budget
        self.held = 0
        self.deadline = time.monotonic() + body_timeout_s
        self.timeout_s = body_timeout_s

    def take(self, n: int, body_size: int) -> None:
        if not self.budget.take(n, body_size):
            raise BodyOverBudget(retry_after=1)
        self.held += n

    def release(self) -> None:
        self.budget.give_back(self.held)
        self.held = 0
