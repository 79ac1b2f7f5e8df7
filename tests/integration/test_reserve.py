"""The reserve (reserve_high): a share of every window only high-priority jobs may take.
Real Redis, the grant script on a fixed clock stepped through the windows; counts in grants
and windows, not seconds."""

from __future__ import annotations

from dispatcher.core.limits import max_in_any_window
from dispatcher.store import Store
from dispatcher.store.keys import GROUP
from dispatcher.store.types import GrantReply
from tests.integration.test_scripts import NOW, grant_args, job_args

LIMIT, WINDOW_MS, STEP_MS = 10, 1000, 50


async def push(store: Store, prefix: str, n: int, prio: str) -> None:
    await store.enqueue([{"id": f"{prefix}{i}", "to": "+14155550100"} for i in range(n)])
    entries = [eid for eid, _ in await store.read("w1", n, 10)]
    await store.s.call("ingest", NOW, group=GROUP, grants=[], entries=[
        job_args(f"{prefix}{i}", e, prio=prio) for i, e in enumerate(entries)])


async def run(store: Store, reserve: float, high_at: int, until: int
              ) -> tuple[list[int], list[int], list[int]]:
    """Grant every STEP_MS from NOW to NOW + until; 5 high jobs are pushed at high_at.
    Returns the grant times (ms from NOW) of normal jobs, of high jobs, and how many high
    jobs the first grant after their push gave."""
    await push(store, "n", 80, "normal")
    normal, high, first = [], [], []
    for step, t in enumerate(range(0, until, STEP_MS)):
        if t == high_at:
            await push(store, "h", 5, "high")
        args = {**grant_args(k=20, tok=f"g{step}"), "wins": [[LIMIT, WINDOW_MS]],
                "caps": [], "slot_cap": 0, "reserve": reserve}
        res = await store.s.call("grant", NOW + t, rid=f"g{step}", grants=[args])
        reply = GrantReply.decode(res["grants"][0])
        normal += [t for g in reply.jobs if g.priority == "normal"]
        high += [t for g in reply.jobs if g.priority == "high"]
        if t == high_at:
            first.append(sum(1 for g in reply.jobs if g.priority == "high"))
    return normal, high, first


async def test_normal_jobs_leave_the_reserve_free_and_high_jobs_start_within_a_window(
        store: Store) -> None:
    normal, high, first = await run(store, 0.3, high_at=2050, until=5000)
    most = max_in_any_window([t / 1000 for t in normal], WINDOW_MS / 1000)
    print(f"\nreserve 0.3 of {LIMIT}/s: most normal grants in any window {most}; high jobs "
          f"pushed at 2050 ms granted at {high} (first grant after the push: {first[0]})")
    assert most <= 7  # never more than 70 % of a window
    assert len(normal) >= 7 * 4  # and the 70 % is used
    assert first == [3]  # the reserved 3 at once
    assert len(high) == 5 and max(high) - 2050 <= WINDOW_MS  # all within one window


async def test_without_a_reserve_a_backlog_fills_every_window(store: Store) -> None:
    """The contrast: a high job pushed into a full window waits for it to slide."""
    normal, high, first = await run(store, 0.0, high_at=2050, until=4000)
    assert max_in_any_window([t / 1000 for t in normal], WINDOW_MS / 1000) == LIMIT
    assert first == [0] and len(high) == 5
