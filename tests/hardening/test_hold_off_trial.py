"""When an environment's hold-off ends, one request of it is read (its trial); the others wait for its answer.

Without the trial, every sender of a flood had its next wide body read and decoded as soon as the hold-off
ended, and all but one were then refused by the store again: decode work, on the same cores as every other
environment's requests, spent only to answer 429 (`bench/fairness.py`). The budget is driven here as the
receivers drive it: a request's allowance is charged to its environment before its body is read, and
released once it is answered.
"""

from __future__ import annotations

import time

import pytest

from apiary.receivers.body_budget import BodyAllowance, BodyBudget, EnvironmentOverShare

MIB = 1024 * 1024


def _budget_past_a_hold_off(env: str) -> BodyBudget:
    budget = BodyBudget(64 * MIB, 32 * MIB)
    budget.hold_off(env, 0.01)
    time.sleep(0.02)
    return budget


def _request(budget: BodyBudget, env: str) -> BodyAllowance:
    allowance = BodyAllowance(budget, 30.0)
    allowance.charge_to(env)
    allowance.take(2 * MIB, 2 * MIB)
    return allowance


def test_after_a_hold_off_one_request_is_read_and_the_others_are_refused_unread_until_it_is_answered() -> None:
    budget = _budget_past_a_hold_off("flooding")
    trial = _request(budget, "flooding")
    with pytest.raises(EnvironmentOverShare) as refused:
        _request(budget, "flooding")
    assert "not read" in str(refused.value) and refused.value.retry_after == 1
    assert refused.value.held_off_s > 0, "refused as held off, so its answer is delayed like one"
    trial.take(MIB, 3 * MIB)  # the trial itself reads on
    calm = _request(budget, "calm")  # another environment is not concerned
    calm.release()

    trial.release()  # answered, and the store did not hold the environment off again
    again = [_request(budget, "flooding") for _ in range(3)]
    for allowance in again:
        allowance.release()


def test_a_trial_the_store_refuses_again_starts_a_new_hold_off() -> None:
    budget = _budget_past_a_hold_off("flooding")
    trial = _request(budget, "flooding")
    budget.hold_off("flooding", 5.0)  # what `append_spans` does when the store refuses its batch
    trial.release()
    with pytest.raises(EnvironmentOverShare) as refused:
        _request(budget, "flooding")
    assert refused.value.retry_after == 5


def test_a_request_refused_while_another_is_the_trial_does_not_end_it() -> None:
    budget = _budget_past_a_hold_off("flooding")
    trial = _request(budget, "flooding")
    refused = BodyAllowance(budget, 30.0)
    with pytest.raises(EnvironmentOverShare):
        refused.charge_to("flooding")
    refused.release()  # the middleware releases every request's allowance, refused ones too
    with pytest.raises(EnvironmentOverShare):
        _request(budget, "flooding")
    trial.release()
    _request(budget, "flooding").release()


def test_a_trial_refused_for_its_environments_bytes_leaves_the_next_request_to_be_the_trial() -> None:
    budget = _budget_past_a_hold_off("flooding")
    budget.move_to(32 * MIB, "flooding")  # the environment's whole share held by bodies still being read
    crowded = BodyAllowance(budget, 30.0)
    crowded.take(MIB, MIB)
    with pytest.raises(EnvironmentOverShare) as refused:
        crowded.charge_to("flooding")
    assert "APIARY_MAX_ENV_INFLIGHT_BYTES" in str(refused.value)
    crowded.release()
    budget.give_back(32 * MIB, "flooding")
    _request(budget, "flooding").release()
