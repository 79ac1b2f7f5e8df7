"""The Lua limiter against real Redis: agrees with the pure model step by step."""

import json
import random

from dispatcher.core.limits import SlidingLog, Window, pace_windows
from dispatcher.store import Store
from dispatcher.store.protocol import Place
from dispatcher.store.types import GrantRules, Placement


def rules(windows: list[Window], provider: str = "p", margin_ms: int = 0,
          slot_cap: int = 0, pace: bool = False) -> GrantRules:
    return GrantRules(provider=provider, windows=tuple((w.limit, w.ms) for w in windows),
                      margin_ms=margin_ms, slot_cap=slot_cap, lease_ms=60_000,
                      pace=tuple(pace_windows(windows)) if pace else ())


async def test_lua_and_model_agree_step_by_step(store: Store) -> None:
    rng = random.Random(5)
    windows = [Window(1.0, 5), Window(3.0, 9), Window(10.0, 20)]
    model = SlidingLog(windows, margin_ms=40)
    now = 1_000_000
    for step in range(600):
        now += rng.choice([0, 1, 5, 30, 90, 200, 700])
        lua = await store.admit(rules(windows, margin_ms=40), str(step), now_ms=now)
        expected = model.try_acquire(now)
        assert (lua.granted, lua.wait_ms if not lua.granted else 0) == (expected == 0, expected), \
            step


async def test_lua_and_model_agree_on_the_pace_of_short_windows(store: Store) -> None:
    rng = random.Random(7)
    windows = [Window(1.0, 40), Window(5.0, 120), Window(60.0, 400)]
    model = SlidingLog(windows, margin_ms=20, pace=pace_windows(windows))
    assert model.pace == [(4, 100), (12, 500)]  # the minute window is not paced
    now, paced = 1_000_000, 0
    for step in range(1500):
        now += rng.choice([0, 0, 1, 5, 30, 90])
        lua = await store.admit(rules(windows, margin_ms=20, pace=True), str(step), now_ms=now)
        expected = model.try_acquire(now)
        assert (lua.granted, lua.wait_ms if not lua.granted else 0) == (expected == 0, expected), \
            step
        paced += not lua.granted and lua.wait_ms < 100
    assert paced > 0  # the pace, not only the windows, refused some


async def test_cooldown_and_halt_refuse_before_tokens(store: Store) -> None:
    w = [Window(60.0, 100)]
    await store.set_cooldown("p", 5000)
    res = await store.admit(rules(w), "t")
    assert (res.granted, res.reason) == (False, "cooldown") and 4000 < res.wait_ms <= 5000
    await store.halt("q", "key revoked", "revoked_api_key", 60_000, 600_000)
    res = await store.admit(rules(w, provider="q"), "t")
    assert (res.granted, res.reason) == (False, "halted")


async def _queue(store: Store, n: int) -> None:
    await store.enqueue([{"id": f"j{i}", "to": "+14155550100"} for i in range(n)])
    entries = await store.read("c", n, 10)
    await store.ingest([Placement(
        entry_id=e, job_id=f"j{i}", raw=json.dumps({"id": f"j{i}"}), provider="p",
        priority="normal", campaign="", to="+14155550100", dnc_key="", expires_ms=0,
        place=Place.QUEUED)
                        for i, (e, _) in enumerate(entries)])


async def test_call_slots_cap_live_calls(store: Store) -> None:
    await _queue(store, 3)
    r = rules([], slot_cap=2)
    [first] = await store.grant([r.args(1, "c", "a")])
    [second] = await store.grant([r.args(1, "c", "b")])
    [third] = await store.grant([r.args(1, "c", "c")])
    assert [len(x.jobs) for x in (first, second, third)] == [1, 1, 0]
    assert third.why == "slot"
    # the first call ends: its slot is free again
    await store.defer(first.jobs[0].id, to="delayed", reason="retry", until_ms=10**13,
                      grant_token=first.jobs[0].tok)
    [again] = await store.grant([r.args(1, "c", "d")])
    assert [j.id for j in again.jobs] == ["j2"]


async def test_provider_count_lower_than_ours_is_obeyed(store: Store) -> None:
    w = Window(60.0, 60)
    assert (await store.admit(rules([w]), "1")).granted
    # we think 59 remain; the provider says 1 (the key is shared with another system)
    assert await store.observe("p", w.limit, w.ms, remaining=1, reset_ms=3000)
    assert (await store.admit(rules([w]), "2")).granted
    res = await store.admit(rules([w]), "3")
    assert (res.granted, res.reason) == (False, "rate") and 2000 < res.wait_ms <= 3000


async def test_requests_still_on_their_way_are_not_taken_for_someone_elses(
        store: Store) -> None:
    """The provider counts arrivals; a grant made just over a window ago may have arrived
    inside the provider's window: that is our own request, not a shared key."""
    w = Window(1.0, 10)
    t = 1_800_000_000_000
    await store.s.call("admit", t, prov="p", wins=[[10, 1000]], margin=50, tok="a")
    # 1,020 ms later our log has nothing in the last second, but the provider, which saw
    # that request arrive 30 ms after its grant, still counts it: 9 left
    assert not await store.s.call("observe", t + 1020, prov="p", limit=w.limit, ms=w.ms,
                                  remaining=9, reset=1000, margin=50)
    assert await store.s.call("observe", t + 1020, prov="p", limit=w.limit, ms=w.ms,
                              remaining=8, reset=1000, margin=50)
