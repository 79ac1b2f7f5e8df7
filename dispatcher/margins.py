"""How late requests really leave: the measured part of the send margin.

The limiter grants a request at time g and counts it in every window of length W + M: that
keeps the provider's own windows (of length W, counted on arrival) under the limit as long as
every request leaves within M of its grant. A large fixed M is wasteful (a 250 ms margin
costs a 1-second window 20 % of its limit), so M is small (``send_margin_s``, 20 ms) and
the dialer keeps requests within it: one that would leave later than 3/4 of it after its grant
takes a fresh grant first (dialer.py). What a request can still lose after that check (a
stall while it is written, a slow regrant) is measured here: each worker records the lag from
its grant to the moment the request's headers are written, and the margin every worker uses
is the larger of the floor and the largest lag any live worker has seen recently. Pure: the
clock is passed in.
"""

from __future__ import annotations

import contextvars
from collections import deque
from dataclasses import dataclass, field

MIN_HORIZON_S = 30.0  # lags are remembered at least this long
MAX_MARGIN_S = 10.0   # the scripts keep this much extra log history


def horizon_s(longest_window_s: float) -> float:
    """How long a lag must be remembered: a grant's slot is reused one window later, and the
    margin then must still cover how late that grant's request left (an hour's window
    included: a slow start must not let the next hour's first requests arrive early)."""
    return max(MIN_HORIZON_S, longest_window_s + 1.0)


@dataclass
class LagMeter:
    """The largest grant-to-send lag seen in the last ``horizon_s`` seconds, kept as one
    maximum per second (an hour's memory is at most 3,600 numbers)."""

    horizon_s: float = MIN_HORIZON_S
    buckets: deque[tuple[int, float]] = field(default_factory=deque)

    def add(self, now: float, lag_s: float) -> None:
        sec, lag = int(now), max(0.0, lag_s)
        if self.buckets and self.buckets[-1][0] == sec:
            if lag > self.buckets[-1][1]:
                self.buckets[-1] = (sec, lag)
        else:
            self.buckets.append((sec, lag))
        self._expire(now)

    def _expire(self, now: float) -> None:
        while self.buckets and self.buckets[0][0] + 1 < now - self.horizon_s:
            self.buckets.popleft()

    def margin_s(self, now: float) -> float:
        self._expire(now)
        return min(max((lag for _, lag in self.buckets), default=0.0), MAX_MARGIN_S)


@dataclass
class SendClock:
    """Carried with a request (a context variable) from its grant to the transport."""

    granted_at: float
    meter: LagMeter

    def sent(self, now: float) -> None:
        self.meter.add(now, now - self.granted_at)


SENDING: contextvars.ContextVar[SendClock | None] = contextvars.ContextVar(
    "dispatcher_sending", default=None)
