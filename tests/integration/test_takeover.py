"""A killed worker's call, taken over by another: looked up on the takeover's own grant, and
when it has already ended its result is written from the look-up, not after a poll interval
(real processes, the simulator over HTTP)."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from typing import Any

from dispatcher.dev.localredis import LocalRedis
from dispatcher.simulator import RunningSimulator
from dispatcher.simulator.config import CallSpec
from dispatcher.store import Store
from tests.integration.helpers import calls_for, push
from tests.integration.procs import spawn_workers, stop_all
from tests.integration.test_recovery import all_results, worker_cfg

NUMBER = "+14155550142"
NEVER_S = 3600.0  # a poll schedule no test waits for


async def test_a_dead_workers_ended_call_is_looked_up_and_polled_without_waiting(
        redis_server: LocalRedis, ns: str, store: Store, sim: RunningSimulator,
        tmp_path: Path) -> None:
    sim.sim.cfg.calls = CallSpec(ring_s=(0.1, 0.2), talk_s=(0.1, 0.2))
    sim.sim.cfg.faults.slow_s = 1.5  # the create is on its way when its worker dies
    sim.sim.cfg.faults.by_number[NUMBER] = "slow*1"
    cfg: dict[str, Any] = worker_cfg(redis_server.url, ns, sim)
    cfg["worker"].update(dead_after_s=2, heartbeat_s=0.5)
    cfg["tracking"]["poll_schedule_s"] = [NEVER_S]
    await push(store, {"id": "t1", "to": NUMBER})
    [first] = spawn_workers(cfg, 1, tmp_path)
    try:
        while not sim.sim.number_hits.get(NUMBER):
            await asyncio.sleep(0.01)
        os.kill(first.pid, signal.SIGKILL)
        await asyncio.to_thread(first.wait)
        survivor = spawn_workers(cfg, 1, tmp_path / "..")
        results = await all_results(store, 1, timeout=60)
    finally:
        await asyncio.to_thread(stop_all, [first, *locals().get("survivor", [])])
    # the call had ended before the look-up found it: the result came from the look-up (the
    # schedule's first poll is an hour away)
    assert [r["outcome"] for r in results] == ["ended"]
    assert len(calls_for(sim, "t1")) == 1
    events = [e["e"] for e in await store.timeline("t1")]
    assert events[events.index("taken_over"):] == [
        "taken_over", "granted", "dialled", "result"], events
    # every request the provider got took one place in its log, and none more: the look-up
    # used the takeover's grant (it did not wait for a place of its own behind new dials)
    log = await store.r.zrange(store.k.rate_log("default"), 0, -1)
    api = [e for e in sim.sim.audit if "/_sim/" not in e["path"]]
    assert len(log) == len(api), ([e["path"] for e in api], log)


async def test_a_dead_workers_calls_are_looked_up_by_one_listing(
        redis_server: LocalRedis, ns: str, store: Store, sim: RunningSimulator,
        tmp_path: Path) -> None:
    """Three calls taken over together: one request lists the provider's calls for all three
    (it used one place in the log, not three), each is adopted, none dialled again."""
    numbers = [f"+1415555016{i}" for i in range(3)]
    sim.sim.cfg.calls = CallSpec(ring_s=(0.1, 0.2), talk_s=(0.1, 0.2))
    sim.sim.cfg.faults.slow_s = 1.5
    for n in numbers:
        sim.sim.cfg.faults.by_number[n] = "slow*1"
    cfg: dict[str, Any] = worker_cfg(redis_server.url, ns, sim)
    cfg["worker"].update(dead_after_s=2, heartbeat_s=0.5)
    cfg["tracking"]["poll_schedule_s"] = [NEVER_S]
    for i, n in enumerate(numbers):
        await push(store, {"id": f"s{i}", "to": n})
    [first] = spawn_workers(cfg, 1, tmp_path)
    try:
        while not all(sim.sim.number_hits.get(n) for n in numbers):
            await asyncio.sleep(0.01)
        os.kill(first.pid, signal.SIGKILL)
        await asyncio.to_thread(first.wait)
        survivor = spawn_workers(cfg, 1, tmp_path / "..")
        results = await all_results(store, 3, timeout=60)
    finally:
        await asyncio.to_thread(stop_all, [first, *locals().get("survivor", [])])
    assert sorted(r["outcome"] for r in results) == ["ended"] * 3
    assert all(len(calls_for(sim, f"s{i}")) == 1 for i in range(3))
    api = [e for e in sim.sim.audit if "/_sim/" not in e["path"]]
    listings = [e for e in api if e["method"] == "GET" and e["path"].endswith("/calls")]
    assert len(listings) == 1, [(e["method"], e["path"]) for e in api]
    log = await store.r.zrange(store.k.rate_log("default"), 0, -1)
    assert len(log) == len(api), ([e["path"] for e in api], log)
