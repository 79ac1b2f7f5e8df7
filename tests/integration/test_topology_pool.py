"""A burst at the largest ``worker.concurrency`` allowed: every dial in flight at once and
Redis stopped for a second meanwhile, so every dial and call visit wants a connection at the
same time, on one server and on a cluster. Commands wait for a pooled connection instead of
failing with MaxConnectionsError; no job crashes and every job gets one result."""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from dispatcher.config.settings import RedisConfig, Settings, WorkerConfig
from dispatcher.dev.localredis import LocalCluster, LocalRedis, start_redis
from dispatcher.simulator import RunningSimulator
from dispatcher.simulator.config import CallSpec
from dispatcher.store import Store, connect
from tests.conftest import RunningWorker, make_settings, provider_cfg, start_worker, wait_results
from tests.integration.helpers import push, set_key
from tests.integration.test_topology import cluster, hand_config_to_worker

__all__ = ["cluster"]  # the module-scoped 3-master cluster fixture

MAX: int = next(m.le for m in WorkerConfig.model_fields["concurrency"].metadata
                if hasattr(m, "le"))  # the cap in the config model
N = MAX * 2


def burst_settings(redis: dict[str, Any], ns: str, sim: RunningSimulator) -> Settings:
    set_key(sim, "telecho", limits=["100000/minute"])
    sim.sim.cfg.faults.probability = {"slow": 1.0}  # every create takes slow_s
    sim.sim.cfg.faults.slow_s = 1.0
    sim.sim.cfg.account("acme").max_concurrent_calls = 100_000
    sim.sim.cfg.calls = CallSpec(ring_s=(0.1, 0.3), talk_s=(0.3, 1.0))
    return make_settings(redis["url"], ns, {"default": provider_cfg(
        "telecho", sim.url, limits=["100000/minute"], request_timeout_s=10.0)},
        redis=redis, worker={"concurrency": MAX},
        tracking={"poll_schedule_s": [0.2, 0.2]})


async def burst(store: Store, settings: Settings, workers: list[RunningWorker],
                capfd: pytest.CaptureFixture[str], servers: list[LocalRedis]) -> None:
    """Fill every slot, then stop Redis for a second: every task's next command waits on the
    pool (holding or wanting a connection) until Redis answers again."""
    running = start_worker(settings, workers)
    await push(store, *({"id": f"b{i}", "to": f"+1415557{i:04d}"} for i in range(N)))
    peak = 0
    while peak < MAX * 0.9:
        peak = max(peak, len(running.worker.flights))
        await asyncio.sleep(0.01)
    for s in servers:
        s.proc.send_signal(signal.SIGSTOP)
    await asyncio.sleep(1.0)
    for s in servers:
        s.proc.send_signal(signal.SIGCONT)
    results = await wait_results(store, N, timeout=90)
    assert Counter(r["job_id"] for r in results) == {f"b{i}": 1 for i in range(N)}
    assert {r["outcome"] for r in results} == {"ended"}
    logged = capfd.readouterr()
    for needle in ("job.crashed", "loop.error", "MaxConnectionsError", "Too many connections"):
        assert needle not in logged.out + logged.err


@pytest.fixture(scope="module")
def own_redis() -> Iterator[LocalRedis]:
    server = start_redis()  # stopped for a second: not the session's shared server
    yield server
    server.stop()


async def test_a_burst_at_the_maximum_concurrency_on_one_server(
        own_redis: LocalRedis, ns: str, sim: RunningSimulator,
        workers: list[RunningWorker], capfd: pytest.CaptureFixture[str]) -> None:
    store = Store(connect(own_redis.url), ns)
    try:
        await store.ensure_group()
        await burst(store, burst_settings({"url": own_redis.url}, ns, sim), workers, capfd,
                    [own_redis])
    finally:
        await store.close()


async def test_a_burst_at_the_maximum_concurrency_on_a_cluster(
        cluster: LocalCluster, ns: str, sim: RunningSimulator, workers: list[RunningWorker],
        capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    settings = burst_settings({"mode": "cluster", "url": cluster.url}, ns, sim)
    hand_config_to_worker(monkeypatch, settings.redis)
    store = Store(connect(RedisConfig(mode="cluster", url=cluster.url)), ns)
    try:
        await store.ensure_group()
        await burst(store, settings, workers, capfd, cluster.nodes)
    finally:
        await store.close()
