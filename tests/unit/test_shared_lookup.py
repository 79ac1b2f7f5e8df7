"""A grant's unsure jobs share one listing of the provider's calls (engine/lookup.py): one
request answers them all, and a job the listing did not search for is never "not found"."""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field, replace

import pytest

from dispatcher.core.model import CallState
from dispatcher.core.timing import LOOKUP_SKEW_S
from dispatcher.engine.dialer import Dialer, InFlight
from dispatcher.engine.lookup import SharedLookup
from dispatcher.store.types import Granted
from dispatcher.testing import RecordingStore
from tests.unit.executors import NOW_MS, PROV, FakeAdapter, granted, make_runtime

pytestmark = pytest.mark.usefixtures("clock")


@dataclass
class ListingAdapter(FakeAdapter):
    """A provider whose look-up reads its list of calls (like TelEcho)."""

    listings: deque[list[CallState]] = field(default_factory=deque)
    listed: list[float] = field(default_factory=list)

    async def list_calls(self, since: float, cursor: str | None
                         ) -> tuple[list[CallState], str | None]:
        self.listed.append(since)
        return self.listings.popleft(), None


def ended(job_id: str) -> CallState:
    return CallState(f"call_{job_id}", "ended", True, "human", None, 12.0, job_id, None)


def setup() -> tuple[RecordingStore, ListingAdapter, Dialer, SharedLookup]:
    store, adapter = RecordingStore(), ListingAdapter()
    runtime = make_runtime(store, adapter)
    return store, adapter, Dialer(runtime), SharedLookup(runtime.pacer, runtime.adapters[PROV],
                                                         runtime.timing)


def unsure(job_id: str, **over: object) -> Granted:
    return replace(granted(job_id, unsure=True), tok=f"tok_{job_id}", **over)  # type: ignore[arg-type]


async def test_one_listing_answers_a_grants_look_ups_and_a_call_not_found_takes_a_place(
        ) -> None:
    store, adapter, dialer, shared = setup()
    adapter.listings.append([ended("j1")])  # j2's create never reached the provider
    adapter.starts.append("call_new")
    first = InFlight(unsure("j1"), NOW_MS / 1000, lookup=shared)
    second = InFlight(unsure("j2", placed=False, dial_ms=NOW_MS - 5000), NOW_MS / 1000,
                      lookup=shared)
    await asyncio.gather(dialer.run(first), dialer.run(second))
    # one request for both, searching from the earlier dial
    assert adapter.listed == [(NOW_MS - 5000) / 1000 - LOOKUP_SKEW_S]
    assert list(adapter.found) == [] and adapter.dialled == [("j2", 1)]
    # j2 had no place in the log: it took one of its own before its create left
    [regrant] = store.args_of("regrant")
    assert regrant["job_id"] == "j2" and regrant["keep"] is True
    tracked = [a["item"]["id"] for a in store.args_of("track_one")]
    assert sorted(tracked) == ["j1", "j2"]
    assert store.methods().index("regrant") < len(store.methods()) - 1


async def test_a_job_that_comes_after_the_listing_started_looks_its_call_up_alone() -> None:
    store, adapter, dialer, shared = setup()
    adapter.listings.append([])
    adapter.found.append([ended("j2")])
    adapter.starts.append("call_j1")  # j1 is not found: it is dialled
    await dialer.run(InFlight(unsure("j1"), NOW_MS / 1000, lookup=shared))
    await dialer.run(InFlight(unsure("j2", placed=False), NOW_MS / 1000, lookup=shared))
    # j2 was not in the listing's search: its own look-up found its call, nothing dialled
    assert len(adapter.listed) == 1 and list(adapter.found) == []
    assert [a["item"]["call_id"] for a in store.args_of("track_one")][-1] == "call_j2"


async def test_a_listing_that_cannot_answer_lets_each_job_look_its_call_up_alone() -> None:
    store, adapter, dialer, shared = setup()
    adapter.found.extend([[ended("j1")], [ended("j2")]])

    async def unreadable(since: float, cursor: str | None) -> tuple[list[CallState], str | None]:
        adapter.listed.append(since)
        return [], "next"  # more pages than a look-up may read

    adapter.list_calls = unreadable  # type: ignore[method-assign]
    await asyncio.gather(*(dialer.run(InFlight(unsure(j), NOW_MS / 1000, lookup=shared))
                           for j in ("j1", "j2")))
    assert len(adapter.listed) == 50 and adapter.dialled == []
    assert sorted(a["item"]["call_id"] for a in store.args_of("track_one")) == ["call_j1",
                                                                                 "call_j2"]
