"""One byte budget for the request bodies every receiver holds at once, and each environment's share of it.

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

Each environment has a share too, so that one environment's flood cannot
spend the intake (bytes held, and the decode work they stand for) of the
others. Once a request's key is known (`BodyAllowance.charge_to`; HTTP
receivers do it in ``read_body``, from the environment the one permission
check noted), its bytes also count against its environment's share
(``--max-env-inflight-bytes``, half the budget by default), with the same
room kept for small bodies. And when the store refuses an environment's
batch because that environment's share of the loader is used
(`EnvironmentOverloaded`), its requests are refused for the Retry-After it
was given (`hold_off`), before their bodies are read or decoded: a flood's
bodies used to be decoded in full only to be refused by the store.

A client that sends again at once after such a refusal, ignoring Retry-After,
still cost the event loop a request parsed and answered each time: two such
senders made about 560 refusals a second, which doubled every other
environment's response times. So a refusal while held off is answered only
after the hold-off's remaining time, at most ``HELD_OFF_ANSWER_DELAY_S``
(`EnvironmentOverShare.held_off_s`; HTTP receivers wait it in ``read_body``):
such a sender is slowed to four requests a second per connection, and a
client that honours Retry-After (a second or more) loses a quarter of one.

When a hold-off ends, one request of that environment is read (its trial);
the others are refused as held off until the trial is answered. Every sender
of a flood used to be read and decoded as soon as the hold-off ended, and
all but the first were then refused by the store again: with two senders,
95 bodies a minute decoded only to be refused, beside 58 accepted; with the
trial, 58 beside 60 (``bench/fairness.py``, docs/benchmarks.md, wave 12). A
wide body's decode, though on a worker a step behind in the scheduler's
order, slows the other environments' exports that meet it.
"""

from __future__ import annotations

import math
import time

from apiary.store.base import StoreOverloaded

#: A body up to this size may use the whole budget; larger ones leave ``SMALL_SHARE`` of it free.
SMALL_BODY_BYTES = 1024 * 1024
SMALL_SHARE = 8  # one eighth of the budget stays for small bodies
#: An environment's share of the budget when none is configured: one half, so another always has room.
DEFAULT_ENV_SHARE = 2
#: The longest a refusal of a held-off environment's request waits before it is answered.
HELD_OFF_ANSWER_DELAY_S = 0.25
#: Where the middleware puts a request's allowance in the ASGI scope.
SCOPE_KEY = "apiary.body_allowance"


class BodyOverBudget(StoreOverloaded):
    """The server holds as many body bytes as it may: retry later (429 + Retry-After)."""

    def __init__(self, retry_after: int = 1) -> None:
        super().__init__(retry_after)
        self.args = ("the server is reading as many request bodies as its memory bound allows "
                     f"(APIARY_MAX_INFLIGHT_BYTES); retry after {retry_after}s",)


class EnvironmentOverShare(BodyOverBudget):
    """This environment has used its share of the intake: it retries later, the others go on (429 + Retry-After)."""

    def __init__(self, environment: str, why: str, retry_after: int = 1, held_off_s: float = 0.0) -> None:
        super().__init__(retry_after)
        self.environment = environment
        #: Seconds left of the hold-off that refused it (0 when its share of body bytes did).
        self.held_off_s = held_off_s
        self.args = (f"environment {environment!r} {why}; retry after {retry_after}s",)


class BodyTimeout(Exception):
    """The client took longer than the body timeout to send its body."""


def _large_cap(limit: int) -> int:
    return limit - limit // SMALL_SHARE


class BodyBudget:
    """Bytes reserved by bodies being read or handled, in all and per environment; used from the event loop only."""

    def __init__(self, limit: int, env_limit: int = 0) -> None:
        self.limit = limit
        self.env_limit = env_limit or limit // DEFAULT_ENV_SHARE
        self.used = 0
        self.peak = 0
        self.refused = 0
        #: Refusals for an environment's share (bytes, or held off), apart from the server-wide ones.
        self.refused_env = 0
        self._env_used: dict[str, int] = {}
        #: Environment -> monotonic time until which its requests are refused (the store's Retry-After).
        self._held_off: dict[str, float] = {}
        #: Environment whose hold-off has ended -> the one request of it read since, until it is answered.
        self._trial: dict[str, object] = {}

    def take(self, n: int, body_size: int, env: str | None = None, request: object = None) -> None:
        """Reserve ``n`` more bytes of a body that will then hold ``body_size``, for ``env`` when known.

        Raises `EnvironmentOverShare` past ``env``'s share (or while it is held off), else
        `BodyOverBudget` past the server's budget.
        """
        large = body_size > SMALL_BODY_BYTES
        if env is not None:
            self.refuse_if_held_off(env, request)
        if self.used + n > (_large_cap(self.limit) if large else self.limit):
            self.refused += 1
            raise BodyOverBudget(retry_after=1)
        env_cap = _large_cap(self.env_limit) if large else self.env_limit
        if env is not None and self._env_used.get(env, 0) + n > env_cap:
            raise self._over_share(env)
        self.used += n
        self.peak = max(self.peak, self.used)
        if env is not None:
            self._env_used[env] = self._env_used.get(env, 0) + n

    def give_back(self, n: int, env: str | None = None) -> None:
        self.used -= n
        if env is not None:
            left = self._env_used.get(env, 0) - n
            if left > 0:
                self._env_used[env] = left
            else:
                self._env_used.pop(env, None)

    def move_to(self, n: int, env: str, request: object = None) -> None:
        """Count ``n`` bytes already reserved without an environment against ``env`` (its key is now known)."""
        self.refuse_if_held_off(env, request)
        if n and self._env_used.get(env, 0) + n > self.env_limit:
            raise self._over_share(env)
        if n:
            self._env_used[env] = self._env_used.get(env, 0) + n

    def _over_share(self, env: str) -> EnvironmentOverShare:
        self.refused += 1
        self.refused_env += 1
        return EnvironmentOverShare(env, f"holds as many request body bytes as one environment may "
                                         f"(APIARY_MAX_ENV_INFLIGHT_BYTES, {self.env_limit} bytes)")

    def hold_off(self, env: str, seconds: float) -> None:
        """Refuse ``env``'s requests for ``seconds`` (the Retry-After the store gave its last batch)."""
        self._held_off[env] = max(self._held_off.get(env, 0.0), time.monotonic() + seconds)

    def refuse_if_held_off(self, env: str, request: object = None) -> None:
        """`EnvironmentOverShare` while ``env`` is held off, and once it is over, for every request of it but the
        first (``request``, its trial) until that one is answered (`end_trial`)."""
        until = self._held_off.get(env)
        if until is None:
            return
        left = until - time.monotonic()
        if left <= 0:
            if request is None:  # no request to follow the answer of
                return
            trial = self._trial.setdefault(env, request)
            if trial is request:
                return
            left = 1.0  # the trial's answer says whether the store takes this environment's work again
        self.refused += 1
        self.refused_env += 1
        raise EnvironmentOverShare(env, "has as much costly work waiting to be loaded as its share of the loader "
                                        "allows, so this request was not read", retry_after=max(1, math.ceil(left)),
                                   held_off_s=left)

    def end_trial(self, env: str, request: object) -> None:
        """``request`` is answered: if it was ``env``'s trial and the store has not held ``env`` off again, it is
        no longer held off."""
        if self._trial.get(env) is not request:
            return
        del self._trial[env]
        until = self._held_off.get(env)
        if until is not None and until <= time.monotonic():
            del self._held_off[env]


class BodyAllowance:
    """One request's share: what it holds, for which environment, and when its body must have arrived."""

    def __init__(self, budget: BodyBudget, body_timeout_s: float) -> None:
        self.budget = budget
        self.held = 0
        self.environment: str | None = None
        self.deadline = time.monotonic() + body_timeout_s
        self.timeout_s = body_timeout_s

    def charge_to(self, env: str) -> None:
        """From now on this request's bytes count against ``env``'s share too; `EnvironmentOverShare` if it has
        none left (or is held off). Called once the request's key is known, before its body is read."""
        if self.environment is not None:  # a request acts for one environment: the first it was charged to
            self.budget.refuse_if_held_off(self.environment, self)
            return
        try:
            self.budget.move_to(self.held, env, self)
        except EnvironmentOverShare:
            self.budget.end_trial(env, self)  # refused for its bytes after it became the trial: not this request's
            raise
        self.environment = env

    def take(self, n: int, body_size: int) -> None:
        self.budget.take(n, body_size, self.environment, self)
        self.held += n

    def release(self) -> None:
        """The request is answered: its bytes go back, and a trial after a hold-off is over."""
        self.budget.give_back(self.held, self.environment)
        self.held = 0
        if self.environment is not None:
            self.budget.end_trial(self.environment, self)
