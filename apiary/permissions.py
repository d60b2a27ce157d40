"""Apiary's one permission model: what a key may do, what each operation needs, and the one check between them.

A key belongs to one environment and holds a set of permissions there:

* ``INGEST``    -- send data (OTLP export, Honeycomb events, X-Ray segments, PutLogEvents, Rollbar items);
* ``READ``      -- query what was sent (traces, columns, queries, log events, Insights, error items, the UI);
* ``CONFIGURE`` -- change how data is kept or sampled (X-Ray groups and sampling rules, log groups and
  streams and their retention, deletes, saved queries, an error item's status).

A full key holds all three; an ``--ingest-only`` key holds ``INGEST`` alone. Ingest-only keys are the
kind that ends up in browser bundles (the Rollbar client token, the OTel web SDK's header), so they
must never read or change anything, on any protocol.

Every operation declares what it needs with `needs` (a route's endpoint, or an entry of a
protocol's operation table); `permission_of` reads the declaration, and an operation without one is
refused rather than let through. `resolve` is the one check; its `Refusal` says why (no credential,
unknown credential, or a permission the key lacks), and each protocol turns that into its own
words (an AWS ``AccessDeniedException``, a Rollbar ``{"err": 1}``, an OTLP ``Status``...).

`Exposure` is who can reach the server: ``loopback`` (this machine only: the UI needs no login and
the X-Ray daemon listens without a key, as the real daemon does) or ``network`` (every listener asks
for a key, or is off). It follows ``--host`` unless ``--exposure network`` asks for the stricter
mode on a loopback address (which is also how the tests exercise it without binding anything else).
"""

from __future__ import annotations

import enum
import ipaddress
from typing import Any, Callable, TypeVar

from apiary.store import read_scope
from apiary.store.meta import ApiKey


class Permission(enum.Enum):
    #: Answered to anyone who can connect (the health check, the UI's static shell).
    PUBLIC = "public"
    INGEST = "ingest"
    READ = "read"
    CONFIGURE = "configure"


FULL = frozenset({Permission.INGEST, Permission.READ, Permission.CONFIGURE})
INGEST_ONLY = frozenset({Permission.INGEST})


def granted(key: ApiKey) -> frozenset[Permission]:
    """What a key may do in its environment."""
    return FULL if key.can_read else INGEST_ONLY


F = TypeVar("F", bound=Callable[..., Any])


def needs(permission: Permission) -> Callable[[F], F]:
    """Declare what an endpoint or protocol operation needs; read back by `permission_of`."""

    def mark(fn: F) -> F:
        fn.permission = permission  # type: ignore[attr-defined]
        return fn

    return mark


class Undeclared(LookupError):
    """An operation reached the check without saying what it needs: refused, never let through."""


def permission_of(fn: Any) -> Permission:
    found = getattr(fn, "permission", None)
    if not isinstance(found, Permission):
        raise Undeclared(f"{getattr(fn, '__qualname__', fn)!r} declares no permission")
    return found


class Refusal(Exception):
    """Why a request was not let through. ``kind`` is one of:

    * ``missing``   -- no credential at all (HTTP 401 on most protocols);
    * ``unknown``   -- a credential no environment holds (401);
    * ``forbidden`` -- a known key without the permission (403).
    """

    def __init__(self, kind: str, permission: Permission, message: str) -> None:
        super().__init__(message)
        self.kind, self.permission, self.message = kind, permission, message

    @property
    def authenticated(self) -> bool:
        return self.kind == "forbidden"


def check(key: ApiKey, need: Permission, action: str) -> ApiKey:
    """``key`` if it holds ``need``; `Refusal` (forbidden) otherwise. ``action`` names the operation for the message.

    A key let through also marks the request as acting for its environment, so its reads wait only for
    that environment's acknowledged rows (`apiary.store.read_scope`).
    """
    if need is Permission.PUBLIC or need in granted(key):
        read_scope.act_for(key.environment)
        return key
    raise Refusal("forbidden", need, f"this Apiary key of environment {key.environment!r} is ingest-only: it may send "
                  f"data but not {_VERB[need]} ({action}); use a key created without --ingest-only")


def resolve(credential: str | None, need: Permission, lookup: Callable[[str], ApiKey | None], action: str,
            where: str) -> ApiKey | None:
    """The key behind ``credential`` when it may do ``need``; None for a public operation; `Refusal` otherwise.

    ``where`` tells the user where the credential goes (``the X-Honeycomb-Team header`` ...).
    """
    if need is Permission.PUBLIC:
        return None
    if not credential:
        raise Refusal("missing", need, f"missing API key: send an Apiary key in {where}")
    key = lookup(credential)
    if key is None:
        raise Refusal("unknown", need, f"unknown API key in {where}: `apiary keys list` shows each environment's keys")
    return check(key, need, action)


_VERB = {Permission.INGEST: "send data", Permission.READ: "read data",
         Permission.CONFIGURE: "change configuration", Permission.PUBLIC: "connect"}


# -- exposure -------------------------------------------------------------------------------------

LOOPBACK, NETWORK = "loopback", "network"


def is_loopback(host: str) -> bool:
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def exposure(host: str, asked: str = "") -> str:
    """``network`` when bound beyond loopback or when asked for; ``loopback`` only when both allow it.

    Asking can only make the server stricter: ``--exposure loopback`` on 0.0.0.0 is still ``network``.
    """
    if asked not in ("", LOOPBACK, NETWORK):
        raise ValueError(f"exposure must be {LOOPBACK!r} or {NETWORK!r}, not {asked!r}")
    return NETWORK if asked == NETWORK or not is_loopback(host) else LOOPBACK


def daemon_host(host: str, exposure_: str, daemon_host_: str, xray_env: str) -> tuple[str | None, str]:
    """Where the X-Ray daemon may listen, or None and why it is off.

    The daemon's clients (the X-Ray SDKs) send UDP segments and sampling calls with no credential at
    all, so the daemon cannot ask for a key. Under loopback exposure only this machine reaches it. Under
    network exposure it is off unless the operator names both its address (``--xray-daemon-host``) and
    the one environment that accepts unauthenticated segments (``--xray-env``): an explicit opt-in.
    """
    if exposure_ == LOOPBACK:
        return daemon_host_ or host, ""
    if daemon_host_ and xray_env:
        return daemon_host_, ""
    return None, ("X-Ray daemon off: its SDK clients send no key, and this server is exposed to the network; "
                  "give --xray-daemon-host and --xray-env to open it for one environment")
