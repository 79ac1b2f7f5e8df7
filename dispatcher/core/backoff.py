"""Backoff maths, pure: one function, jitter that never undercuts half the nominal delay."""

from __future__ import annotations

import random


def nominal_delay(attempt: int, base_s: float, max_s: float) -> float:
    """1, 2, 4, 8 … x base for attempts 1, 2, 3, 4 …, capped at ``max_s``."""
    exp = min(max(attempt, 1) - 1, 62)
    return float(min(max_s, base_s * (2**exp)))


def backoff_delay(attempt: int, base_s: float, max_s: float, rng: random.Random) -> float:
    """A delay in [nominal/2, nominal]: spread retries apart without retrying too early."""
    nominal = nominal_delay(attempt, base_s, max_s)
    return rng.uniform(nominal / 2, nominal)
