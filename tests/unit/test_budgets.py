"""Budgets, pure: the budget text, billing by the increment, a live call's worst case."""

from __future__ import annotations

import pytest
from pydantic import ValidationError


@pytest.mark.parametrize(("text", "ok"), [("500/day", True), ("2.5/day", True), ("0/day", True),
                                          ("-5/day", False), ("5/week", False), ("5", False)])
def test_a_budget_is_n_per_day(text: str, ok: bool) -> None:
    from dispatcher.core.policy import CampaignConfig
    if ok:
        CampaignConfig(budget=text)
    else:
        with pytest.raises(ValidationError, match="expected 'N/day'"):
            CampaignConfig(budget=text)


def test_a_call_is_billed_by_the_increment() -> None:
    from dispatcher.core.budgets import MICRO, billed_micro, worst_micro
    assert billed_micro(61, 1.0, 60) == 2 * MICRO
    assert billed_micro(61, 1.0, 1) == round(61 / 60 * MICRO)
    assert billed_micro(None, 1.0, 60) == 0
    assert worst_micro(0.5, 600, 60) == 5 * MICRO


def test_a_reported_billed_duration_wins_over_the_own_rounding() -> None:
    from dispatcher.core.budgets import MICRO, call_cost_micro
    assert call_cost_micro(10, 30, 1.0, 60) == MICRO // 2  # the carrier's 30-s step
    assert call_cost_micro(10, None, 1.0, 60) == MICRO  # own rounding: a whole minute
    assert call_cost_micro(10, 0, 1.0, 60) == 0  # reported as free: free
    for junk in (float("nan"), float("inf"), -30.0):  # not a figure: own rounding
        assert call_cost_micro(10, junk, 1.0, 60) == MICRO


def test_both_dialects_and_the_webhook_read_the_billed_field() -> None:
    import json

    from dispatcher.providers.itellico import webhook
    from dispatcher.providers.itellico.adapter import normalise as itl
    from dispatcher.providers.telecho.adapter import normalise as tel
    call = {"status": "completed", "duration_seconds": 10, "billed_duration_seconds": 30}
    assert tel({**call, "call_id": "tel_call_1"}).billed_seconds == 30
    assert itl({**call, "id": "c1"}).billed_seconds == 30
    assert tel({"status": "completed", "call_id": "x"}).billed_seconds is None
    end = webhook.parse(json.dumps({"event_id": "e1", "event_type": "conversation.ended",
                                    "data": {"conversation_uuid": "c1", **call}}).encode())
    assert end is not None and itl(end.fields).billed_seconds == 30
