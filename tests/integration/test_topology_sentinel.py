"""A master, its replica and a Sentinel: workers find the master through the sentinel, and
follow it when the master is killed mid-run (what asynchronous replication loses, if anything,
is counted and printed; docs/redis.md quotes it)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from redis.exceptions import RedisError

from dispatcher.config.settings import RedisConfig
from dispatcher.dev.localredis import LocalSentinel, start_redis, start_sentinel
from dispatcher.simulator import RunningSimulator
from dispatcher.store import Store, connect
from tests.conftest import RunningWorker, start_worker, wait_results
from tests.integration.helpers import calls_for, creates, push
from tests.integration.test_topology import (
    dial_pace_track,
    hand_config_to_worker,
    topology_settings,
)

NOWHERE = "redis://127.0.0.1:1/0"  # sentinel mode ignores the URL; never the shared Redis


async def results_across_failover(store: Store, n: int, timeout: float
                                  ) -> list[dict[str, Any]]:
    """``wait_results``, but a read that fails while there is no master is tried again."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await wait_results(store, n, timeout=max(0.0, deadline - time.monotonic()))
        except RedisError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


@pytest.fixture
def group() -> Iterator[LocalSentinel]:
    g = start_sentinel()
    yield g
    g.stop()


def sentinel_table(group: LocalSentinel) -> dict[str, object]:
    return {"mode": "sentinel", "url": NOWHERE, "sentinels": group.sentinels,
            "master_name": group.name}


@pytest.fixture
async def sstore(group: LocalSentinel, ns: str) -> AsyncIterator[Store]:
    s = Store(connect(RedisConfig.model_validate({**sentinel_table(group), "namespace": ns})),
              ns)
    await s.ensure_group()
    yield s
    await s.close()


async def test_jobs_are_dialled_paced_and_tracked_through_a_sentinel_master(
        group: LocalSentinel, ns: str, sstore: Store, sim: RunningSimulator,
        workers: list[RunningWorker], monkeypatch: pytest.MonkeyPatch) -> None:
    settings = topology_settings(sentinel_table(group), ns, sim)
    hand_config_to_worker(monkeypatch, settings.redis)
    await dial_pace_track(sstore, sim, settings, workers)
    replica = Store(connect(group.replica.url), ns)  # the writes reached the replica
    try:
        await asyncio.sleep(0.2)
        assert await replica.r.xlen(replica.k.results) == 40
    finally:
        await replica.close()


async def sentinel_master_port(group: LocalSentinel) -> int:
    """The port of the master the sentinel names now."""
    sentinel = connect(f"redis://{group.sentinel.address}/0")
    try:
        addr: Any = await sentinel.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME",
                                                   group.name)
        return int(addr[1])
    finally:
        await sentinel.aclose()


async def cut_replication(group: LocalSentinel) -> None:
    """The replica drops its link to the master and cannot make it again (a wrong password)
    until it is promoted: what the master writes meanwhile never reaches it."""
    replica = connect(group.replica.url)
    try:
        await replica.config_set("masterauth", "not-the-password")
        await replica.client_kill_filter(_type="master")
        info: Any = await replica.info("replication")
        assert info["master_link_status"] == "down"
    finally:
        await replica.aclose()


async def newest_result(store: Store) -> str:
    """The id of the newest result entry ("0-0" while there is none or no master)."""
    try:
        last: Any = await store.r.xrevrange(store.k.results, count=1)
    except RedisError:
        return "0-0"
    return str(last[0][0]) if last else "0-0"


def newer(a: str, b: str) -> bool:
    return tuple(map(int, a.split("-"))) > tuple(map(int, b.split("-")))


@pytest.mark.parametrize(("dialect", "unreplicated_calls"), [
    ("telecho", 0), ("telecho", 20), ("itellico", 20)])
async def test_a_killed_master_fails_over_and_dialling_goes_on(
        group: LocalSentinel, ns: str, sstore: Store, sim: RunningSimulator,
        workers: list[RunningWorker], monkeypatch: pytest.MonkeyPatch,
        dialect: str, unreplicated_calls: int) -> None:
    """The master is killed mid-run. With ``unreplicated_calls`` the replica is first stopped
    while that many calls start, so the writes of that last moment (acknowledged to the
    workers) never reach it: what asynchronous replication cannot promise, made to happen.
    A provider that refuses a second create for the same job (itellicoAI's external_id)
    turns those second dials into look-ups of the first call."""
    n = 120
    settings = topology_settings(sentinel_table(group), ns, sim, limits=["60/1s"],
                                 dialect=dialect)
    hand_config_to_worker(monkeypatch, settings.redis)
    await push(sstore, *({"id": f"f{i}", "to": f"+1415556{i:04d}"} for i in range(n)))
    assert await sstore.r.execute_command("WAIT", 1, 2000) == 1  # the jobs are replicated
    for _ in range(2):
        start_worker(settings, workers)
    while len(creates(sim)) < n // 4:
        await asyncio.sleep(0.01)
    cut_at = time.time()  # the simulator's audit clock
    if unreplicated_calls:
        await cut_replication(group)
        lag_from = len(creates(sim))
        while len(creates(sim)) < lag_from + unreplicated_calls:
            await asyncio.sleep(0.01)
    before = len(creates(sim))
    last = await newest_result(sstore)
    killed_at = time.monotonic()
    group.master.kill()
    while not newer(await newest_result(sstore), last):
        assert time.monotonic() - killed_at < 60, "no result since the failover"
        await asyncio.sleep(0.05)
    resumed = time.monotonic() - killed_at
    results = await results_across_failover(sstore, n, timeout=90)
    per_job = Counter(r["job_id"] for r in results)
    lost = [f"f{i}" for i in range(n) if f"f{i}" not in per_job]
    twice = [f"f{i}" for i in range(n) if len(calls_for(sim, f"f{i}")) > 1]
    print(f"\nsentinel failover, {dialect}, {unreplicated_calls} calls not replicated: "
          f"master killed after "
          f"{before} of {n} calls started; results again {resumed:.1f} s later, all done after "
          f"{time.monotonic() - killed_at:.1f} s; lost {len(lost)}, dialled twice "
          f"{len(twice)} {twice[:8]}, results in the new master's stream "
          f"{len(results)} for {len(per_job)} jobs")
    assert before < n  # the kill landed mid-run
    assert not lost  # every job (replicated before the kill) got its result
    assert max(per_job.values()) == 1
    # only a call whose grant never reached the replica is started again
    assert all(creates(sim, j)[0]["t"] >= cut_at - 0.05 for j in twice)
    assert not twice or dialect == "telecho"


async def test_with_wait_replicas_a_failover_that_loses_writes_dials_no_job_twice(
        group: LocalSentinel, ns: str, sstore: Store, sim: RunningSimulator,
        workers: list[RunningWorker], monkeypatch: pytest.MonkeyPatch) -> None:
    """``redis.wait_replicas = 1``: a grant is dialled only once the replica has it. The
    replica is cut off mid-run (the master's writes after that never reach it) and the master
    killed: the promoted replica knows every grant that was dialled, so TelEcho (no
    idempotency key) gets no second create for any job."""
    n = 120
    table = {**sentinel_table(group), "wait_replicas": 1, "wait_timeout_ms": 200}
    settings = topology_settings(table, ns, sim, limits=["60/1s"])
    hand_config_to_worker(monkeypatch, settings.redis)
    await push(sstore, *({"id": f"w{i}", "to": f"+1415557{i:04d}"} for i in range(n)))
    assert await sstore.r.execute_command("WAIT", 1, 2000) == 1
    for _ in range(2):
        start_worker(settings, workers)
    while len(creates(sim)) < n // 4:
        await asyncio.sleep(0.01)
    await cut_replication(group)

    async def handed_back() -> bool:
        counts = await sstore.counts()
        return any("replica_wait" in k and v > 0 for k, v in counts.items())
    while not await handed_back():  # grants go on, unacknowledged, and are not dialled
        await asyncio.sleep(0.05)
    before = len(creates(sim))
    old = group.master
    old.kill()
    while await sentinel_master_port(group) == old.port:
        await asyncio.sleep(0.1)
    # the promoted replica has no replica of its own: grants wait (none is dialled) until the
    # old master is back, which the sentinel makes a replica of the new one
    group.master = await asyncio.to_thread(start_redis, port=old.port, workdir=old.dir,
                                           appendonly=True)
    results = await results_across_failover(sstore, n, timeout=90)
    per_job = Counter(r["job_id"] for r in results)
    twice = [f"w{i}" for i in range(n) if len(calls_for(sim, f"w{i}")) > 1]
    print(f"\nsentinel failover with wait_replicas = 1: master killed after {before} of {n} "
          f"calls started; dialled twice {len(twice)} {twice[:8]}")
    assert before < n
    assert sorted(per_job) == sorted(f"w{i}" for i in range(n))
    assert max(per_job.values()) == 1
    assert not twice
