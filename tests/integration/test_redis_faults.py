"""Redis losing its data, running out of memory, freezing or going away: the workers say so
once, keep their readiness honest, recover, and shut down within the grace period."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from dispatcher.dev.localredis import LocalRedis
from dispatcher.simulator import RunningSimulator
from dispatcher.store import Store, connect
from tests.conftest import RunningWorker, make_settings, provider_cfg, start_worker, wait_results
from tests.integration.helpers import push
from tests.integration.procs import spawn_workers, stop_all


async def ready(port: int) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as s, s.get(f"http://127.0.0.1:{port}/readyz") as r:
        return r.status, await r.json()


def settings_for(redis: LocalRedis, ns: str, sim: RunningSimulator, **over: Any) -> Any:
    return make_settings(redis.url, ns, {"default": provider_cfg("telecho", sim.url)},
                         tracking={"track_calls": False}, **over)


async def test_a_lost_consumer_group_is_created_again_and_work_goes_on(
        own_redis: LocalRedis, ns: str, sim: RunningSimulator,
        workers: list[RunningWorker]) -> None:
    store = Store(connect(own_redis.url), ns)
    w = start_worker(settings_for(own_redis, ns, sim), workers)
    await push(store, {"id": "before", "to": "+12125550100"})
    assert len(await wait_results(store, 1)) == 1
    await store.r.flushall()  # a restart without persistence, or an operator's mistake
    await asyncio.sleep(1.0)
    await push(store, {"id": "after", "to": "+12125550101"})
    [r] = await wait_results(store, 1, timeout=10)
    assert r["job_id"] == "after" and r["outcome"] == "started"
    # every loop has run once since (each at its own interval): ready again
    deadline = time.monotonic() + 30
    while (answer := await ready(w.worker.http_port))[0] != 200:
        assert time.monotonic() < deadline, answer
        await asyncio.sleep(0.1)
    await store.close()


async def test_redis_out_of_memory_is_logged_once_per_interval_and_fails_readiness(
        own_redis: LocalRedis, ns: str, sim: RunningSimulator,
        workers: list[RunningWorker], capsys: pytest.CaptureFixture[str]) -> None:
    store = Store(connect(own_redis.url), ns)
    w = start_worker(settings_for(own_redis, ns, sim,
                                  worker={"promote_interval_s": 0.05}), workers)
    while not w.worker.ready:
        await asyncio.sleep(0.02)
    await push(store, *({"id": f"m{i}", "to": f"+1212555{i:04d}"} for i in range(5)))
    used = int((await store.r.info("memory"))["used_memory"])
    await store.r.config_set("maxmemory-policy", "noeviction")
    await store.r.config_set("maxmemory", str(used + 1))  # full: every write is refused
    capsys.readouterr()
    await asyncio.sleep(6.0)
    status, body = await ready(w.worker.http_port)
    assert status == 503 and any("maxmemory" in p for p in body["problems"]), body
    logged = capsys.readouterr().out
    await store.r.config_set("maxmemory", "0")  # the operator adds memory
    results = await wait_results(store, 5, timeout=15)
    await store.close()
    errors = [x for x in logged.splitlines() if "[error" in x]
    assert 1 <= len(errors) <= 12, len(errors)  # one line per loop per interval, not thousands
    assert "Traceback" not in logged or logged.count("Traceback") <= 6
    assert len(results) == 5
    for _ in range(50):
        if (await ready(w.worker.http_port))[0] == 200:
            break
        await asyncio.sleep(0.2)
    assert (await ready(w.worker.http_port))[0] == 200


async def test_sigterm_with_redis_frozen_exits_within_the_grace_period(
        own_redis: LocalRedis, ns: str, sim: RunningSimulator, tmp_path: Path) -> None:
    store = Store(connect(own_redis.url), ns)
    await store.ensure_group()
    cfg = {"log_format": "json", "log_level": "info",
           "redis": {"url": own_redis.url, "namespace": ns, "block_ms": 200,
                     "socket_timeout_s": 5},
           "worker": {"concurrency": 10, "http_port": 0, "shutdown_grace_s": 2,
                      "heartbeat_s": 0.5, "dead_after_s": 2},
           "tracking": {"track_calls": False},
           "providers": {"default": provider_cfg("telecho", sim.url, limits=["2/second"])}}
    await push(store, *({"id": f"f{i}", "to": f"+1212555{i:04d}"} for i in range(10)))
    first = spawn_workers(cfg, 1, tmp_path)
    while len(sim.sim.calls) < 2:
        await asyncio.sleep(0.05)
    os.kill(own_redis.proc.pid, signal.SIGSTOP)
    try:
        first[0].send_signal(signal.SIGTERM)
        started = time.monotonic()
        code = await asyncio.to_thread(first[0].wait, 15)
        assert time.monotonic() - started < 2 + 4 and code == 0
    finally:
        os.kill(own_redis.proc.pid, signal.SIGCONT)
    second = spawn_workers(cfg, 1, tmp_path / "..")  # the rest is finished by another
    try:
        results = await wait_results(store, 10, timeout=30)
    finally:
        await asyncio.to_thread(stop_all, second)
        await store.close()
    assert sorted(r["job_id"] for r in results) == sorted(f"f{i}" for i in range(10))
    creates = [c.correlation for c in sim.sim.calls.values()]
    assert len(creates) == len(set(creates)) == 10


async def test_readiness_follows_redis_and_an_evicting_redis_is_named(
        own_redis: LocalRedis, ns: str, sim: RunningSimulator, workers: list[RunningWorker],
        capsys: pytest.CaptureFixture[str]) -> None:
    await (store := Store(connect(own_redis.url), ns)).r.config_set("maxmemory-policy",
                                                                     "allkeys-lru")
    w = start_worker(settings_for(own_redis, ns, sim), workers)
    while not w.worker.ready:
        await asyncio.sleep(0.02)
    out = capsys.readouterr().out
    assert "redis.eviction_policy" in out
    assert "redis.memory_setting" in out and "hash-max-listpack-value" in out  # 64 here
    assert (await ready(w.worker.http_port))[0] == 200
    os.kill(own_redis.proc.pid, signal.SIGSTOP)
    try:
        status, body = await ready(w.worker.http_port)
        assert status == 503 and any("redis" in p for p in body["problems"])
    finally:
        os.kill(own_redis.proc.pid, signal.SIGCONT)
    for _ in range(50):
        if (await ready(w.worker.http_port))[0] == 200:
            break
        await asyncio.sleep(0.1)
    assert (await ready(w.worker.http_port))[0] == 200
    await store.close()
