"""Intake's executor logic on the recording store double: one test per way an entry goes."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from dispatcher.core.model import DueReason, Outcome, WaitReason
from dispatcher.engine.finisher import Finisher
from dispatcher.engine.intake import Intake
from dispatcher.store.protocol import Ingested, Place, Why
from dispatcher.store.types import GrantReply, Placement
from dispatcher.testing import RecordingStore
from tests.unit.executors import NOW_MS, FakeAdapter, make_runtime, payload, result_of

pytestmark = pytest.mark.usefixtures("clock")


class Harness:
    def __init__(self, room: int = 10):
        self.store = RecordingStore()
        self.runtime = make_runtime(self.store, FakeAdapter())
        self.room = room
        self.asked: list[int] = []
        self.granted: list[list[GrantReply]] = []
        self.intake = Intake(self.runtime, Finisher(self.runtime), free_slots=lambda: self.room,
                             promise=self._asking, on_grants=self._on_grants)

    @contextlib.contextmanager
    def _asking(self, n: int) -> Iterator[None]:
        self.asked.append(n)
        yield

    def _on_grants(self, replies: list[GrantReply], asked_at: float) -> None:
        self.granted.append(replies)

    def placed(self) -> list[Placement]:
        [args] = self.store.args_of("ingest")
        entries: list[Placement] = args["entries"]
        return entries


def entry(text: str, eid: str = "1-1") -> tuple[str, bytes]:
    return eid, text.encode()


async def test_an_unreadable_entry_gets_an_invalid_result_by_its_entry_id() -> None:
    h = Harness()
    await h.intake.process([entry("not json at all")])
    [args] = h.store.args_of("finish")
    [item] = args["items"]
    assert item.outcome == Outcome.INVALID and item.entry_id == "1-1" and item.job_id is None
    assert "ingest" not in h.store.methods()


async def test_an_invalid_job_is_placed_for_its_result_and_written_at_once() -> None:
    h = Harness()
    h.store.answer("ingest", ([("j2", Ingested.FINISH, DueReason.INVALID)], []))
    await h.intake.process([entry(json.dumps({"id": "j2", "provider": "p"}))])
    [p] = h.placed()
    assert p.place is Place.FINISH and p.fin == DueReason.INVALID
    item = result_of(h.store)
    assert item.outcome == Outcome.INVALID and item.result["entry_id"] == "1-1"


async def test_a_ready_job_is_queued_and_takes_its_first_grant_in_the_same_call() -> None:
    h = Harness(room=4)
    reply = GrantReply("p", (), (), 0, Why.EMPTY)
    h.store.answer("ingest", ([("j1", Ingested.OK, "")], [reply]))
    await h.intake.process([entry(payload("j1"))])
    [p] = h.placed()
    assert p.place is Place.QUEUED and p.to == "+14155550123" and p.deadline_ms > NOW_MS
    [args] = h.store.args_of("ingest")
    [grant] = args["grants"]
    assert grant["prov"] == "p" and grant["k"] == 1
    assert h.asked == [1] and h.granted == [[reply]]


async def test_a_ready_job_without_room_asks_no_grant() -> None:
    h = Harness(room=0)
    await h.intake.process([entry(payload("j1"))])
    assert h.store.args_of("ingest")[0]["grants"] == []


async def test_a_job_not_due_yet_waits() -> None:
    h = Harness()
    later = datetime.fromtimestamp(NOW_MS / 1000 + 3600, UTC)
    await h.intake.process([entry(payload("j1", not_before=later.isoformat()))])
    [p] = h.placed()
    assert p.place is Place.DELAYED and p.reason == WaitReason.NOT_BEFORE
    assert p.due_ms == NOW_MS + 3_600_000


async def test_a_job_for_an_unknown_provider_is_parked() -> None:
    h = Harness()
    await h.intake.process([entry(payload("j1", provider="nope"))])
    [p] = h.placed()
    assert p.place is Place.PARKED and p.reason == WaitReason.UNKNOWN_PROVIDER


async def test_a_duplicate_writes_nothing_more() -> None:
    h = Harness()
    h.store.answer("ingest", ([("j1", Ingested.DUPLICATE, "")], []))
    await h.intake.process([entry(payload("j1"))])
    assert h.store.methods() == ["ingest"]


async def test_a_job_cancelled_ahead_has_its_result_written_from_redis() -> None:
    h = Harness()
    h.store.answer("ingest", ([("j1", Ingested.FINISH, DueReason.CANCELLED)], []))
    await h.intake.process([entry(payload("j1"))])
    [args] = h.store.args_of("claim_finishing")
    assert args["ids"] == ["j1"]
