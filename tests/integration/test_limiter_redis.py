"""The Lua limiter against real Redis: agrees with the pure model step by step."""

import random

from dispatcher.limits import SlidingLog, Window
from dispatcher.store import Store


async def test_lua_and_model_agree_step_by_step(store: Store) -> None:
    rng = random.Random(5)
    windows = [Window(1.0, 5), Window(3.0, 9), Window(10.0, 20)]
    model = SlidingLog(windows, margin_ms=40)
    now = 1_000_000
    for step in range(600):
        now += rng.choice([0, 1, 5, 30, 90, 200, 700])
        lua = await store.admit("p", windows, job_id=f"j{step}", token=str(step), margin_ms=40,
                                slot_cap=None, lease_ms=1000, attempts=None, entry_id="",
                                consumer="c", now_ms=now)
        expected = model.try_acquire(now)
        assert (lua.granted, lua.wait_ms if not lua.granted else 0) == (expected == 0, expected), \
            step


async def test_cooldown_and_halt_refuse_before_tokens(store: Store) -> None:
    w = [Window(60.0, 100)]
    kw = dict(job_id="j", token="t", margin_ms=0, slot_cap=None, lease_ms=1000, attempts=None,
              entry_id="", consumer="c")
    await store.set_cooldown("p", 5000)
    res = await store.admit("p", w, **kw)  # type: ignore[arg-type]
    assert (res.granted, res.reason) == (False, "cooldown") and 4000 < res.wait_ms <= 5000
    await store.halt("q", "key revoked", "revoked_api_key", 60_000, 600_000)
    res = await store.admit("q", w, **kw)  # type: ignore[arg-type]
    assert (res.granted, res.reason) == (False, "halted")


async def test_call_slots_cap_live_calls(store: Store) -> None:
    kw = dict(margin_ms=0, slot_cap=2, lease_ms=60_000, attempts=None, entry_id="",
              consumer="c")
    got = [await store.admit("p", [], job_id=f"j{i}", token=str(i), **kw)  # type: ignore[arg-type]
           for i in range(3)]
    assert [g.granted for g in got] == [True, True, False] and got[2].reason == "slot"
    await store.release_slot("p", "j0")
    assert (await store.admit("p", [], job_id="j2", token="x", **kw)).granted  # type: ignore[arg-type]


async def test_provider_count_lower_than_ours_is_obeyed(store: Store) -> None:
    w = Window(60.0, 60)
    kw = dict(margin_ms=0, slot_cap=None, lease_ms=1000, attempts=None, entry_id="",
              consumer="c")
    assert (await store.admit("p", [w], job_id="a", token="1", **kw)).granted  # type: ignore[arg-type]
    # we think 59 remain; the provider says 1 (the key is shared with another system)
    assert await store.observe("p", w, remaining=1, reset_ms=3000)
    assert (await store.admit("p", [w], job_id="b", token="2", **kw)).granted  # type: ignore[arg-type]
    res = await store.admit("p", [w], job_id="c", token="3", **kw)  # type: ignore[arg-type]
    assert (res.granted, res.reason) == (False, "rate") and 2000 < res.wait_ms <= 3000
