"""The decision core, branch by branch, on a fixed clock with a fake policy."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import pytest

from dispatcher.core import decide
from dispatcher.core.classify import Action, ProviderError
from dispatcher.core.decide import Dial, Effect, Finish, Ready, Reconcile, Verdict, Wait
from dispatcher.core.jobs import Job
from dispatcher.core.model import BlockReason, CallRecord, CallState, Outcome, WaitReason
from dispatcher.core.timing import Timing

NOW = 1_800_000_000_000  # ms
S = 1000
TIMING = Timing(base_delay_s=1.0, max_delay_s=30.0, max_attempts=3, max_defer_s=600.0)


@dataclass
class FakePolicy:
    """Open from ``opens`` (ms) until ``closes``; zones as given; redial rules by status."""

    zone: tuple[str, ...] = ("America/Chicago",)
    opens: int = 0
    closes: int | None = None
    never: bool = False
    redial: dict[str, tuple[float, int]] = field(default_factory=dict)

    def window(self, job: Job, t_ms: int, expires_ms: int | None) -> Verdict:
        if not self.zone:
            return Verdict(False, None, "no zone", BlockReason.NO_TIMEZONE)
        if self.never or (expires_ms is not None and self.opens >= expires_ms > t_ms):
            return Verdict(False, None, "never", BlockReason.WINDOW_NEVER_OPEN)
        if t_ms < self.opens:
            return Verdict(False, self.opens, "09:00 America/Chicago")
        if self.closes is not None and t_ms >= self.closes:
            return Verdict(False, None, "closed for good", BlockReason.WINDOW_NEVER_OPEN)
        return Verdict(True, self.closes)

    def redial_after_s(self, answer_status: str, redials_done: int) -> float | None:
        rule = self.redial.get(answer_status)
        return rule[0] if rule and redials_done < rule[1] else None


def job(**over: object) -> Job:
    base: dict[str, object] = {"id": "j1", "to": "+13125550100"}
    base.update(over)
    return Job(**base)  # type: ignore[arg-type]


T = NOW / 1000  # seconds, for job times

SCHEDULE = [
    ("ready now", job(), FakePolicy(), Ready(NOW + 600 * S)),
    ("ready, deadline capped by expiry", job(expires_at=T + 60), FakePolicy(), Ready(NOW + 60 * S)),
    ("expired", job(expires_at=T - 1), FakePolicy(), Finish(Outcome.EXPIRED)),
    ("not_before ahead", job(not_before=T + 30), FakePolicy(),
     Wait(WaitReason.NOT_BEFORE, NOW + 30 * S)),
    ("window closed", job(), FakePolicy(opens=NOW + 3600 * S),
     Wait(WaitReason.WINDOW, NOW + 3600 * S, "09:00 America/Chicago")),
    ("window opens after not_before", job(not_before=T + 30), FakePolicy(opens=NOW + 90 * S),
     Wait(WaitReason.WINDOW, NOW + 90 * S, "09:00 America/Chicago")),
    ("window open at not_before", job(not_before=T + 300), FakePolicy(opens=NOW + 90 * S),
     Wait(WaitReason.NOT_BEFORE, NOW + 300 * S)),
    ("no zone", job(), FakePolicy(zone=()), "blocked:no_timezone"),
    ("never opens before expiry", job(expires_at=T + 60), FakePolicy(opens=NOW + 3600 * S),
     "blocked:window_never_open"),
]


@pytest.mark.parametrize(("name", "j", "pol", "want"), SCHEDULE, ids=[s[0] for s in SCHEDULE])
def test_intake_schedule(name: str, j: Job, pol: FakePolicy, want: object) -> None:
    got = decide.intake(j, pol, NOW, provider_known=True, problem=None,
                        max_defer_ms=600 * S)
    if isinstance(want, str):
        reason = want.split(":")[1]
        assert isinstance(got, Finish) and got.outcome is Outcome.BLOCKED
        assert got.fields["reason"] == reason
    else:
        assert got == want


def test_intake_parks_an_unknown_provider_and_refuses_a_job_the_adapter_cannot_send() -> None:
    got = decide.intake(job(provider="eu"), FakePolicy(), NOW, provider_known=False,
                        problem=None, max_defer_ms=1)
    assert isinstance(got, Wait) and got.park and got.reason is WaitReason.UNKNOWN_PROVIDER
    got = decide.intake(job(), FakePolicy(), NOW, provider_known=True,
                        problem="from: required", max_defer_ms=1)
    assert got == Finish(Outcome.INVALID, {"error_message": "from: required"})


AT_GRANT = [
    ("dial", job(), FakePolicy(), False, Dial()),
    ("a call may exist", job(), FakePolicy(opens=NOW + S), True, Reconcile()),
    ("expired since", job(expires_at=T), FakePolicy(), False, Finish(Outcome.EXPIRED)),
    ("window closed since the grant", job(), FakePolicy(opens=NOW + 5 * S), False,
     Wait(WaitReason.WINDOW, NOW + 5 * S, "09:00 America/Chicago")),
    ("window closed for good", job(), FakePolicy(closes=NOW), False, "blocked"),
]


@pytest.mark.parametrize(("name", "j", "pol", "unsure", "want"), AT_GRANT,
                         ids=[a[0] for a in AT_GRANT])
def test_at_grant(name: str, j: Job, pol: FakePolicy, unsure: bool, want: object) -> None:
    got = decide.at_grant(j, pol, NOW, unsure=unsure)
    if want == "blocked":
        assert isinstance(got, Finish) and got.outcome is Outcome.BLOCKED
    else:
        assert got == want


ERR = ProviderError(500, "internal_error", "boom")
ON_ERROR = [
    (Action.REJECT, 1, None, Effect.NONE, "rejected", 1),
    (Action.RETRY, 1, None, Effect.NONE, WaitReason.RETRY, 1),
    (Action.RETRY, 3, None, Effect.NONE, "exhausted", 3),
    (Action.RETRY, 3, 5, Effect.NONE, WaitReason.RETRY, 3),  # the job's own cap wins
    (Action.RATE_LIMITED, 2, None, Effect.COOLDOWN, WaitReason.RATE_LIMITED, 1),
    (Action.CONCURRENCY, 2, None, Effect.SHRINK, WaitReason.CONCURRENCY, 1),
    (Action.HALT, 1, None, Effect.HALT, WaitReason.HALTED, 0),
    (Action.RECONCILE, 1, None, Effect.NONE, "reconcile", 1),
    (Action.UNREACHABLE, 1, None, Effect.UNREACHABLE, WaitReason.UNREACHABLE, 0),
]


@pytest.mark.parametrize(("action", "attempts", "cap", "effect", "want", "left"), ON_ERROR)
def test_on_error(action: Action, attempts: int, cap: int | None, effect: Effect,
                  want: object, left: int) -> None:
    step = decide.on_error(action, ERR, attempts, cap, TIMING, NOW, random.Random(1))
    assert step.effect is effect and step.attempts == left
    nxt = step.next
    if want == "rejected":
        assert isinstance(nxt, Finish) and nxt.outcome is Outcome.REJECTED
        assert nxt.fields["http_status"] == 500
    elif want == "exhausted":
        assert isinstance(nxt, Finish) and nxt.outcome is Outcome.EXHAUSTED
    elif want == "reconcile":
        assert isinstance(nxt, Reconcile)
    else:
        assert isinstance(nxt, Wait) and nxt.reason is want and nxt.until_ms >= NOW
        assert nxt.park is (want is WaitReason.HALTED)


def test_retry_waits_at_least_the_providers_retry_after() -> None:
    err = ProviderError(503, "x", retry_after_s=20.0)
    w = decide.retry(err, 1, None, TIMING, NOW, random.Random(3))
    assert isinstance(w, Wait) and w.until_ms >= NOW + 20 * S


def call(answer: str, reason: str, cid: str = "c1") -> CallState:
    return CallState(cid, "completed", True, answer, reason, 12.0, "j1", None)


CALLS = (CallRecord("c1", NOW - 60 * S),)
AFTER = [
    ("answered", call("human", "user_hangup"), FakePolicy(), "ended"),
    ("busy, no rule", call("user_busy", "dial_busy"), FakePolicy(), "ended"),
    ("busy, redial", call("user_busy", "dial_busy"),
     FakePolicy(redial={"user_busy": (600.0, 2)}), WaitReason.REDIAL),
    ("busy, redial waits for the window", call("user_busy", "dial_busy"),
     FakePolicy(opens=NOW + 7200 * S, redial={"user_busy": (600.0, 2)}), WaitReason.REDIAL),
    ("network error before answer", call("unknown", "network_error"), FakePolicy(),
     WaitReason.RETRY),
    ("provider refused the call", call("unknown", "concurrency_limit"), FakePolicy(),
     WaitReason.CONCURRENCY),
    ("agent error ends the job", call("human", "agent_error"), FakePolicy(), "ended"),
]


@pytest.mark.parametrize(("name", "c", "pol", "want"), AFTER, ids=[a[0] for a in AFTER])
def test_after_call(name: str, c: CallState, pol: FakePolicy, want: object) -> None:
    end = decide.after_call(job(), c, CALLS, 1, 0, pol, TIMING, NOW, random.Random(2))
    if want == "ended":
        assert isinstance(end.next, Finish) and end.next.outcome is Outcome.ENDED
        assert end.next.fields["calls"] == CALLS
        assert end.system_error is (c.disconnection_reason == "agent_error")
    else:
        assert isinstance(end.next, Wait) and end.next.reason is want
    if want is WaitReason.REDIAL:
        assert end.redials == 1 and end.next.until_ms == max(NOW + 600 * S, pol.opens)
    if want is WaitReason.CONCURRENCY:
        assert end.attempts == 0 and end.shrink


def test_redials_stop_at_the_rules_max() -> None:
    pol = FakePolicy(redial={"user_busy": (60.0, 2)})
    end = decide.after_call(job(), call("user_busy", "dial_busy"), CALLS, 1, 2, pol, TIMING,
                            NOW, random.Random(0))
    assert isinstance(end.next, Finish) and end.redials == 2


def test_no_redial_when_the_window_opens_only_after_expiry() -> None:
    pol = FakePolicy(opens=NOW + 7200 * S, redial={"user_busy": (60.0, 2)})
    end = decide.after_call(job(expires_at=T + 3600), call("user_busy", "dial_busy"), CALLS,
                            1, 0, pol, TIMING, NOW, random.Random(0))
    assert isinstance(end.next, Finish) and end.next.outcome is Outcome.ENDED


DUE = [
    ("cancelled", (), Outcome.CANCELLED),
    ("cancelled", CALLS, Outcome.ENDED),  # waiting for a redial: its calls are the result
    ("blocked:dnc", (), Outcome.BLOCKED),
    ("expired", (), Outcome.EXPIRED),
    ("max_age", (), Outcome.EXHAUSTED),
    ("nonsense", (), Outcome.EXHAUSTED),
]


@pytest.mark.parametrize(("fin", "calls", "outcome"), DUE)
def test_due_result(fin: str, calls: tuple[CallRecord, ...], outcome: Outcome) -> None:
    got = decide.due_result(fin, calls, "rate_limited", 429, "rate_limit_per_minute")
    assert got.outcome is outcome
    if fin == "max_age":
        assert "max_defer_s" in got.fields["reason"] and got.fields["http_status"] == 429
    if fin == "blocked:dnc":
        assert got.fields["reason"] == "dnc"


# -- crashes, the pre-dial retry, refunds ------------------------------------------------------
def test_a_refund_gives_one_attempt_back_and_never_goes_below_zero() -> None:
    assert [decide.refunded(a) for a in (0, 1, 2, 9)] == [0, 0, 1, 8]


@pytest.mark.parametrize("crashes", range(1, decide.MAX_CRASHES))
def test_a_crash_below_the_cap_backs_off_with_the_attempt_refunded(crashes: int) -> None:
    step = decide.crashed(crashes, False, 2, TIMING, NOW)
    assert step.next == Wait(WaitReason.CRASH, NOW + 30 * S)
    assert step.attempts == 1 and not step.unsure


def test_the_crash_cap_gives_an_exhausted_result() -> None:
    step = decide.crashed(decide.MAX_CRASHES, False, 2, TIMING, NOW)
    assert isinstance(step.next, Finish) and step.next.outcome is Outcome.EXHAUSTED
    assert step.next.fields["error_code"] == "internal_error" and step.attempts == 2


def test_a_crash_while_sending_waits_for_a_look_up_whatever_the_count() -> None:
    step = decide.crashed(decide.MAX_CRASHES + 5, True, 2, TIMING, NOW)
    assert isinstance(step.next, Wait) and step.unsure and step.attempts == 2


def test_a_pre_dial_hook_that_fails_again_waits_longer() -> None:
    waits = [decide.predial_failed(n, TIMING, NOW, random.Random(1), "timeout").until_ms - NOW
             for n in (1, 2, 3, 4)]
    nominal = [1 * S, 2 * S, 4 * S, 8 * S]
    assert all(n / 2 <= w <= n for w, n in zip(waits, nominal, strict=True))
    assert decide.predial_failed(1, TIMING, NOW, random.Random(1), "timeout").reason \
        is WaitReason.PREDIAL
