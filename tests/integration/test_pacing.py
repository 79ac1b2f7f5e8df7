"""Four worker processes sharing one key: never over any window, and the window nearly full."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from dispatcher.core.limits import max_in_any_window
from dispatcher.dev.localredis import LocalRedis
from dispatcher.simulator import RunningSimulator
from dispatcher.store import Store
from tests.conftest import provider_cfg
from tests.integration.helpers import push, set_key
from tests.integration.procs import spawn_workers, stop_all

LIMITS = ["50/2s", "150/10s"]


async def test_four_processes_stay_under_every_window_and_obey_a_429(
        redis_server: LocalRedis, ns: str, store: Store, sim: RunningSimulator,
        tmp_path: Path) -> None:
    set_key(sim, "telecho", limits=LIMITS)
    sim.sim.cfg.account("acme").max_concurrent_calls = 100_000  # rate limits only here
    cfg = {"log_format": "json", "log_level": "warning",
           "redis": {"url": redis_server.url, "namespace": ns, "block_ms": 500},
           "worker": {"concurrency": 20, "http_port": 0, "claim_idle_s": 10,
                      "heartbeat_s": 1},
           "tracking": {"track_calls": False},
           "providers": {"default": provider_cfg("telecho", sim.url, limits=LIMITS,
                                                 send_margin_s=0.05)}}
    await push(store, *({"id": f"b{i}", "to": f"+1415555{i:04d}"} for i in range(1000)))
    procs = spawn_workers(cfg, 4, tmp_path)
    try:
        while not sim.sim.audit:
            await asyncio.sleep(0.05)
        t0 = sim.sim.audit[0]["t"]
        await asyncio.sleep(t0 + 20 - time.time())
        sim.sim.next_faults.append({"fault": "rate_limit", "retry_after": 3})
        await asyncio.sleep(6)
    finally:
        await asyncio.to_thread(stop_all, procs)  # the simulator keeps serving meanwhile
    audit = sim.sim.audit
    times = [e["t"] for e in audit]
    first20 = sum(1 for t in times if t < t0 + 20)
    utilisation = first20 / 300
    print(f"\nrequests {len(times)}; first 20 s: {first20} of 300 allowed "
          f"({utilisation:.1%}); max in any 2 s: {max_in_any_window(times, 2)}, "
          f"any 10 s: {max_in_any_window(times, 10)}")
    assert max_in_any_window(times, 2.0) <= 50
    assert max_in_any_window(times, 10.0) <= 150
    rejected = [e for e in audit if e["status"] == 429]
    assert len(rejected) == 1  # the injected one; the limiter itself caused none
    t429 = rejected[0]["t"]
    assert not [t for t in times if t429 + 0.05 < t < t429 + 3.0]
    assert utilisation >= 0.9  # the benchmark reports the exact figure side by side
    assert await store.r.xlen(store.k.results) >= len(times) - 1 - 20 * 4


async def test_a_dial_held_up_after_its_grant_is_granted_again_first(
        redis_server: LocalRedis, ns: str, store: Store, sim: RunningSimulator,
        tmp_path: Path) -> None:
    """A pre-dial hook that answers the fourth second's ten jobs 1.2 s late (the others at
    once) holds those dials longer than the window after their grants, before they are even
    sent: they take a fresh grant (any dial later than a quarter of the window does), or they
    land in a later second's window together with its own ten."""
    from aiohttp import web

    from dispatcher.engine.http import serve

    asked = 0

    async def hook(request: web.Request) -> web.Response:
        nonlocal asked
        asked += 1
        if 30 < asked <= 40:
            await asyncio.sleep(1.2)
        return web.json_response({"allow": True})

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner, port = await serve(app, "127.0.0.1", 0)
    set_key(sim, "telecho", limits=["10/second"])
    sim.sim.cfg.account("acme").max_concurrent_calls = 100_000
    cfg = {"log_format": "json", "log_level": "warning",
           "redis": {"url": redis_server.url, "namespace": ns, "block_ms": 500},
           "worker": {"concurrency": 20, "http_port": 0, "heartbeat_s": 5,
                      "dead_after_s": 10},
           "tracking": {"track_calls": False},
           "policy": {"calling_hours": ["always"],
                      "predial_url": f"http://127.0.0.1:{port}/hook"},
           "providers": {"default": provider_cfg("telecho", sim.url, limits=["10/second"],
                                                 send_margin_s=0.02)}}
    n = 60
    await push(store, *({"id": f"m{i}", "to": f"+1415555{i:04d}"} for i in range(n)))
    procs = spawn_workers(cfg, 1, tmp_path)
    try:
        deadline = time.monotonic() + 40
        while len(sim.sim.audit) < n and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
    finally:
        await asyncio.to_thread(stop_all, procs)
        await runner.cleanup()
    times = [e["t"] for e in sim.sim.audit]
    assert len(times) == n
    assert [e for e in sim.sim.audit if e["status"] == 429] == []
    assert max_in_any_window(times, 1.0) <= 10
