"""What a worker's log says when things go wrong: one line per event, not one per job or per
loop, and lines that carry what an operator needs (where it listens, the probe, the campaign,
the reason a check fails)."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp

from dispatcher.dev.localredis import LocalRedis, free_port
from dispatcher.engine.health import LOG_EVERY_S
from dispatcher.simulator import RunningSimulator
from dispatcher.store import Store
from tests.conftest import provider_cfg
from tests.integration.helpers import push, set_key
from tests.integration.procs import run_logged, spawn_workers, stop_all, wait_for_line, worker_env


def lines(*logs: Path) -> list[dict[str, Any]]:
    out = []
    for log in logs:
        for text in log.read_text().splitlines():
            if text.startswith("{"):
                out.append(json.loads(text))
    return out


async def test_a_revoked_key_is_logged_once_per_worker_and_its_probes_are_marked(
        redis_server: LocalRedis, ns: str, store: Store, sim: RunningSimulator,
        tmp_path: Path) -> None:
    set_key(sim, "telecho", status="revoked")
    cfg = {"log_format": "json", "log_level": "info",
           "redis": {"url": redis_server.url, "namespace": ns, "block_ms": 200},
           "worker": {"concurrency": 20, "http_port": 0},
           "retry": {"halt_probe_s": 0.2, "halt_probe_max_s": 1.6},
           "tracking": {"track_calls": False},
           "providers": {"default": provider_cfg("telecho", sim.url)}}
    await push(store, *({"id": f"h{i}", "to": f"+1415555{i:04d}", "campaign": "spring"}
                        for i in range(40)))
    procs = spawn_workers(cfg, 2, tmp_path)
    try:  # three probes failed: 0.2 s, doubled to 0.4, 0.8, then the cap
        for _ in range(600):
            if (await store.halt_info("default")).get("backoff_ms") == "1600":
                break
            await asyncio.sleep(0.1)
        assert (await store.halt_info("default")).get("backoff_ms") == "1600"
    finally:
        await asyncio.to_thread(stop_all, procs)
    logged = lines(tmp_path / "worker-0.log", tmp_path / "worker-1.log")
    halted = [x for x in logged if x["event"] == "provider.halted"]
    assert 1 <= len(halted) <= 2, len(halted)  # each worker's first sighting at most
    assert all(x["level"] == "error" for x in halted)
    errors = [x["event"] for x in logged if x["level"] == "error"]
    assert len(errors) <= 2, errors
    dialing = [x for x in logged if x["event"] == "call.dialing"]
    assert all("canary" not in x for x in logged)
    assert all(x["campaign"] == "spring" for x in dialing)
    assert len([x for x in dialing if x.get("probe") is True]) >= 3
    assert all(x.get("probe") in (None, True) for x in dialing)


async def ready(port: int) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as s, s.get(f"http://127.0.0.1:{port}/readyz") as r:
        return r.status, await r.json()


async def test_a_redis_outage_is_logged_as_redis_unreachable_and_readyz_says_why(
        own_redis: LocalRedis, ns: str, tmp_path: Path) -> None:
    port = free_port()
    env = worker_env(own_redis.url, ns, DISPATCHER_WORKER__HTTP_PORT=str(port),
                     DISPATCHER_WORKER__SHUTDOWN_GRACE_S="1",
                     DISPATCHER_REDIS__BLOCK_MS="200")
    log = tmp_path / "worker.log"
    proc = run_logged(env, log)
    try:
        started = json.loads(await asyncio.to_thread(wait_for_line, log, "worker.started", proc))
        assert started["http"] == f"0.0.0.0:{port}"
        os.kill(own_redis.proc.pid, signal.SIGSTOP)  # frozen: pings time out
        try:
            status, body = await ready(port)
        finally:
            os.kill(own_redis.proc.pid, signal.SIGCONT)
        assert status == 503
        assert any(p.startswith("redis: ") for p in body["problems"]), body
        assert all(p.split(": ", 1)[-1].strip() for p in body["problems"]), body
        await asyncio.to_thread(own_redis.stop)  # gone
        await asyncio.to_thread(wait_for_line, log, "redis.unreachable", proc)
        status, body = await ready(port)
        assert status == 503
        assert all(p.split(": ", 1)[-1].strip() for p in body["problems"]), body
    finally:
        await asyncio.to_thread(stop_all, [proc])
    logged = lines(log)
    assert [x for x in logged if x["event"] == "loop.error"] == []
    down = [x for x in logged if x["event"] == "redis.unreachable"]
    assert down and all(len(json.dumps(x)) < 600 and "exception" not in x for x in down)
    times = [datetime.fromisoformat(x["timestamp"]) for x in down]
    assert all((b - a).total_seconds() >= LOG_EVERY_S * 0.9 for a, b in itertools.pairwise(times))
