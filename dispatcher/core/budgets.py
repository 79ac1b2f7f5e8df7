"""Spend budgets, pure: what a call costs, a live call's worst case, and the budget day.

Money is counted in millionths of the configured unit (integers, so Redis can add them
exactly). A campaign's day runs midnight to midnight in its ``budget_timezone``.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

from pydantic import AfterValidator

MICRO = 1_000_000
_BUDGET_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*day\s*$")


def parse_budget(text: str) -> int:
    """``"500/day"`` -> the budget in millionths; ValueError saying what was expected."""
    match = _BUDGET_RE.match(text)
    if not match:
        raise ValueError(f"budget {text!r}: expected 'N/day' with N a number >= 0 "
                         "(e.g. '500/day')")
    return round(float(match.group(1)) * MICRO)


def _check_budget(value: str) -> str:
    parse_budget(value)
    return value


BudgetText = Annotated[str, AfterValidator(_check_budget)]


def billed_micro(duration_s: float | None, price_per_minute: float, increment_s: int) -> int:
    """What an ended call costs: its duration rounded up to the billing increment."""
    if not duration_s or duration_s <= 0:
        return 0
    billed_s = math.ceil(duration_s / increment_s) * increment_s
    return round(billed_s / 60 * price_per_minute * MICRO)


def call_cost_micro(duration_s: float | None, reported_billed_s: float | None,
                    price_per_minute: float, increment_s: int) -> int:
    """An ended call's cost: the billed seconds the provider reported when it did (a usable
    number), else the duration rounded up to the configured increment."""
    if reported_billed_s is not None and math.isfinite(reported_billed_s) \
            and reported_billed_s >= 0:
        return round(reported_billed_s / 60 * price_per_minute * MICRO)
    return billed_micro(duration_s, price_per_minute, increment_s)


def worst_micro(price_per_minute: float, max_call_s: float, increment_s: int) -> int:
    """A live call's worst case: as long as a call can last, billed."""
    return billed_micro(max_call_s, price_per_minute, increment_s)


def budget_day(now_ms: int, tz: str) -> tuple[str, int]:
    """The day ``now_ms`` falls in (``"2026-12-07"``) and when the next one starts (ms)."""
    zone = ZoneInfo(tz)
    local = datetime.fromtimestamp(now_ms / 1000, zone)
    nxt = datetime.combine(local.date() + timedelta(days=1), datetime.min.time(), zone)
    return local.date().isoformat(), round(nxt.timestamp() * 1000)
