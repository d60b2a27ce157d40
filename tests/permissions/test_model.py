"""The permission model's own rules: exposure only ever gets stricter, and the daemon's listening policy."""

from __future__ import annotations

import contextvars
from datetime import datetime, timezone
from typing import Callable

import pytest

from apiary.permissions import (Permission, Refusal, Undeclared, check, daemon_host, exposure, needs, permission_of,
                                resolve)
from apiary.store.meta import ApiKey

FULL = ApiKey(1, "dev", "abcd", True, datetime.now(timezone.utc))
INGEST = ApiKey(2, "dev", "efgh", False, datetime.now(timezone.utc))


@pytest.mark.parametrize("host, asked, result", [
    ("127.0.0.1", "", "loopback"), ("::1", "", "loopback"), ("localhost", "", "loopback"),
    ("127.0.0.1", "network", "network"), ("0.0.0.0", "", "network"), ("192.168.1.4", "", "network"),
    ("0.0.0.0", "loopback", "network"),  # asking cannot open a server bound beyond loopback
])
def test_exposure_follows_the_host_and_can_only_be_made_stricter(host: str, asked: str, result: str) -> None:
    assert exposure(host, asked) == result


def test_an_unknown_exposure_is_an_error() -> None:
    with pytest.raises(ValueError, match="exposure must be"):
        exposure("127.0.0.1", "public")


def test_the_daemon_listens_beyond_this_machine_only_when_named_with_its_environment() -> None:
    assert daemon_host("127.0.0.1", "loopback", "", "") == ("127.0.0.1", "")
    host, why = daemon_host("0.0.0.0", "network", "", "")
    assert host is None and "--xray-daemon-host" in why
    assert daemon_host("0.0.0.0", "network", "10.0.0.5", "")[0] is None  # which environment would it feed?
    assert daemon_host("0.0.0.0", "network", "10.0.0.5", "dev") == ("10.0.0.5", "")


def _in_a_context_of_its_own(test: Callable[[], None]) -> Callable[[], None]:
    """The check notes the key's environment for the request's reads (``read_scope``), a context variable: each
    request has a context of its own, and so does each of these tests, or the note would outlive it in this
    process (a later test's reads would then act for ``dev``)."""
    def run() -> None:
        contextvars.copy_context().run(test)
    run.__name__, run.__doc__ = test.__name__, test.__doc__
    return run


@_in_a_context_of_its_own
def test_ingest_only_keys_hold_ingest_alone() -> None:
    for need in Permission:
        assert check(FULL, need, "x") is FULL
    assert check(INGEST, Permission.INGEST, "x") is INGEST
    for need in (Permission.READ, Permission.CONFIGURE):
        with pytest.raises(Refusal) as exc:
            check(INGEST, need, "logs:GetLogEvents")
        assert exc.value.kind == "forbidden" and "logs:GetLogEvents" in exc.value.message


@_in_a_context_of_its_own
def test_resolve_tells_missing_from_unknown_keys() -> None:
    lookup = {"full": FULL}.get
    with pytest.raises(Refusal) as missing:
        resolve(None, Permission.INGEST, lookup, "x", "the header")
    with pytest.raises(Refusal) as unknown:
        resolve("nope", Permission.INGEST, lookup, "x", "the header")
    assert (missing.value.kind, unknown.value.kind) == ("missing", "unknown")
    assert resolve(None, Permission.PUBLIC, lookup, "x", "the header") is None
    assert resolve("full", Permission.CONFIGURE, lookup, "x", "the header") is FULL


def test_an_operation_that_declares_nothing_is_refused() -> None:
    async def undeclared() -> None: ...

    with pytest.raises(Undeclared):
        permission_of(undeclared)
    assert permission_of(needs(Permission.READ)(undeclared)) is Permission.READ
