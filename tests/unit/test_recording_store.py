"""The recording store double answers what a test scripts and records every call."""

from __future__ import annotations

import pytest
from redis.exceptions import RedisError

from dispatcher.core.model import JobState
from dispatcher.store.protocol import JobField, Why
from dispatcher.store.types import Admit, GrantRules
from dispatcher.testing import Call, RecordingStore


async def test_scripted_answers_come_in_order_then_the_default() -> None:
    store = RecordingStore().answer("bump", 2, 3)
    assert [await store.bump("j", JobField.CRASHES) for _ in range(3)] == [2, 3, 1]


async def test_an_answer_may_be_computed_from_the_call() -> None:
    store = RecordingStore().answer_with("defer", lambda **a: a["to"] is JobState.QUEUED)
    assert await store.defer("j", to=JobState.QUEUED, reason="", until_ms=0)
    assert not await store.defer("j", to=JobState.DELAYED, reason="retry", until_ms=5)


async def test_a_scripted_exception_is_raised_and_the_call_still_recorded() -> None:
    store = RecordingStore().answer("regrant", RedisError("down"), Admit(False, 0, Why.LOST))
    rules = GrantRules(provider="p", windows=(), margin_ms=0, slot_cap=0, lease_ms=0)
    with pytest.raises(RedisError):
        await store.regrant(rules, "j", "t1", "t2")
    assert (await store.regrant(rules, "j", "t1", "t3")).reason is Why.LOST
    assert store.methods() == ["regrant", "regrant"]
    assert store.calls[0] == Call("regrant", {"rules": rules, "job_id": "j", "grant_token": "t1",
                                              "tok": "t2", "keep": False})


def test_a_method_the_double_does_not_have_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="no method 'regarnt'"):
        RecordingStore().answer("regarnt", None)
