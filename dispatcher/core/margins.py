"""When a request was really counted: the measured part of the send margin.

The limiter grants a request at time g and counts it in every window of length W + M. The
provider counts it on arrival, or later still when a burst queues on its side (tens of
milliseconds for a hundred requests), and a request sent into a freed slot one window later is
counted at once: a place in the log at the grant time is not enough. The provider has counted
a request by the time its answer is back, so a request answered later than a quarter of the
margin after its grant moves its own place in the log to that moment (one Redis call, long
before its slot could be reused); quicker ones are covered by the margin itself. A request
still unanswered half a window after its grant has its place moved to now, and again every
half window (the pacer's keeper), so a provider that counts it late never finds its slot
given again. Only when a move fails (the place is gone, Redis is away) or comes after the slot
may have been reused (a stalled worker) does the lag go to the meter, whose largest recent
value widens every worker's margin (published by the heartbeat). Pure: the clock is passed in.
"""

from __future__ import annotations

import contextvars
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

HORIZON_EXTRA_S = 5.0  # a lag outlives its window by this much (heartbeats publish it)
MAX_MARGIN_S = 10.0   # the scripts keep this much extra log history


def horizon_s(longest_window_s: float) -> float:
    """How long a lag must be remembered: a grant's slot is reused one window later, and the
    margin then must still cover how late that grant's request left (an hour's window
    included: a slow start must not let the next hour's first requests arrive early), plus
    a few heartbeats, which carry the lag to the other workers. No longer: a slow first
    request (a new connection) would otherwise widen a 1-second window for half a minute."""
    return longest_window_s + HORIZON_EXTRA_S


@dataclass
class LagMeter:
    """The largest grant-to-answer lag seen in the last ``horizon_s`` seconds, kept as one
    maximum per second (an hour's memory is at most 3,600 numbers)."""

    horizon_s: float = HORIZON_EXTRA_S
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


@dataclass(eq=False)  # one per request: compared and hashed by identity
class SendClock:
    """Carried with a request (a context variable) from its grant to its answer.

    A request answered later than ``report_s`` after its grant reports its lag (``report``:
    the grant's place ``tok`` in the provider's log and how far to move it),
    which moves that one place later instead of widening every grant's margin; a quicker one
    is only measured. A request still unanswered long after its grant is ``kept``: its place
    moves to now, so it stays in the window until the provider may have counted it (the
    answer then moves it by the rest). Once answered, nothing more: a second request made
    under the same grant moves nothing twice.
    """

    granted_at: float
    meter: LagMeter
    tok: str = ""
    report_s: float = math.inf
    report: Callable[[str, float], None] | None = None
    done: bool = False
    moved_s: float = 0.0  # how far the place has been moved already
    watch: set[SendClock] | None = None  # the requests in flight that may need keeping

    def sending(self) -> None:
        if self.watch is not None and not self.done:
            self.watch.add(self)

    def answered(self, now: float) -> None:
        if self.done:
            return
        self.done = True
        if self.watch is not None:
            self.watch.discard(self)
        lag = now - self.granted_at
        if (lag > self.report_s or self.moved_s) and self.tok and self.report is not None:
            self.report(self.tok, lag - self.moved_s)
        else:
            self.meter.add(now, lag)

    def keep(self, now: float) -> None:
        if self.done or not self.tok or self.report is None:
            return
        lag = now - self.granted_at
        self.report(self.tok, lag - self.moved_s)
        self.moved_s = lag


SENDING: contextvars.ContextVar[SendClock | None] = contextvars.ContextVar(
    "dispatcher_sending", default=None)
