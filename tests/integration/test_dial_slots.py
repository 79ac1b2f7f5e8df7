"""``worker.concurrency`` bounds the dials in flight: not more, whatever asks for grants at
once (the grant loops, intake), and not fewer while answered dials are still writing their
outcome (the next dial does not wait for that write)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

from dispatcher.dev.localredis import LocalRedis
from dispatcher.simulator import RunningSimulator
from dispatcher.store import Store
from dispatcher.store.types import ResultItem
from tests.conftest import RunningWorker, make_settings, provider_cfg, start_worker, wait_results
from tests.integration.helpers import creates, push, set_key

SLOW_S = 0.4


def _settings(redis_url: str, ns: str, sim: RunningSimulator, concurrency: int) -> Any:
    set_key(sim, "telecho", limits=["100000/minute"])
    sim.sim.cfg.account("acme").max_concurrent_calls = 100_000
    return make_settings(redis_url, ns, {"default": provider_cfg(
        "telecho", sim.url, limits=["100000/minute"])},
        worker={"concurrency": concurrency}, tracking={"track_calls": False})


async def test_grants_never_outrun_the_concurrency(
        redis_server: LocalRedis, ns: str, store: Store, sim: RunningSimulator,
        workers: list[RunningWorker]) -> None:
    """Several grant calls are on their way at once (and intake takes grants too): none may
    take a grant for room another has asked for. A dial granted beyond the concurrency would
    wait in the HTTP pool, its place in the provider's log taken long before it is sent."""
    sim.sim.cfg.faults.probability = {"slow": 1.0}  # every create is answered SLOW_S later
    sim.sim.cfg.faults.slow_s = SLOW_S
    running = start_worker(_settings(redis_server.url, ns, sim, concurrency=3), workers)
    w = running.worker
    peak = 0

    async def watch() -> None:
        nonlocal peak
        while True:
            peak = max(peak, w.dialing)
            await asyncio.sleep(0)

    watcher = asyncio.create_task(watch())
    await push(store, *({"id": f"c{i}", "to": f"+1415555{i:04d}"} for i in range(15)))
    results = await wait_results(store, 15, timeout=30)
    watcher.cancel()
    assert Counter(r["job_id"] for r in results) == {f"c{i}": 1 for i in range(15)}
    assert len(creates(sim)) == 15
    assert peak == 3


async def test_a_dial_slot_is_free_once_the_provider_has_answered(
        redis_server: LocalRedis, ns: str, store: Store, sim: RunningSimulator,
        workers: list[RunningWorker]) -> None:
    running = start_worker(_settings(redis_server.url, ns, sim, concurrency=2), workers)
    gate = asyncio.Event()
    write = running.worker.store.finish_one

    async def held(item: ResultItem, ttl_s: int) -> bool:  # Redis slow to take the results
        await gate.wait()
        return await write(item, ttl_s)

    running.worker.store.finish_one = held  # type: ignore[method-assign]
    await push(store, *({"id": f"s{i}", "to": f"+1415556{i:04d}"} for i in range(8)))
    deadline = time.monotonic() + 10
    while len(creates(sim)) < 4 and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.5)  # time enough for a fifth create, if one were allowed
    # two dials answered and writing, two more dialled meanwhile; then the held jobs (twice
    # the concurrency) stop further grants until a write is done
    assert len(creates(sim)) == 4
    assert len(running.worker.flights) == 4
    gate.set()
    results = await wait_results(store, 8, timeout=20)
    assert Counter(r["job_id"] for r in results) == {f"s{i}": 1 for i in range(8)}
    assert {r["outcome"] for r in results} == {"started"}
    assert len(creates(sim)) == 8
