"""The tracker's executor logic on the recording store double: one test per way a visit
ends."""

from __future__ import annotations

from typing import Any

import pytest

from dispatcher.core.classify import ProviderError
from dispatcher.core.model import CallState, JobState, Outcome, WaitReason
from dispatcher.engine.tracker import Tracker
from dispatcher.store.protocol import JobField, Why
from dispatcher.store.types import Admit, JobView
from dispatcher.testing import RecordingStore
from tests.unit.executors import NOW_MS, FakeAdapter, make_runtime, payload, result_of

pytestmark = pytest.mark.usefixtures("clock")


def setup(*polls: CallState | ProviderError, **sections: dict[str, Any]
          ) -> tuple[RecordingStore, Tracker]:
    store, adapter = RecordingStore(), FakeAdapter()
    adapter.polls.extend(polls)
    return store, Tracker(make_runtime(store, adapter, **sections))


def live(provider: str = "p", tracked_ms: int = 60_000, state: str = JobState.TRACKING
         ) -> JobView:
    fields = {JobField.STATE: state, JobField.RAW: payload(provider=provider),
              JobField.PROVIDER: provider, JobField.CALL_ID: "call_1",
              JobField.ATTEMPTS: "1", JobField.FIRST_SEEN: str(NOW_MS - tracked_ms - 1000),
              JobField.TRACK_MS: str(NOW_MS - tracked_ms), JobField.VISITS: "1",
              JobField.REDIALS: "0", JobField.CALLS: "[]"}
    return JobView("j1", {str(k): str(v) for k, v in fields.items()})


def ended(answer: str = "human", reason: str = "user_hangup") -> CallState:
    return CallState("call_1", "ended", True, answer, reason, 42.0, None, None)


async def test_a_call_that_ended_is_the_result() -> None:
    store, tracker = setup(ended())
    await tracker.visit(live())
    item = result_of(store)
    assert item.outcome == Outcome.ENDED and item.result["answer_status"] == "human"
    assert item.result["calls"][0]["call_id"] == "call_1"


async def test_a_call_still_live_is_visited_again_after_the_poll_interval() -> None:
    store, tracker = setup(CallState("call_1", "in_progress", False, "unknown", None, None,
                                     None, None))
    await tracker.visit(live())
    [args] = store.args_of("revisit")
    assert args["items"][0]["delay"] == 10_000  # the second poll_schedule_s step


async def test_an_unanswered_call_is_redialled_by_the_redial_rule() -> None:
    store, tracker = setup(ended("user_unavailable", "no_answer"),
                           policy={"redial": {"user_unavailable": {"after": "2h", "max": 1}}})
    await tracker.visit(live())
    [args] = store.args_of("defer")
    assert args["to"] is JobState.DELAYED and args["reason"] == WaitReason.REDIAL
    assert args["until_ms"] == NOW_MS + 7_200_000 and args["fields"][JobField.REDIALS] == 1


async def test_a_call_that_failed_before_answer_is_retried() -> None:
    store, tracker = setup(ended("unknown", "provider_error"))
    await tracker.visit(live())
    [args] = store.args_of("defer")
    assert args["reason"] == WaitReason.RETRY and args["fields"][JobField.ATTEMPTS] == 1


async def test_a_poll_answered_429_cools_the_provider_down() -> None:
    store, tracker = setup(ProviderError(429, "rate_limited", retry_after_s=3.0))
    await tracker.visit(live())
    [cool] = store.args_of("set_cooldown")
    assert cool["ms"] >= 3000
    assert store.args_of("revisit")[0]["items"][0]["delay"] >= 3000


async def test_a_poll_answered_401_halts_the_provider_and_keeps_the_call() -> None:
    store, tracker = setup(ProviderError(401, "unauthorized"))
    await tracker.visit(live())
    assert store.args_of("halt")[0]["provider"] == "p"
    assert store.args_of("revisit")[0]["items"][0]["id"] == "j1"


async def test_a_poll_that_cannot_reach_the_provider_is_tried_again() -> None:
    store, tracker = setup(ProviderError(None, "connection_refused", sent=False))
    await tracker.visit(live())
    assert store.methods()[-1] == "revisit" and not store.args_of("finish_one")


async def test_a_poll_not_admitted_waits_for_the_budget() -> None:
    store, tracker = setup()
    store.answer("admit", Admit(False, 5000, Why.HALTED))
    await tracker.visit(live())
    assert store.args_of("revisit")[0]["items"][0]["delay"] == 5000


async def test_a_call_tracked_too_long_is_given_up() -> None:
    store, tracker = setup()
    await tracker.visit(live(tracked_ms=5 * 3600 * 1000))
    item = result_of(store)
    assert item.outcome == Outcome.ENDED and item.result["answer_status"] == "unknown"
    assert "max_track_s" in item.result["error_message"]


async def test_a_call_of_a_provider_no_longer_configured_waits() -> None:
    store, tracker = setup()
    await tracker.visit(live(provider="gone"))
    [args] = store.args_of("revisit")
    assert args["items"] == [{"id": "j1", "prov": "gone", "delay": 60_000}]
    assert not store.args_of("finish_one")


async def test_a_job_no_longer_tracking_is_left_alone() -> None:
    store, tracker = setup()
    await tracker.visit(live(state=JobState.DONE))
    assert store.calls == []
