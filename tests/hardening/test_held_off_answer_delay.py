"""A held-off environment's refusal is answered only after the rest of its hold-off, at most a quarter second.

A sender that ignores Retry-After and sends again at once had each refusal parsed and answered at once:
two such senders made about 560 refusals a second and doubled every other environment's response times
(`bench/fairness.py`). Waiting before the answer slows such a sender to four requests a second per
connection. The wait is recorded, not timed: `asyncio.sleep` is replaced by a recorder, so the test
says how long the receiver chose to wait whatever the machine's load.
"""

from __future__ import annotations

import asyncio

import pytest
from starlette.requests import Request

from apiary.receivers import encoding
from apiary.receivers.body_budget import (HELD_OFF_ANSWER_DELAY_S, SCOPE_KEY, BodyAllowance, BodyBudget,
                                          EnvironmentOverShare)
from apiary.store import read_scope

MIB = 1024 * 1024


def _request(budget: BodyBudget, body: bytes) -> Request:
    scope = {"type": "http", "method": "POST", "path": "/v1/traces",
             "headers": [(b"content-length", str(len(body)).encode())], SCOPE_KEY: BodyAllowance(budget, 30.0)}
    sent = False

    async def receive() -> dict:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return Request(scope, receive)


def _read(budget: BodyBudget, env: str, waits: list[float], monkeypatch: pytest.MonkeyPatch) -> bytes:
    async def recorded_sleep(seconds: float) -> None:
        waits.append(seconds)

    async def run() -> bytes:
        monkeypatch.setattr(encoding.asyncio, "sleep", recorded_sleep)
        read_scope.act_for(env)
        return await encoding.read_body(_request(budget, b"x" * 100), MIB)

    return asyncio.run(run())


def test_a_held_off_environment_is_answered_after_the_rest_of_its_hold_off(monkeypatch: pytest.MonkeyPatch) -> None:
    budget = BodyBudget(64 * MIB, 32 * MIB)
    budget.hold_off("flooding", 5.0)
    waits: list[float] = []
    with pytest.raises(EnvironmentOverShare) as refused:
        _read(budget, "flooding", waits, monkeypatch)
    assert refused.value.retry_after == 5 and "not read" in str(refused.value)
    assert waits == [HELD_OFF_ANSWER_DELAY_S], "a long hold-off is waited for at most the cap"

    budget.hold_off("briefly", 0.1)
    waits.clear()
    with pytest.raises(EnvironmentOverShare):
        _read(budget, "briefly", waits, monkeypatch)
    assert len(waits) == 1 and 0 < waits[0] <= 0.1, "a short hold-off is waited for only what is left of it"


def test_other_environments_and_refusals_for_bytes_are_answered_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    budget = BodyBudget(64 * MIB, 32 * MIB)
    budget.hold_off("flooding", 5.0)
    waits: list[float] = []
    assert _read(budget, "calm", waits, monkeypatch) == b"x" * 100
    assert waits == []

    full = BodyBudget(64 * MIB, 32 * MIB)
    full.move_to(32 * MIB, "busy")  # its whole share held by bodies being read
    with pytest.raises(EnvironmentOverShare) as refused:
        _read(full, "busy", waits, monkeypatch)
    assert "APIARY_MAX_ENV_INFLIGHT_BYTES" in str(refused.value)
    assert waits == [], "a share of bytes in use frees itself as bodies finish: no reason to wait"
