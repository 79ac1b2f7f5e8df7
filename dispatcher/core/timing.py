"""Every delay the dispatcher waits, from one place: retries, cooldowns, concurrency waits,
polls, lookups, halt probes and reconciliation. Pure: configuration and randomness in,
seconds out; the maths of exponential backoff lives in ``backoff``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from dispatcher.core.backoff import backoff_delay, nominal_delay

COOLDOWN_JITTER_S = 0.25
CONCURRENCY_WAIT_S = 2.0
SLOT_SHRINK_S = 60.0
LOOKUP_RETRY_S = 0.2
LOOKUP_429_MIN_S = 1.0
LOOKUP_SKEW_S = 60.0
CALL_RECORD_EXTRA_S = 86400.0  # call ids and webhook ends outlive tracking by a day
CANARY_LEASE_S = 60.0
SETTLE_EXTRA_S = 1.0
# a grant older than this is confirmed (still this worker's) right before its request leaves:
# a takeover reconciles settle = request timeout + SETTLE_EXTRA_S after the latest grant, so
# a request sent within SETTLE_EXTRA_S of it has been answered or timed out by then
OWNED_FOR_S = SETTLE_EXTRA_S
REPLICA_RETRY_S = 1.0  # a grant too few replicas acknowledged: its jobs are granted again then
DORMANT_AFTER_S = 60.0  # a job due later than this after it arrives sleeps packed till then


RESTART_BASE_S = 0.5
RESTART_MAX_S = 10.0


def restart_delay(failures: int) -> float:
    """A worker loop that failed (or Redis not there at start) ``failures`` times in a row
    tries again after 0.5, 1, 2 ... up to 10 s (no jitter: one process, one loop)."""
    return nominal_delay(failures, RESTART_BASE_S, RESTART_MAX_S)


@dataclass(frozen=True)
class CodeRule:
    """Retry settings for one provider error code (``[retry.codes.<code>]``)."""

    base_delay_s: float | None = None
    max_delay_s: float | None = None
    max_attempts: int | None = None


@dataclass(frozen=True)
class Timing:
    base_delay_s: float = 1.0
    max_delay_s: float = 30.0
    max_attempts: int = 8
    max_defer_s: float = 86400.0
    halt_probe_s: float = 30.0
    halt_probe_max_s: float = 600.0
    poll_schedule_s: tuple[float, ...] = (5.0, 10.0, 20.0, 30.0)
    webhook_poll_s: float = 60.0
    max_track_s: float = 4 * 3600.0
    codes: dict[str, CodeRule] = field(default_factory=dict)

    def attempt_cap(self, job_cap: int | None, code: str = "") -> int:
        """A job's own cap wins, then the error code's, then the configured one."""
        if job_cap is not None:
            return job_cap
        rule = self.codes.get(code)
        return rule.max_attempts if rule and rule.max_attempts else self.max_attempts

    def retry(self, attempt: int, code: str, retry_after_s: float | None,
              rng: random.Random) -> float:
        """Backoff after a failed attempt, never sooner than the provider asked."""
        rule = self.codes.get(code) or CodeRule()
        base = rule.base_delay_s or self.base_delay_s
        cap = rule.max_delay_s or self.max_delay_s
        return max(backoff_delay(attempt, base, cap, rng), retry_after_s or 0.0)

    def cooldown(self, retry_after_s: float | None, attempt: int, rng: random.Random) -> float:
        """A 429 pauses every worker: Retry-After, else backoff, plus a little jitter."""
        base = retry_after_s
        if base is None:
            base = backoff_delay(max(attempt, 1), self.base_delay_s, self.max_delay_s, rng)
        return base + rng.uniform(0, COOLDOWN_JITTER_S)

    def concurrency(self, retry_after_s: float | None) -> float:
        return max(retry_after_s or 0.0, CONCURRENCY_WAIT_S)

    def poll(self, visits: int) -> float:
        """Seconds until the next poll of a call visited ``visits`` times (0: first poll)."""
        sched = self.poll_schedule_s
        return sched[min(max(visits, 0), len(sched) - 1)]

    def lookup_retry(self, status: int | None, retry_after_s: float | None) -> float:
        if status == 429:
            return max(LOOKUP_429_MIN_S, retry_after_s or LOOKUP_429_MIN_S)
        return LOOKUP_RETRY_S

    def settle(self, request_timeout_s: float) -> float:
        """How long after a dial its request can no longer be on its way."""
        return request_timeout_s + SETTLE_EXTRA_S

    def call_ttl_s(self) -> int:
        return int(self.max_track_s + CALL_RECORD_EXTRA_S)

    def halt_probe_ms(self) -> tuple[int, int]:
        return round(self.halt_probe_s * 1000), round(self.halt_probe_max_s * 1000)
