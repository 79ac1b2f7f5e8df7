"""The simulator's state, free of HTTP: exact sliding windows per key, planned call lifecycles."""

from __future__ import annotations

import bisect
import math
import random
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from dispatcher.core.limits import Window, parse_limit
from dispatcher.simulator.config import CallSpec

HUMAN_REASONS = ("user_hangup", "agent_hangup", "call_transfer", "max_duration", "inactivity")
ERROR_REASONS = ("network_error", "provider_error", "agent_error", "unknown")
_CALL_N = re.compile(r"[1-9][0-9]{0,8}")
NOT_CONNECTED = {"user_busy": "dial_busy", "user_unavailable": "dial_no_answer",
                 "user_rejected": "dial_rejected", "unknown": "dial_failed"}


class RateWindows:
    """Exact sliding windows: a request at t is admitted while every (t - W, t] holds < L."""

    def __init__(self, limits: list[str]):
        self.windows: list[Window] = sorted(parse_limit(x) for x in limits)
        self.times: list[float] = []

    def _count(self, window: Window, now: float) -> tuple[int, int]:
        start = bisect.bisect_right(self.times, now - window.seconds)
        return len(self.times) - start, start

    def check(self, now: float) -> tuple[Window, float] | None:
        """The breached window with the longest wait, or None when a request may pass."""
        worst: tuple[Window, float] | None = None
        for window in self.windows:
            count, start = self._count(window, now)
            if count >= window.limit:
                wait = self.times[start + count - window.limit] + window.seconds - now
                if worst is None or wait >= worst[1]:
                    worst = (window, wait)
        return worst

    def admit(self, now: float) -> None:
        bisect.insort(self.times, now)
        longest = self.windows[-1].seconds if self.windows else 0
        cut = bisect.bisect_right(self.times, now - longest)
        if cut > 1000:
            del self.times[:cut]

    def headers(self, now: float) -> dict[str, str]:
        out = {}
        for window in self.windows:
            count, start = self._count(window, now)
            suffix = {60: "Minute", 3600: "Hour", 1: "Second", 86400: "Day"}.get(
                int(window.seconds) if window.seconds.is_integer() else -1, f"{window.seconds:g}s")
            reset = self.times[start] + window.seconds - now if count else 0.0
            out[f"X-RateLimit-Limit-{suffix}"] = str(window.limit)
            out[f"X-RateLimit-Remaining-{suffix}"] = str(max(0, window.limit - count))
            out[f"X-RateLimit-Reset-{suffix}"] = str(math.ceil(max(0.0, reset)))
        return out


@dataclass
class Call:
    """One call with its whole future decided at creation (ground truth for checks)."""

    id: str
    dialect: str
    account: str
    key: str
    to: str
    from_: str
    agent_id: str | None
    correlation: str | None
    metadata: dict[str, Any]
    created: float
    answer: str          # canonical answer status (seed list)
    reason: str          # disconnection reason
    answered_at: float | None
    ended_at: float
    webhooks_sent: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    call_n: int = 1      # the call's number within its job (from the correlation data)
    billing_increment_s: int = 60  # the account's billing step (a started step is billed)
    report_billed: bool = False    # the call object names its billed seconds (see config)

    def live(self, now: float) -> bool:
        return now < self.ended_at

    def duration(self) -> float:
        return round(self.ended_at - self.answered_at, 3) if self.answered_at else 0.0

    def billed_seconds(self) -> int:
        """What the carrier bills: the talk time rounded up to the account's step."""
        talk = self.duration()
        step = self.billing_increment_s
        return math.ceil(talk / step) * step if talk > 0 else 0

    def telecho_status(self, now: float) -> str:
        if now < self.ended_at:
            if self.answered_at is not None and now >= self.answered_at:
                return "in_progress"
            return "ringing" if now > self.created + 0.2 else "initiated"
        if self.answer in ("human", "machine"):
            return "failed" if self.reason in ERROR_REASONS else "completed"
        return {"user_busy": "busy", "user_unavailable": "no_answer"}.get(self.answer, "failed")

    def telecho_answer(self) -> str:
        """What a TelEcho client can know: answered_by, or busy / no_answer."""
        if self.answer in ("human", "machine"):
            return self.answer
        return {"user_busy": "user_busy", "user_unavailable": "user_unavailable"}.get(
            self.answer, "unknown")

    def itellico_status(self, now: float) -> str:
        if now < self.ended_at:
            return "in_progress"
        if self.reason == "call_transfer":
            return "transferred"
        if self.answer in ("human", "machine") and self.reason not in ERROR_REASONS:
            return "completed"
        return "failed"

    def render(self, now: float, base: dict[str, Any] | None = None) -> dict[str, Any]:
        ended = now >= self.ended_at
        iso = _iso
        started = self.answered_at if self.answered_at and now >= self.answered_at else None
        if self.dialect == "telecho":
            out = {"call_id": self.id, "status": self.telecho_status(now),
                   "answered_by": self.answer if self.answer in ("human", "machine")
                   and self.answered_at is not None and now >= self.answered_at else None,
                   "destination_number": self.to, "phone_number": self.from_,
                   "metadata": self.metadata, "created_at": iso(self.created),
                   **self._end_fields(started, ended)}
        else:
            waiting = self.answered_at is None or now < self.answered_at
            answer = self.answer if ended or not waiting else "waiting"
            out = {"id": self.id, "type": "phone", "status": self.itellico_status(now),
                   "created": iso(self.created), "modified": iso(min(now, self.ended_at)),
                   "direction": "outbound", "answer_status": answer,
                   "agent_id": self.agent_id, "from_number": self.from_, "to_number": self.to,
                   "external_id": self.correlation, **self._end_fields(started, ended)}
        if base:
            out.update(base)
        return out

    def _end_fields(self, started: float | None, ended: bool) -> dict[str, Any]:
        """The fields both dialects share, filled once the call ended."""
        out = {"started_at": _iso(started), "ended_at": _iso(self.ended_at) if ended else None,
               "duration_seconds": self.duration() if ended else None,
               "disconnection_reason": self.reason if ended else None}
        if self.report_billed:
            out["billed_duration_seconds"] = self.billed_seconds() if ended else None
        return out

    def truth(self) -> dict[str, Any]:
        answer = self.telecho_answer() if self.dialect == "telecho" else self.answer
        return {"call_id": self.id, "correlation": self.correlation, "call_n": self.call_n,
                "to": self.to,
                "dialect": self.dialect, "answer_status": answer,
                "disconnection_reason": self.reason, "duration_seconds": self.duration(),
                "billed_seconds": self.billed_seconds(), "created": self.created,
                "ended_at": self.ended_at}


def _iso(when: float | None) -> str | None:
    if when is None:
        return None
    return datetime.fromtimestamp(when, UTC).isoformat().replace("+00:00", "Z")


def counted_fault(rule: str, hits: int) -> str | None:
    """The fault kind of ``"kind"`` (always) or ``"kind*N"`` (the first N hits), or None.

    ``hits`` is how many requests this rule has already seen.
    """
    kind, star, limit = rule.partition("*")
    if not star or hits < int(limit):
        return kind
    return None


def itellico_call_n(external_id: str | None) -> int:
    """The call number in ``<job id>~<n>``: 1 without a suffix, 0 when the suffix is no n >= 1.

    0 is never a valid call number, so a malformed suffix stands out in the audit log.
    """
    if external_id is None or "~" not in external_id:
        return 1
    tail = external_id.rpartition("~")[2]
    return int(tail) if _CALL_N.fullmatch(tail) else 0


def telecho_call_n(metadata: dict[str, Any]) -> int:
    """``metadata.dispatcher_call``: 1 when absent, 0 unless it is an integer >= 1."""
    if "dispatcher_call" not in metadata:
        return 1
    value = metadata["dispatcher_call"]
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 1 else 0


def plan_call(spec: CallSpec, rng: random.Random, now: float, to: str,
              concurrency_refused: bool = False) -> tuple[str, str, float | None, float]:
    """Decide answer status, disconnection reason, answer time and end time."""
    if concurrency_refused:
        return "unknown", "concurrency_limit", None, now
    scripted = spec.outcome_by_number.get(to)
    if scripted:
        answer, _, reason = scripted.partition(":")
    else:
        answers = list(spec.answer_mix)
        answer = rng.choices(answers, weights=[spec.answer_mix[a] for a in answers])[0]
        reason = ""
    ring = rng.uniform(*spec.ring_s)
    if answer in ("human", "machine"):
        talk = rng.uniform(*spec.talk_s)
        if not reason:
            if rng.random() < spec.error_reason_p:
                reason = rng.choice(ERROR_REASONS)
            else:
                reason = "voicemail" if answer == "machine" else rng.choice(HUMAN_REASONS)
        return answer, reason, now + ring, now + ring + talk
    if not reason:
        reason = NOT_CONNECTED.get(answer, "dial_failed")
    return answer, reason, None, now + ring


def new_call_id(dialect: str, rng: random.Random) -> str:
    if dialect == "telecho":
        return f"tel_call_{rng.getrandbits(64):016x}"
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))
