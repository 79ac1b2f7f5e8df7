"""A campaign's status from its counters: waits by reason, outcomes, pace over the last
minute and the ETA it gives."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from dispatcher.ops import campaigns
from dispatcher.ops.campaigns import eta_seconds, status_from
from dispatcher.store import Store
from tests.integration.test_campaigns_scripts import grant_args, ingest


def test_status_reads_waits_outcomes_and_answers_from_the_counters() -> None:
    s = status_from("c", {"total": 20, "queued": 6, "delayed": 3, "parked": 1, "dialing": 2,
                          "live": 4, "w:window": 3, "w:halted": 1, "w:rate": 0, "o:ended": 3,
                          "o:cancelled": 1, "a:human": 2, "a:machine": 1, "calls": 5},
                    paused=False, cancelled=False, pace_per_min=24)
    assert (s.queued, s.waiting, s.remaining, s.done, s.calls) == (6, 4, 12, 4, 5)
    assert s.waiting_by_reason == {"halted": 1, "window": 3}
    assert s.outcomes == {"cancelled": 1, "ended": 3} and s.answers == {"human": 2,
                                                                        "machine": 1}
    assert s.eta_s == 30.0  # 12 dials at 24 a minute
    assert s.to_json()["remaining"] == 12


def test_eta_is_unknown_while_paused_or_idle_and_zero_when_nothing_is_left() -> None:
    assert eta_seconds(10, 0, False) is None
    assert eta_seconds(10, 60, True) is None
    assert eta_seconds(0, 0, True) == 0.0


@settings(deadline=None)
@given(st.integers(1, 10**6), st.integers(1, 10**5))
def test_eta_times_pace_gives_back_what_is_left(remaining: int, pace: int) -> None:
    eta = eta_seconds(remaining, pace, False)
    assert eta is not None and abs(eta * pace / 60 - remaining) <= 0.05 * pace / 60 + 1e-9


async def test_pace_counts_the_dials_granted_in_the_last_minute(store: Store) -> None:
    now = await store.server_ms()
    await ingest(store, [(f"j{i}", "c", "normal") for i in range(10)], now=now)
    res = await store.s.call("grant", rid="g", grants=[grant_args(4, "g")])
    assert len(res["grants"][0]["jobs"]) == 4
    [s] = await campaigns.statuses(store)
    assert (s.name, s.pace_per_min, s.queued, s.dialing) == ("c", 4, 6, 4)
    assert s.eta_s == 150.0  # 10 dials left (6 queued, 4 dialling) at 4 a minute
