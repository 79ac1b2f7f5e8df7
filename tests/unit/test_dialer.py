"""The dialer's executor logic on the recording store double: one test per exit."""

from __future__ import annotations

from typing import Any

import pytest

from dispatcher.core.classify import ProviderError
from dispatcher.core.model import CallState, JobState, Outcome, WaitReason
from dispatcher.engine import predial
from dispatcher.engine.dialer import Dialer, InFlight
from dispatcher.store.protocol import JobField, Why
from dispatcher.store.types import Admit
from dispatcher.testing import RecordingStore
from tests.unit.executors import (
    NOW_MS,
    FakeAdapter,
    FixedClock,
    granted,
    make_runtime,
    result_of,
)

pytestmark = pytest.mark.usefixtures("clock")


def setup(*starts: str | ProviderError, **sections: dict[str, Any]
          ) -> tuple[RecordingStore, FakeAdapter, Dialer]:
    store, adapter = RecordingStore(), FakeAdapter()
    adapter.starts.extend(starts)
    return store, adapter, Dialer(make_runtime(store, adapter, **sections))


def flight(**kw: Any) -> InFlight:
    """A flight granted just now (the fixed clock's monotonic time)."""
    return InFlight(granted(**kw), NOW_MS / 1000)


async def test_a_created_call_goes_into_tracking() -> None:
    store, adapter, dialer = setup("call_1")
    await dialer.run(flight())
    assert adapter.dialled == [("j1", 1)]
    [args] = store.args_of("track_one")
    assert args["item"]["call_id"] == "call_1" and args["item"]["dtok"] == "tok1"
    assert store.methods() == ["track_one"]


async def test_a_rejected_create_is_the_result() -> None:
    store, _, dialer = setup(ProviderError(400, "invalid_request", "bad"))
    await dialer.run(flight())
    item = result_of(store)
    assert item.outcome == Outcome.REJECTED and item.grant_token == "tok1"
    assert item.result["http_status"] == 400


async def test_a_failed_call_is_retried_after_backoff_as_an_attempt() -> None:
    store, _, dialer = setup(ProviderError(400, "outbound_call_failed"))
    await dialer.run(flight())
    [args] = store.args_of("defer")
    assert args["to"] is JobState.DELAYED and args["reason"] == WaitReason.RETRY
    assert args["fields"][JobField.ATTEMPTS] == 1 and args["until_ms"] > NOW_MS
    assert not args["refund_rate"]


async def test_the_last_attempt_is_exhausted() -> None:
    store, _, dialer = setup(ProviderError(400, "outbound_call_failed"))
    await dialer.run(flight(attempts=8))
    assert result_of(store).outcome == Outcome.EXHAUSTED


async def test_a_429_cools_the_provider_down_and_refunds_the_attempt() -> None:
    store, _, dialer = setup(ProviderError(429, "rate_limited", retry_after_s=2.0))
    await dialer.run(flight(attempts=3))
    [cool] = store.args_of("set_cooldown")
    assert cool["ms"] >= 2000
    [args] = store.args_of("defer")
    assert args["reason"] == WaitReason.RATE_LIMITED
    assert args["fields"][JobField.ATTEMPTS] == 2


async def test_a_concurrency_refusal_shrinks_the_slots_and_refunds_the_attempt() -> None:
    store, _, dialer = setup(ProviderError(409, "concurrency_limit"))
    await dialer.run(flight(attempts=2))
    assert store.args_of("shrink_slots")
    [args] = store.args_of("defer")
    assert args["reason"] == WaitReason.CONCURRENCY
    assert args["fields"][JobField.ATTEMPTS] == 1


async def test_an_account_error_halts_the_provider_and_parks_the_job() -> None:
    store, _, dialer = setup(ProviderError(401, "unauthorized"))
    await dialer.run(flight())
    assert store.args_of("halt")[0]["provider"] == "p"
    [args] = store.args_of("defer")
    assert args["to"] is JobState.PARKED and args["reason"] == WaitReason.HALTED


async def test_an_unreachable_provider_is_not_an_attempt_and_frees_the_number() -> None:
    store, _, dialer = setup(ProviderError(None, "connection_refused", sent=False))
    await dialer.run(flight())
    [args] = store.args_of("defer")
    assert args["reason"] == WaitReason.UNREACHABLE
    assert args["fields"][JobField.ATTEMPTS] == 0 and args["refund_number"]


def _call(call_id: str) -> CallState:
    return CallState(call_id, "in_progress", False, "unknown", None, None, None, None)


async def test_an_ambiguous_answer_adopts_the_call_found() -> None:
    store, adapter, dialer = setup(ProviderError(503, "service_unavailable"))
    adapter.found.append([_call("call_9")])
    await dialer.run(flight())
    [args] = store.args_of("track_one")
    assert args["item"]["call_id"] == "call_9"
    assert not store.args_of("defer")


async def test_an_ambiguous_answer_with_no_call_found_retries_as_an_attempt() -> None:
    store, adapter, dialer = setup(ProviderError(503, "service_unavailable"))
    adapter.found.append([])
    await dialer.run(flight())
    [args] = store.args_of("defer")
    assert args["reason"] == WaitReason.RETRY and args["fields"][JobField.ATTEMPTS] == 1
    assert adapter.dialled == [("j1", 1)]


async def test_a_failed_lookup_never_dials_and_stays_unsure() -> None:
    store, adapter, dialer = setup(ProviderError(503, "service_unavailable"))
    store.answer("admit", Admit(False, 0, Why.HALTED))  # the look-up may not be sent
    await dialer.run(flight())
    [args] = store.args_of("defer")
    assert args["reason"] == WaitReason.RECONCILE and args["fields"][JobField.UNSURE] == "1"
    assert adapter.dialled == [("j1", 1)]


async def test_an_unsure_job_found_not_to_exist_is_dialled_with_the_same_call_number() -> None:
    store, adapter, dialer = setup("call_2")
    adapter.found.append([])
    await dialer.run(flight(unsure=True, call_n=2))
    assert adapter.dialled == [("j1", 2)]
    assert store.args_of("track_one")[0]["item"]["call_id"] == "call_2"


def _hook(monkeypatch: pytest.MonkeyPatch, answer: predial.HookAnswer | Exception) -> None:
    async def ask(*_: object) -> predial.HookAnswer:
        if isinstance(answer, Exception):
            raise answer
        return answer
    monkeypatch.setattr(predial, "ask", ask)


HOOK: dict[str, dict[str, Any]] = {"policy": {"predial_url": "http://hook.example/check"}}


async def test_a_hook_that_denies_blocks_the_job(monkeypatch: pytest.MonkeyPatch) -> None:
    _hook(monkeypatch, predial.HookAnswer(False, "opted out"))
    store, adapter, dialer = setup(**HOOK)
    await dialer.run(flight(attempts=2))
    await dialer.runtime.close()  # the hook's HTTP session
    item = result_of(store)
    assert item.outcome == Outcome.BLOCKED and item.result["attempts"] == 1
    assert adapter.dialled == []


async def test_a_hook_that_fails_waits_and_counts_its_failures(
        monkeypatch: pytest.MonkeyPatch) -> None:
    _hook(monkeypatch, predial.HookFailed("timed out"))
    store, adapter, dialer = setup(**HOOK)
    await dialer.run(flight(hook_failures=2))
    await dialer.runtime.close()
    [args] = store.args_of("defer")
    assert args["reason"] == WaitReason.PREDIAL and args["fields"][JobField.HOOK_FAILURES] == 3
    assert args["fields"][JobField.ATTEMPTS] == 0 and args["refund_rate"]
    assert adapter.dialled == []


async def test_a_late_grant_that_was_lost_sends_nothing(clock: FixedClock) -> None:
    store, adapter, dialer = setup("call_1")
    store.answer("regrant", Admit(False, 0, Why.LOST))
    await dialer.run(InFlight(granted(), clock.monotonic() - 60))
    assert store.methods() == ["regrant"] and adapter.dialled == []


async def test_a_late_grant_of_a_halted_provider_is_parked(clock: FixedClock) -> None:
    store, adapter, dialer = setup("call_1")
    store.answer("regrant", Admit(False, 0, Why.HALTED))
    await dialer.run(InFlight(granted(attempts=2), clock.monotonic() - 60))
    [args] = store.args_of("defer")
    assert args["to"] is JobState.PARKED and args["fields"][JobField.ATTEMPTS] == 1
    assert adapter.dialled == []


async def test_a_late_grant_granted_again_is_sent(clock: FixedClock) -> None:
    store, adapter, dialer = setup("call_1")
    await dialer.run(InFlight(granted(), clock.monotonic() - 60))
    assert store.methods() == ["regrant", "track_one"] and adapter.dialled == [("j1", 1)]


async def test_a_crash_backs_off_then_the_cap_gives_a_result() -> None:
    store, _, dialer = setup()
    store.answer("bump", 1, 3)
    await dialer.crashed(flight(attempts=2))
    [args] = store.args_of("defer")
    assert args["reason"] == WaitReason.CRASH and args["fields"][JobField.ATTEMPTS] == 1
    await dialer.crashed(flight(attempts=2))
    assert result_of(store).outcome == Outcome.EXHAUSTED


async def test_a_crash_while_sending_waits_for_a_look_up_whatever_the_count() -> None:
    store, _, dialer = setup()
    store.answer("bump", 5)
    fl = flight(attempts=2)
    fl.sending = True
    await dialer.crashed(fl)
    [args] = store.args_of("defer")
    assert args["fields"][JobField.UNSURE] == "1" and args["fields"][JobField.ATTEMPTS] == 2
    assert not args["refund_rate"]


async def test_shutdown_hands_a_dial_that_never_started_back() -> None:
    store, _, dialer = setup()
    await dialer.hand_back(flight(attempts=3, call_n=3))
    [args] = store.args_of("defer")
    assert args["to"] is JobState.QUEUED and args["grant_token"] == "tok1"
    assert args["fields"] == {JobField.ATTEMPTS: 2, JobField.CALL_NUMBER: 2}
    assert args["refund_rate"] and args["refund_number"]


async def test_a_crash_while_an_unsure_job_is_looked_up_keeps_it_unsure() -> None:
    """Its call may exist (a takeover, a failover): the next grant looks it up again, never
    dials it as a fresh attempt (a second call to the person)."""
    store, _, dialer = setup()
    store.answer("bump", 1)
    await dialer.crashed(flight(unsure=True, attempts=1, call_n=1))
    [args] = store.args_of("defer")
    assert args["fields"][JobField.UNSURE] == "1" and args["fields"][JobField.ATTEMPTS] == 1
    assert not args["refund_rate"] and not args["refund_number"]


async def test_shutdown_hands_an_unsure_job_back_without_refunding_its_call_number() -> None:
    store, _, dialer = setup()
    await dialer.hand_back(flight(unsure=True, attempts=1, call_n=2))
    [args] = store.args_of("defer")
    assert JobField.CALL_NUMBER not in args["fields"] and JobField.ATTEMPTS not in args["fields"]
