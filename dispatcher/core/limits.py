"""Rate-limit maths, pure: limit parsing and the reference model of the shared limiter.

The limiter is an exact sliding log, not a refilling bucket. A token bucket of capacity B and
rate r admits B + r*W requests in a window of W seconds, so it must run below the limit to be
safe. A log of grant times admits a request only while every configured window, widened by a
send margin J, holds fewer than L grants: then any W-second stretch of *arrivals* at the
provider (each arrival at most J after its grant) holds at most L requests, and a backlog gets
L per W + J seconds, i.e. W / (W + J) of the limit (99.6 % of 60/minute with J = 0.25 s).

The Lua script in ``keys.py`` implements exactly ``SlidingLog.try_acquire``; a test runs
both side by side.
"""

from __future__ import annotations

import bisect
import math
import re
from dataclasses import dataclass, field
from typing import Annotated

from pydantic import AfterValidator

_UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
_LIMIT_RE = re.compile(r"^\s*(\d+)\s*/\s*(?:(second|minute|hour|day)|(\d+(?:\.\d+)?)s)\s*$")


@dataclass(frozen=True, order=True)
class Window:
    """At most ``limit`` requests in any ``seconds``-long stretch."""

    seconds: float
    limit: int

    @property
    def ms(self) -> int:
        return round(self.seconds * 1000)

    def label(self) -> str:
        for name, sec in _UNITS.items():
            if sec == self.seconds:
                return f"{self.limit}/{name}"
        return f"{self.limit}/{self.seconds:g}s"


def parse_limit(text: str) -> Window:
    """Parse ``"60/minute"`` or ``"100/5s"``; raise ValueError saying what was expected."""
    match = _LIMIT_RE.match(text)
    if not match:
        raise ValueError(
            f"limit {text!r}: expected 'N/second|minute|hour|day' or 'N/<seconds>s'"
        )
    limit = int(match.group(1))
    seconds = float(_UNITS[match.group(2)]) if match.group(2) else float(match.group(3))
    if limit < 1 or seconds <= 0:
        raise ValueError(f"limit {text!r}: N and the window must be positive")
    return Window(seconds=seconds, limit=limit)


def header_window_seconds(suffix: str) -> float | None:
    """Map an ``X-RateLimit-*-<suffix>`` header suffix to a window length in seconds."""
    unit = suffix.lower()
    if unit in _UNITS:
        return float(_UNITS[unit])
    match = re.fullmatch(r"(\d+(?:\.\d+)?)s", unit)
    return float(match.group(1)) if match else None


PACE_MAX_MS = 10_000  # windows this short are paced as well as capped
PACE_PARTS = 10


def pace_windows(windows: list[Window]) -> list[tuple[int, int]]:
    """(limit, ms) of the pace kept inside short windows: a tenth of the limit per tenth of
    the window. A backlog then goes out in small groups all through a second instead of one
    burst at its start, so requests do not queue behind each other at either end (which
    would make them later than the send margin allows) and a freed slot is reused as soon
    as the margin has passed. Windows longer than 10 s are not paced: a burst of a minute's
    limit is sent in a few milliseconds, a negligible share of the window."""
    return sorted({(math.ceil(w.limit / PACE_PARTS), w.ms // PACE_PARTS)
                   for w in windows if w.ms <= PACE_MAX_MS})


@dataclass
class SlidingLog:
    """Reference model of the Redis limiter (times in integer milliseconds)."""

    windows: list[Window]
    margin_ms: int = 0
    grants: list[int] = field(default_factory=list)
    pace: list[tuple[int, int]] = field(default_factory=list)

    def wait_ms(self, now: int) -> int:
        """0 when a request may be granted at ``now``, else how long until one may."""
        spans = [(w.limit, w.ms + self.margin_ms) for w in self.windows] + self.pace
        wait = 0
        for limit, span in spans:
            start = bisect.bisect_right(self.grants, now - span)
            count = len(self.grants) - start
            if count >= limit:
                oldest_needed = self.grants[start + count - limit]
                wait = max(wait, oldest_needed + span - now)
        return wait

    def try_acquire(self, now: int) -> int:
        """Grant (return 0) or say how long to wait; grants are recorded in time order."""
        wait = self.wait_ms(now)
        if wait == 0:
            self.grants.append(now)
            longest = max((w.ms for w in self.windows), default=0) + self.margin_ms
            cut = bisect.bisect_right(self.grants, now - longest)
            if cut:
                del self.grants[:cut]
        return wait


MARGIN_SHARE = 0.005    # of the shortest window: a floor under the margin that costs 0.5 %
MARGIN_SHARE_CAP_MS = 1000


def margin_ms(send_margin_s: float, windows: list[Window]) -> int:
    """The margin for one account: ``send_margin_s``, or 0.5 % of its shortest window when
    that is more (at most 1 s). Answers within a quarter of the margin need no move of their
    place in the log (margins.py): a busy worker answers in tens of milliseconds, so a minute
    window (300 ms) costs 0.5 % of its limit instead of a Redis write per request; a
    1-second window keeps ``send_margin_s``."""
    floor = send_margin_s * 1000
    if windows:
        floor = max(floor, min(min(w.ms for w in windows) * MARGIN_SHARE, MARGIN_SHARE_CAP_MS))
    return round(floor)


def max_in_any_window(times: list[float], seconds: float) -> int:
    """Most events in any half-open stretch (t - seconds, t]; for audits of a provider log."""
    ts = sorted(times)
    best = 0
    lo = 0
    for hi, instant in enumerate(ts):
        while ts[lo] <= instant - seconds:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def _check_limits(value: list[str]) -> list[str]:
    for item in value:
        parse_limit(item)
    return value


LimitList = Annotated[list[str], AfterValidator(_check_limits)]
"""Rate windows as written in configuration: ``["60/minute", "100/5s"]``."""
