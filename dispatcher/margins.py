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

WINDOW_S = 30.0     # lags older than this are forgotten
MAX_MARGIN_S = 10.0  # the scripts keep this much extra log history


@dataclass
class LagMeter:
    """The largest grant-to-send lag seen in the last ``WINDOW_S`` seconds."""

    samples: deque[tuple[float, float]] = field(default_factory=deque)

    def add(self, now: float, lag_s: float) -> None:
        self.samples.append((now, max(0.0, lag_s)))
        self._expire(now)

    def _expire(self, now: float) -> None:
        while self.samples and self.samples[0][0] < now - WINDOW_S:
            self.samples.popleft()

    def margin_s(self, now: float) -> float:
        self._expire(now)
        return min(max((lag for _, lag in self.samples), default=0.0), MAX_MARGIN_S)


@dataclass
class SendClock:
    """Carried with a request (a context variable) from its grant to the transport."""

    granted_at: float
    meter: LagMeter

    def sent(self, now: float) -> None:
        self.meter.add(now, now - self.granted_at)


SENDING: contextvars.ContextVar[SendClock | None] = contextvars.ContextVar(
    "dispatcher_sending", default=None)
