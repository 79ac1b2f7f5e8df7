"""No loss, no double dial: kill -9 of a worker, and a Redis restart, in the middle of a run."""

from __future__ import annotations

import asyncio
import collections
import json
import os
import re
import signal
import time
from pathlib import Path
from typing import Any

from dispatcher.dev.localredis import start_redis
from dispatcher.simulator import RunningSimulator
from dispatcher.simulator.config import CallSpec
from dispatcher.store import Store, connect
from tests.conftest import provider_cfg
from tests.integration.helpers import push, set_key
from tests.integration.procs import spawn_workers, stop_all


def worker_cfg(redis_url: str, ns: str, sim: RunningSimulator) -> dict[str, Any]:
    return {"log_format": "json", "log_level": "info",
            "redis": {"url": redis_url, "namespace": ns, "block_ms": 300,
                      "socket_timeout_s": 2},
            "worker": {"concurrency": 20, "http_port": 0, "claim_idle_s": 2,
                       "heartbeat_s": 0.5, "promote_interval_s": 0.1},
            "retry": {"base_delay_s": 0.2, "max_delay_s": 1.0},
            "tracking": {"poll_schedule_s": [0.3, 0.5], "visit_lease_s": 2.0},
            "providers": {"default": provider_cfg("telecho", sim.url, limits=["60/second"],
                                                  max_concurrent_calls=50)}}


async def all_results(store: Store, n: int, timeout: float) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            entries = await store.r.xrange(store.k.results)
            if len(entries) >= n:
                await asyncio.sleep(1.0)  # and nothing more comes
                return [json.loads(f["result"]) for _, f in await store.r.xrange(store.k.results)]
        except (ConnectionError, OSError, Exception):
            pass
        await asyncio.sleep(0.2)
    entries = await store.r.xrange(store.k.results)
    return [json.loads(f["result"]) for _, f in entries]


def check_exactly_once(sim: RunningSimulator, results: list[dict[str, Any]], n: int) -> None:
    per_job = collections.Counter(r["job_id"] for r in results)
    assert len(per_job) == n and max(per_job.values()) == 1, per_job.most_common(3)
    calls = collections.Counter(c.correlation for c in sim.sim.calls.values())
    assert max(calls.values()) == 1, calls.most_common(3)
    assert all(r["outcome"] == "ended" for r in results), collections.Counter(
        r["outcome"] for r in results)


async def test_kill_9_of_a_worker_loses_nothing_and_dials_nothing_twice(
        redis_server: Any, ns: str, store: Store, sim: RunningSimulator,
        tmp_path: Path) -> None:
    sim.sim.cfg.calls = CallSpec(ring_s=(0.1, 0.5), talk_s=(0.5, 2.0))
    sim.sim.cfg.account("acme").max_concurrent_calls = 1000
    set_key(sim, "telecho", limits=["100/second"])
    n = 200
    await push(store, *({"id": f"k{i}", "to": f"+1415555{i:04d}"} for i in range(n)))
    procs = spawn_workers(worker_cfg(redis_server.url, ns, sim), 3, tmp_path)
    try:
        while len(sim.sim.calls) < 60:
            await asyncio.sleep(0.02)
        os.kill(procs[0].pid, signal.SIGKILL)
        results = await all_results(store, n, timeout=60)
    finally:
        await asyncio.to_thread(stop_all, procs)
    check_exactly_once(sim, results, n)


async def test_redis_restart_mid_run_loses_nothing(
        ns: str, sim: RunningSimulator, tmp_path: Path) -> None:
    sim.sim.cfg.calls = CallSpec(ring_s=(0.1, 0.3), talk_s=(0.3, 1.0))
    sim.sim.cfg.account("acme").max_concurrent_calls = 1000
    set_key(sim, "telecho", limits=["100/second"])
    redis = start_redis(workdir=str(tmp_path), appendonly=True)
    store = Store(connect(redis.url), ns)
    procs: list[Any] = []
    try:
        await store.ensure_group()
        n = 120
        await push(store, *({"id": f"r{i}", "to": f"+1415555{i:04d}"} for i in range(n)))
        procs = spawn_workers(worker_cfg(redis.url, ns, sim), 2, tmp_path)
        while len(sim.sim.calls) < 40:
            await asyncio.sleep(0.02)
        redis.stop()
        await asyncio.sleep(1.5)
        redis = start_redis(port=redis.port, workdir=str(tmp_path), appendonly=True)
        results = await all_results(store, n, timeout=60)
        check_exactly_once(sim, results, n)
    finally:
        await asyncio.to_thread(stop_all, procs)
        await store.r.aclose()
        redis.stop()


def check_logs(tmp_path: Path) -> None:
    """Worker logs: JSON lines, every job line carries job_id/attempt/provider, nothing leaks."""
    text = "".join(p.read_text() for p in tmp_path.glob("worker-*.log"))
    assert text
    assert "tel_live_demo_key_0001" not in text
    assert not re.search(r"\+1415\d{7}", text), "a full phone number was logged"
    lines = [json.loads(x) for x in text.splitlines() if x.startswith("{")]
    dialing = [x for x in lines if x["event"] == "call.dialing"]
    assert dialing
    assert all(set(x["to"][1:-3]) == {"*"} for x in dialing)
    for x in lines:
        if x["event"] in ("job.result", "call.dialing", "call.started"):
            assert {"job_id", "attempt", "provider"} <= set(x), x


async def test_sigterm_hands_back_work_and_exits_0(
        redis_server: Any, ns: str, store: Store, sim: RunningSimulator,
        tmp_path: Path) -> None:
    sim.sim.cfg.calls = CallSpec(ring_s=(0.1, 0.2), talk_s=(0.2, 0.5))
    set_key(sim, "telecho", limits=["1000/minute"])
    cfg = worker_cfg(redis_server.url, ns, sim)
    cfg["providers"]["default"]["limits"] = ["8/second"]  # a backlog waits for grants
    cfg["worker"]["shutdown_grace_s"] = 1
    n = 20
    await push(store, *({"id": f"g{i}", "to": f"+1415555{i:04d}"} for i in range(n)))
    [proc] = spawn_workers(cfg, 1, tmp_path)
    while len(sim.sim.calls) < 5:
        await asyncio.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    started = time.monotonic()
    code = await asyncio.to_thread(proc.wait, 30)
    assert code == 0 and time.monotonic() - started < 10
    log = (tmp_path / "worker-0.log").read_text()
    assert "worker.stopped" in log
    # nothing is left owned by the stopped worker: the backlog waits in Redis for any worker
    consumer = next(e["consumer"] for e in map(json.loads, log.splitlines())
                    if e["event"] == "worker.started")
    assert not await store.r.xpending_range(store.k.jobs, "workers", "-", "+", 10, consumer)
    assert not await store.r.smembers(store.k.held(consumer))
    assert (await store.counts()).get("queued", 0) > 0
    check_logs(tmp_path)
    procs = spawn_workers(cfg, 1, tmp_path / "..")  # a fresh worker finishes the rest
    try:
        results = await all_results(store, n, timeout=60)
    finally:
        await asyncio.to_thread(stop_all, procs)
    check_exactly_once(sim, results, n)


async def test_a_reconciliation_later_than_reconcile_window_s_finds_the_call_and_does_not_dial(
        redis_server: Any, ns: str, store: Store, sim: RunningSimulator,
        tmp_path: Path) -> None:
    sim.sim.cfg.calls = CallSpec(ring_s=(0.1, 0.2), talk_s=(0.2, 0.5))
    sim.sim.cfg.faults.hang_s = 6.0  # the create answer never comes back in time
    sim.sim.cfg.faults.by_number["+14155550100"] = "timeout_after_create*1"
    cfg = worker_cfg(redis_server.url, ns, sim)
    cfg["providers"]["default"]["request_timeout_s"] = 3.0
    cfg["worker"].update(dead_after_s=2, heartbeat_s=0.5)
    cfg["tracking"]["reconcile_window_s"] = 2.0  # shorter than the wait before reconciling
    await push(store, {"id": "j1", "to": "+14155550100"})
    [first] = spawn_workers(cfg, 1, tmp_path)
    try:
        while not [c for c in sim.sim.calls.values() if c.correlation == "j1"]:
            await asyncio.sleep(0.02)
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
        second = spawn_workers(cfg, 1, tmp_path / "..")
        results = await all_results(store, 1, timeout=30)
    finally:
        await asyncio.to_thread(stop_all, [first, *locals().get("second", [])])
    assert [r["outcome"] for r in results] == ["ended"]
    assert len([c for c in sim.sim.calls.values() if c.correlation == "j1"]) == 1


async def test_a_worker_waiting_on_a_slow_provider_keeps_its_jobs(
        redis_server: Any, ns: str, store: Store, sim: RunningSimulator,
        tmp_path: Path) -> None:
    """Its heartbeat does not wait for its dials: a create that takes four times
    ``dead_after_s`` (and ``claim_idle_s``) leaves the other worker nothing to take over."""
    sim.sim.cfg.calls = CallSpec(ring_s=(0.1, 0.2), talk_s=(0.2, 0.4))
    sim.sim.cfg.faults.slow_s = 8.0
    numbers = [f"+1415555{i:04d}" for i in range(6)]
    for number in numbers:
        sim.sim.cfg.faults.by_number[number] = "slow*1"
    cfg = worker_cfg(redis_server.url, ns, sim)
    cfg["providers"]["default"]["request_timeout_s"] = 20.0
    cfg["worker"].update(dead_after_s=2, heartbeat_s=0.5)
    await push(store, *({"id": f"s{i}", "to": n} for i, n in enumerate(numbers)))
    procs = spawn_workers(cfg, 2, tmp_path)
    try:
        results = await all_results(store, len(numbers), timeout=45)
    finally:
        await asyncio.to_thread(stop_all, procs)
    check_exactly_once(sim, results, len(numbers))
    for i in range(len(numbers)):
        events = [e["e"] for e in await store.timeline(f"s{i}")]
        assert "taken_over" not in events, (i, events)
