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
