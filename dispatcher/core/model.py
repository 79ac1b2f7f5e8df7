"""The product's vocabulary: job states, outcomes, wait reasons, and the typed result.

Everything that crosses into Redis or the results stream is one of these values, so a state
or reason is spelled in one place (the Lua scripts use the same strings).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any


class JobState(enum.StrEnum):
    NEW = "new"              # claimed, not yet placed
    QUEUED = "queued"        # in a ready list, waiting for a grant
    DELAYED = "delayed"      # waiting until a time (retry, not_before, window, cap, ...)
    PARKED = "parked"        # its provider is halted or not configured
    DIALING = "dialing"      # granted; a worker is starting (or reconciling) its call
    TRACKING = "tracking"    # its call is live
    FINISHING = "finishing"  # a worker must write its result
    DONE = "done"
    ORPHANED = "orphaned"    # lost its payload; cannot be sent


class Outcome(enum.StrEnum):
    ENDED = "ended"
    STARTED = "started"
    REJECTED = "rejected"
    EXHAUSTED = "exhausted"
    EXPIRED = "expired"
    INVALID = "invalid"
    CANCELLED = "cancelled"
    BLOCKED = "blocked"


class WaitReason(enum.StrEnum):
    """Why a job waits; those in ``EXCUSED`` do not count toward ``retry.max_defer_s``."""

    NOT_BEFORE = "not_before"
    WINDOW = "window"                  # the recipient's calling hours are closed
    REDIAL = "redial"                  # the next call of a redial rule
    HALTED = "halted"                  # parked: the provider is halted
    UNKNOWN_PROVIDER = "unknown_provider"  # parked: the provider is not configured
    RETRY = "retry"                    # backoff after a failure (an attempt was spent)
    RATE_LIMITED = "rate_limited"      # the provider answered 429
    CONCURRENCY = "concurrency_limit"  # the provider refused another live call
    NUMBER_CAP = "number_cap"          # policy.max_calls_per_number
    SUBJECT_CAP = "subject_cap"        # policy.max_calls_per_subject (and the region's rule)
    REGISTRY_STALE = "registry_stale"  # a do-not-call registry covering it is missing or old
    CALLER_ID_CAP = "caller_id_cap"    # every caller ID of the provider's pool is at a cap
    BUDGET = "budget"                  # its campaign's spend is at its budget for the day
    PREDIAL = "predial"                # the pre-dial hook could not answer
    RECONCILE = "reconcile"            # a call may exist: look it up first
    UNREACHABLE = "unreachable"        # the provider could not be reached (not an attempt)
    CRASH = "crash"                    # the worker failed on this job
    REPLICAS = "replica_wait"          # too few Redis replicas acknowledged its grant


# a stale registry holds jobs fail closed: they wait for a fresh copy, not expire meanwhile
EXCUSED = frozenset({WaitReason.NOT_BEFORE, WaitReason.WINDOW, WaitReason.REDIAL,
                     WaitReason.HALTED, WaitReason.UNKNOWN_PROVIDER, WaitReason.REGISTRY_STALE})


class DueReason(enum.StrEnum):
    """Why a job's result is due without a dial (a finishing job's ``fin``; ``blocked`` and
    ``invalid`` may carry a detail after a colon)."""

    INTAKE = "intake"        # decided at intake (expired, invalid for its provider, blocked)
    INVALID = "invalid"
    CANCELLED = "cancelled"
    BLOCKED = "blocked"
    EXPIRED = "expired"
    MAX_AGE = "max_age"      # waited longer than max_defer_s


class BlockReason(enum.StrEnum):
    DNC = "dnc"
    PREDIAL = "predial"
    NO_TIMEZONE = "no_timezone"
    WINDOW_NEVER_OPEN = "window_never_open"
    NO_CONSENT = "no_consent"          # policy.require_consent: no consent covers the campaign
    REGION = "region"                  # the recipient's region rule never opens before expiry


class Priority(enum.StrEnum):
    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"


ANSWER_STATUSES = ("human", "machine", "user_rejected", "user_unavailable", "user_busy",
                   "unknown")


def iso(ms: int | float | None) -> str | None:
    """Epoch milliseconds as RFC 3339 UTC with millisecond precision."""
    if ms is None:
        return None
    if type(ms) is int and ms >= 0:  # every result has a few: the second's text is reused
        sec, milli = divmod(ms, 1000)
        return f"{_second(sec)}.{milli:03d}Z"
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


@lru_cache(maxsize=64)
def _second(sec: int) -> str:
    return datetime.fromtimestamp(sec, UTC).replace(tzinfo=None).isoformat(timespec="seconds")


@dataclass(frozen=True)
class CallRecord:
    """One call a job made, as listed in a result's ``calls``."""

    call_id: str
    started_ms: int | None
    call_status: str | None = None
    answer_status: str | None = None
    disconnection_reason: str | None = None
    duration_seconds: float | None = None
    from_: str | None = None  # the caller ID the call went out from

    def to_json(self) -> dict[str, Any]:
        return {"call_id": self.call_id, "started_at": iso(self.started_ms),
                "from": self.from_, "call_status": self.call_status,
                "answer_status": self.answer_status,
                "disconnection_reason": self.disconnection_reason,
                "duration_seconds": self.duration_seconds}

    def stored(self) -> dict[str, Any]:
        """The form kept in the job's hash (times in epoch ms)."""
        return {"call_id": self.call_id, "started_ms": self.started_ms, "from": self.from_,
                "call_status": self.call_status, "answer_status": self.answer_status,
                "disconnection_reason": self.disconnection_reason,
                "duration_seconds": self.duration_seconds}


@dataclass(frozen=True)
class CallState:
    """A provider's call as the dispatcher reads it (either dialect, normalised)."""

    call_id: str
    status: str
    terminal: bool
    answer_status: str
    disconnection_reason: str | None
    duration_seconds: float | None
    correlation: str | None
    created_at: float | None
    call_n: int = 1  # the call's number within its job
    billed_seconds: float | None = None  # only when the provider reports it


# Fields each outcome always carries (None when unknown), then those it carries when known.
_ALWAYS: dict[Outcome, tuple[str, ...]] = {
    Outcome.ENDED: ("call_id", "call_status", "answer_status", "disconnection_reason",
                    "duration_seconds", "calls"),
    Outcome.STARTED: ("call_id",),
    Outcome.REJECTED: ("http_status", "error_code", "error_message"),
    Outcome.EXHAUSTED: ("http_status", "error_code"),
    Outcome.EXPIRED: (),
    Outcome.INVALID: ("error_message",),
    Outcome.CANCELLED: (),
    Outcome.BLOCKED: ("reason",),
}
_OPTIONAL = ("error_message", "reason", "calls", "entry_id")


@dataclass(slots=True)  # built per job: a frozen __init__ costs 5x
class Result:
    """One result entry; ``to_json`` gives exactly the documented shape for its outcome."""

    outcome: Outcome
    job_id: str | None
    attempts: int
    provider: str
    metadata: dict[str, Any]
    enqueued_ms: int | None
    finished_ms: int
    campaign: str | None = None
    call_id: str | None = None
    call_status: str | None = None
    answer_status: str | None = None
    disconnection_reason: str | None = None
    duration_seconds: float | None = None
    calls: tuple[CallRecord, ...] | None = None
    http_status: int | None = None
    error_code: str | None = None
    error_message: str | None = None
    reason: str | None = None
    entry_id: str | None = None  # invalid: the stream entry that carried the payload
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "job_id": self.job_id, "outcome": self.outcome.value, "attempts": self.attempts,
            "provider": self.provider, "metadata": self.metadata,
            "enqueued_at": iso(self.enqueued_ms), "finished_at": iso(self.finished_ms)}
        if self.campaign:
            out["campaign"] = self.campaign
        always = _ALWAYS[self.outcome]
        for name in always:
            out[name] = self._value(name)
        for name in _OPTIONAL:
            if name not in always and getattr(self, name) is not None:
                out[name] = self._value(name)
        return out

    def _value(self, name: str) -> Any:
        value = getattr(self, name)
        if name == "calls":
            return [c.to_json() for c in value or ()]
        return value
