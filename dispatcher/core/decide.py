"""The decision core: what happens to a job next. Pure — the job, what Redis holds about it,
the policy and the time in; a decision out. The worker's executors only carry decisions out,
so every rule (expiry, scheduling, calling hours, retries, redials) lives here, once.

Times are epoch milliseconds.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from dispatcher.core.classify import Action, ProviderError
from dispatcher.core.jobs import Job
from dispatcher.core.model import (
    BlockReason,
    CallRecord,
    CallState,
    DueReason,
    JobState,
    Outcome,
    WaitReason,
)
from dispatcher.core.timing import Timing

MAX_CRASHES = 3  # a job the worker failed on this often gets a result (unless it was sending)
CRASH_ERROR = ProviderError(None, "internal_error", "the worker failed on this job")
RETRY_BEFORE_ANSWER = frozenset({"network_error", "provider_error"})
SYSTEM_ERRORS = frozenset({"agent_error", "unknown"})
ANSWERED = frozenset({"human", "machine"})


# -- decisions ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Ready:
    """Dial as soon as the provider's budget allows."""

    deadline_ms: int  # when waiting while ready must end (max_defer_s or expires_at)


@dataclass(frozen=True)
class Wait:
    reason: WaitReason
    until_ms: int
    detail: str = ""
    park: bool = False

    @property
    def place(self) -> Literal[JobState.DELAYED, JobState.PARKED]:
        if self.park:
            return JobState.PARKED
        return JobState.DELAYED


@dataclass(frozen=True)
class Finish:
    outcome: Outcome
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Dial:
    pass


@dataclass(frozen=True)
class Reconcile:
    pass


class Effect(enum.Enum):
    """What an error does to the provider as a whole (besides this job's next step)."""

    NONE = "none"
    COOLDOWN = "cooldown"
    HALT = "halt"
    SHRINK = "shrink"
    UNREACHABLE = "unreachable"  # counts toward opening the provider's circuit


@dataclass(frozen=True)
class Verdict:
    """The recipient's calling window at a moment: open (until when), closed (until when it
    opens), or a reason the job can never be called (``blocked``)."""

    open: bool
    until_ms: int | None  # open: when it closes; closed: when it opens
    text: str = ""
    blocked: BlockReason | None = None


class Policy(Protocol):
    """The call policy in effect for one job (its campaign's, else the defaults)."""

    def window(self, job: Job, t_ms: int, expires_ms: int | None) -> Verdict:
        """The recipient's calling window at ``t_ms`` (their zones are the policy's business:
        an unrestricted policy never needs them)."""
        ...
    def redial_after_s(self, answer_status: str, redials_done: int) -> float | None: ...


def _ms(seconds: float | None) -> int | None:
    return None if seconds is None else round(seconds * 1000)


# -- before a dial ----------------------------------------------------------------------------
def schedule(job: Job, pol: Policy, now: int, max_defer_ms: int
             ) -> Ready | Wait | Finish:
    """When may this job first be dialled? Expiry, not_before and the calling window."""
    exp = _ms(job.expires_at)
    if exp is not None and now >= exp:
        return Finish(Outcome.EXPIRED)
    start = max(now, _ms(job.not_before) or 0)
    verdict = pol.window(job, start, exp)
    if verdict.blocked is not None:
        return blocked(verdict)
    opens = start if verdict.open else int(verdict.until_ms or start)
    if opens > now:
        reason = WaitReason.WINDOW if opens > start else WaitReason.NOT_BEFORE
        return Wait(reason, opens, verdict.text if reason is WaitReason.WINDOW else "")
    deadline = now + max_defer_ms
    return Ready(min(deadline, exp) if exp is not None else deadline)


def blocked(verdict: Verdict) -> Finish:
    assert verdict.blocked is not None
    return Finish(Outcome.BLOCKED, {"reason": verdict.blocked.value, "error_message": verdict.text})


def intake(job: Job, pol: Policy, now: int, *, provider_known: bool, problem: str | None,
           max_defer_ms: int) -> Ready | Wait | Finish:
    """A job just read from the stream."""
    if not provider_known:
        return Wait(WaitReason.UNKNOWN_PROVIDER, now, park=True,
                    detail=f"no provider named '{job.provider}' is configured")
    if problem:
        return Finish(Outcome.INVALID, {"error_message": problem})
    return schedule(job, pol, now, max_defer_ms)


def at_grant(job: Job, pol: Policy, now: int, *, unsure: bool) -> Dial | Reconcile | Wait | Finish:
    """The moment of dialling: a call that may exist is looked up first; expiry and the
    calling window are checked again (a grant at 20:59:59.9 must not dial at 21:00:00.1)."""
    if unsure:
        return Reconcile()
    exp = _ms(job.expires_at)
    if exp is not None and now >= exp:
        return Finish(Outcome.EXPIRED)
    verdict = pol.window(job, now, exp)
    if verdict.blocked is not None:
        return blocked(verdict)
    if verdict.open:
        return Dial()
    return Wait(WaitReason.WINDOW, int(verdict.until_ms or now), verdict.text)


def refunded(attempts: int) -> int:
    """The attempt count once a dial that never reached the provider is given back."""
    return max(attempts - 1, 0)


def predial_failed(failures: int, timing: Timing, now: int, rng: random.Random,
                   detail: str) -> Wait:
    """The pre-dial hook could not answer, ``failures`` times in a row: ask again later."""
    delay = timing.retry(failures, "predial", None, rng)
    return Wait(WaitReason.PREDIAL, now + round(delay * 1000), detail)


@dataclass(frozen=True)
class CrashStep:
    next: Finish | Wait
    attempts: int
    unsure: bool  # the crash came while sending: the call may exist


def crashed(crashes: int, sending: bool, attempts: int, timing: Timing, now: int) -> CrashStep:
    """The worker failed on a job for the ``crashes``-th time: back off, or give it a result
    after a few. One that was sending waits for a look-up (its call may exist)."""
    if crashes >= MAX_CRASHES and not sending:
        return CrashStep(Finish(Outcome.EXHAUSTED, error_fields(CRASH_ERROR)), attempts, False)
    wait = Wait(WaitReason.CRASH, now + round(timing.max_delay_s * 1000))
    return CrashStep(wait, attempts if sending else refunded(attempts), sending)


# -- after a failed create ---------------------------------------------------------------------
@dataclass(frozen=True)
class ErrorStep:
    effect: Effect
    next: Finish | Wait | Reconcile
    attempts: int  # the job's attempt count from now on (deferrals for the provider refund one)


def on_error(action: Action, err: ProviderError, attempts: int, job_cap: int | None,
             timing: Timing, now: int, rng: random.Random) -> ErrorStep:
    """What a failed create means for the job. ``attempts`` counts the failed dial."""
    if action is Action.REJECT:
        return ErrorStep(Effect.NONE, Finish(Outcome.REJECTED, error_fields(err)), attempts)
    if action is Action.RETRY:
        return ErrorStep(Effect.NONE, retry(err, attempts, job_cap, timing, now, rng), attempts)
    if action is Action.RATE_LIMITED:
        delay = timing.cooldown(err.retry_after_s, attempts, rng)
        return ErrorStep(Effect.COOLDOWN,
                         Wait(WaitReason.RATE_LIMITED, now + round(delay * 1000)), attempts - 1)
    if action is Action.CONCURRENCY:
        delay = timing.concurrency(err.retry_after_s)
        return ErrorStep(Effect.SHRINK,
                         Wait(WaitReason.CONCURRENCY, now + round(delay * 1000)), attempts - 1)
    if action is Action.HALT:
        return ErrorStep(Effect.HALT, Wait(WaitReason.HALTED, now, park=True), attempts - 1)
    if action is Action.UNREACHABLE:
        delay = timing.retry(1, err.code, None, rng)
        return ErrorStep(Effect.UNREACHABLE, Wait(WaitReason.UNREACHABLE,
                                                  now + round(delay * 1000), err.message),
                         attempts - 1)
    return ErrorStep(Effect.NONE, Reconcile(), attempts)


def retry(err: ProviderError, attempts: int, job_cap: int | None, timing: Timing, now: int,
          rng: random.Random, calls: tuple[CallRecord, ...] | None = None) -> Finish | Wait:
    """Another attempt after backoff, or ``exhausted`` at the cap."""
    if attempts >= timing.attempt_cap(job_cap, err.code):
        fields: dict[str, Any] = {**error_fields(err)}
        if calls:
            fields["calls"] = calls
        return Finish(Outcome.EXHAUSTED, fields)
    delay = timing.retry(attempts, err.code, err.retry_after_s, rng)
    return Wait(WaitReason.RETRY, now + round(delay * 1000))


def error_fields(err: ProviderError) -> dict[str, Any]:
    return {"http_status": err.status, "error_code": err.code, "error_message": err.message}


# -- after a call ended ---------------------------------------------------------------------------
def record(call: CallState, started_ms: int | None) -> CallRecord:
    return CallRecord(call.call_id, started_ms, call.status, call.answer_status,
                      call.disconnection_reason, call.duration_seconds)


def ended_fields(call: CallState, calls: tuple[CallRecord, ...]) -> dict[str, Any]:
    return {"call_id": call.call_id, "call_status": call.status,
            "answer_status": call.answer_status,
            "disconnection_reason": call.disconnection_reason,
            "duration_seconds": call.duration_seconds, "calls": calls}


@dataclass(frozen=True)
class CallEnd:
    next: Finish | Wait
    attempts: int
    calls: tuple[CallRecord, ...]
    redials: int
    system_error: bool = False  # log and count it (agent_error, unknown, ...)
    shrink: bool = False         # the provider refused at this many live calls


def after_call(job: Job, call: CallState, calls: tuple[CallRecord, ...], attempts: int,
               redials: int, pol: Policy, timing: Timing, now: int,
               rng: random.Random) -> CallEnd:
    """A call reached its end: the result, a redial, or a retry (``calls`` ends with it)."""
    reason = call.disconnection_reason or ""
    answered = call.answer_status in ANSWERED
    if reason == "concurrency_limit":
        wait = Wait(WaitReason.CONCURRENCY, now + round(timing.concurrency(None) * 1000))
        return CallEnd(wait, attempts - 1, calls, redials, shrink=True)
    if reason in RETRY_BEFORE_ANSWER and not answered:
        err = ProviderError(None, reason, "call failed before answer")
        return CallEnd(retry(err, attempts, job.max_attempts, timing, now, rng, calls),
                       attempts, calls, redials)
    system = reason in SYSTEM_ERRORS or reason in RETRY_BEFORE_ANSWER
    redial = _redial(job, call, redials, pol, now)
    if redial is not None:
        return CallEnd(redial, attempts, calls, redials + 1, system_error=system)
    return CallEnd(Finish(Outcome.ENDED, ended_fields(call, calls)), attempts, calls, redials,
                   system_error=system)


def _redial(job: Job, call: CallState, redials: int, pol: Policy, now: int) -> Wait | None:
    after = pol.redial_after_s(call.answer_status, redials)
    if after is None:
        return None
    exp = _ms(job.expires_at)
    start = now + round(after * 1000)
    verdict = pol.window(job, start, exp)
    at = start if verdict.open else verdict.until_ms
    if verdict.blocked is not None or at is None or (exp is not None and at >= exp):
        return None  # no opening before the job expires: the call so far is the result
    return Wait(WaitReason.REDIAL, at, verdict.text)


def gave_up(call_id: str, calls: tuple[CallRecord, ...]) -> Finish:
    """The call's end was not learned within max_track_s."""
    unknown = CallState(call_id, "unknown", True, "unknown", None, None, None, None)
    return Finish(Outcome.ENDED, {**ended_fields(unknown, calls),
                                  "error_message": "call end not learned within max_track_s"})


# -- results that are due without a call ------------------------------------------------------
def due_result(fin: str, calls: tuple[CallRecord, ...], wait_reason: str, last_status: int | None,
               last_code: str | None, parse_error: Callable[[], str] | None = None) -> Finish:
    """The result of a job queued for one by a script (cancel, do-not-call, deadline, ...)."""
    kind, _, detail = fin.partition(":")
    if kind == DueReason.CANCELLED:
        if calls:  # it was dialled before (waiting for a redial): its calls are the result
            last = calls[-1]
            return Finish(Outcome.ENDED, {
                "call_id": last.call_id, "call_status": last.call_status,
                "answer_status": last.answer_status,
                "disconnection_reason": last.disconnection_reason,
                "duration_seconds": last.duration_seconds, "calls": calls})
        return Finish(Outcome.CANCELLED)
    if kind == DueReason.BLOCKED:
        # a job blocked before a redial (a revocation mid-call) keeps the calls it made
        return Finish(Outcome.BLOCKED, {"reason": detail or BlockReason.DNC.value,
                                        **({"calls": calls} if calls else {})})
    if kind == DueReason.EXPIRED:
        return Finish(Outcome.EXPIRED)
    if kind == DueReason.MAX_AGE:
        return Finish(Outcome.EXHAUSTED, {
            "http_status": last_status, "error_code": last_code or None,
            "reason": f"max_defer_s exceeded while waiting ({wait_reason or 'queued'})",
            **({"calls": calls} if calls else {})})
    if kind == DueReason.INVALID and parse_error is not None:
        return Finish(Outcome.INVALID, {"error_message": parse_error()})
    return Finish(Outcome.EXHAUSTED, {"http_status": None, "error_code": "internal_error",
                                      "error_message": f"no result rule for {fin!r}"})
