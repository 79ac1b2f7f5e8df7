"""Caller-ID pools as an operator sees them (``dispatcher callerid list|rest|restore``): each
caller ID's calls, answer rate over its recent calls, flag and rest."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from dispatcher.core.callerids import CallerIdPool
from dispatcher.store import Store
from dispatcher.store.callerids import CallerIdHealth


async def health(store: Store, provider: str, pool: CallerIdPool) -> list[CallerIdHealth]:
    return await store.caller_id_health(provider, pool.keys())


def to_json(pool: CallerIdPool, items: Sequence[CallerIdHealth]) -> list[dict[str, Any]]:
    numbers = {n.key: n.number for n in pool.numbers}
    return [{"caller_id": h.caller_id, "number": numbers.get(h.caller_id), "calls": h.calls,
             "answered": h.answered, "recent_calls": h.recent,
             "answer_rate": h.answer_rate, "flagged_since_ms": h.flagged_since_ms,
             "rested": h.rested} for h in items]


def setup_words(pool: CallerIdPool) -> str:
    """How the pool is set up: selection, flag threshold, whether flagged ones rest."""
    flag = (f"flagged below {pool.flag_answer_rate:.0%} answered over the last "
            f"{pool.flag_min_calls} calls" if pool.flag_answer_rate else "no flagging")
    return (f"selection {pool.selection}, {flag}"
            f"{', flagged ones rested' if pool.rest_flagged else ''}")


def render(provider: str, pool: CallerIdPool, items: Sequence[CallerIdHealth]) -> str:
    numbers = {n.key: n.number for n in pool.numbers}
    lines = [f"provider {provider}: {len(items)} caller IDs, {setup_words(pool)}",
             f"  {'caller id':<22} {'number':<16} {'calls':>7} {'answered':>8} "
             f"{'rate (recent)':>14}  state"]
    for health in items:
        rate = "-" if health.answer_rate is None else f"{health.answer_rate:.0%} of {health.recent}"
        state = []
        if health.flagged_since_ms is not None:
            stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(health.flagged_since_ms / 1000))
            state.append(f"flagged since {stamp}")
        if health.rested:
            state.append("rested")
        number = numbers.get(health.caller_id, "")
        lines.append(f"  {health.caller_id:<22} {number:<16} {health.calls:>7} "
                     f"{health.answered:>8} {rate:>14}  {', '.join(state) or 'in use'}")
    return "\n".join(lines)
