"""Campaign controls and counts across real worker processes: pause stops every pod at once,
cancel reaches waiting and parked jobs, and the live counts equal a recount of the results
after a worker is killed with SIGKILL."""

from __future__ import annotations

import asyncio
import collections
import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from dispatcher.client import Client
from dispatcher.dev.localredis import LocalRedis
from dispatcher.simulator import RunningSimulator
from dispatcher.simulator.config import CallSpec
from dispatcher.store import Store
from tests.integration.helpers import creates, push
from tests.integration.procs import spawn_workers, stop_all, toml
from tests.integration.test_campaigns import config, fast_sim, job, until


async def results_of(store: Store) -> list[dict[str, Any]]:
    return [json.loads(f["result"]) for _, f in await store.r.xrange(store.k.results)]


def created(sim: RunningSimulator, prefix: str) -> list[dict[str, Any]]:
    return [e for e in creates(sim) if str(e["correlation"]).startswith(prefix)]


async def test_pause_stops_every_pod_at_its_next_grant_and_resume_goes_on(
        redis_server: LocalRedis, ns: str, store: Store, sim: RunningSimulator,
        tmp_path: Path) -> None:
    fast_sim(sim, talk_s=(0.6, 0.9))
    await push(store, *(job(f"{c}{i}", c) for i in range(40) for c in "pq"))
    procs = spawn_workers(config(redis_server, ns, sim, ["16/second"]), 2, tmp_path)
    client = Client(redis_server.url, ns)
    try:
        await until(lambda: len(created(sim, "p")) >= 6, 20)
        await client.pause("p")
        paused_at = time.time()
        await asyncio.sleep(1.0)
        dialled = {e["correlation"] for e in created(sim, "p")}
        deadline = time.monotonic() + 15  # while paused, the live calls reach their end
        while (done := {r["job_id"] for r in await results_of(store)
                        if r["job_id"].startswith("p")}) != dialled:
            assert time.monotonic() < deadline, (done, dialled)
            await asyncio.sleep(0.1)
        during = [e for e in created(sim, "p") if e["t"] > paused_at + 0.3]
        q_during = [e for e in created(sim, "q") if e["t"] > paused_at + 0.3]
        waiting = [await store.job_info(f"p{i}") for i in range(40)
                   if f"p{i}" not in dialled]
        await client.resume("p")
        await until(lambda: len(created(sim, "p")) >= 40, 20)
    finally:
        await client.close()
        await asyncio.to_thread(stop_all, procs)
    assert during == [] and len(q_during) >= 10  # the other campaign kept going
    assert done == dialled  # calls live at the pause were followed to their end
    assert waiting and all(w["state"] == "queued" and w["attempts"] == "0" for w in waiting)


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dispatcher", *args],
                          env={**os.environ, **env}, capture_output=True, text=True,
                          timeout=60, check=False)


async def test_cancel_reaches_queued_delayed_parked_and_later_jobs_until_resume(
        redis_server: LocalRedis, ns: str, store: Store, sim: RunningSimulator,
        tmp_path: Path) -> None:
    fast_sim(sim)
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    await push(store, *(job(f"x{i}", "x") for i in range(20)),
               *({**job(f"xd{i}", "x"), "not_before": later} for i in range(4)),
               *({**job(f"xp{i}", "x"), "provider": "ghost"} for i in range(4)),
               *(job(f"y{i}", "y") for i in range(6)))
    cfg = config(redis_server, ns, sim, ["4/second"])
    procs = spawn_workers(cfg, 2, tmp_path)
    (tmp_path / "cli.toml").write_text(toml(cfg))
    env = {"DISPATCHER_CONFIG": str(tmp_path / "cli.toml")}
    try:
        await until(lambda: len(created(sim, "x")) >= 2, 20)
        out = cli(env, "campaign", "cancel", "x")
        assert out.returncode == 0, out.stderr
        await push(store, *(job(f"xl{i}", "x") for i in range(3)))
        await until(lambda: len(created(sim, "y")) >= 6, 20)
        assert cli(env, "campaign", "resume", "x").returncode == 0
        await push(store, job("xr", "x"))
        await until(lambda: len(created(sim, "xr")) == 1, 20)
        results = await results_of(store)
    finally:
        await asyncio.to_thread(stop_all, procs)
    dialled = {e["correlation"] for e in created(sim, "x")}
    outcome = {r["job_id"]: r["outcome"] for r in results}
    assert "cancelled: " in out.stdout
    for i in range(20):
        assert (f"x{i}" in dialled) != (outcome.get(f"x{i}") == "cancelled"), f"x{i}"
    assert all(outcome[f"xd{i}"] == outcome[f"xp{i}"] == "cancelled" for i in range(4))
    assert all(outcome[f"xl{i}"] == "cancelled" for i in range(3))
    assert "xr" in dialled and not any(outcome.get(f"y{i}") == "cancelled" for i in range(6))


def recount(results: list[dict[str, Any]]) -> dict[str, int]:
    out: collections.Counter[str] = collections.Counter()
    for r in results:
        out["o:" + r["outcome"]] += 1
        if r.get("answer_status"):
            out["a:" + r["answer_status"]] += 1
        out["calls"] += len(r.get("calls") or [])
    out["total"] = len(results)
    return dict(out)


LIVE = ("queued", "delayed", "parked", "dialing", "live", "finishing")


async def test_counts_equal_a_recount_of_the_results_after_a_kill_9(
        redis_server: LocalRedis, ns: str, store: Store, sim: RunningSimulator,
        tmp_path: Path) -> None:
    fast_sim(sim)
    sim.sim.cfg.calls = CallSpec(ring_s=(0.05, 0.2), talk_s=(0.2, 1.0))
    sim.sim.cfg.faults.probability = {"http_503": 0.05}
    await push(store, *(job(f"{c}{i}", c) for i in range(60) for c in "mk"),
               *({**job(f"bad{i}", "m"), "to": "+1999"} for i in range(3)),
               *(job(f"none{i}") for i in range(10)))
    cfg = config(redis_server, ns, sim, ["60/second"],
                 retry={"base_delay_s": 0.1, "max_delay_s": 0.3})
    cfg["worker"].update({"claim_idle_s": 2, "dead_after_s": 2})
    procs = spawn_workers(cfg, 3, tmp_path)
    try:
        await until(lambda: len(creates(sim)) >= 40, 20)
        os.kill(procs[0].pid, signal.SIGKILL)
        n = 133
        deadline = time.monotonic() + 60
        while len(await results_of(store)) < n and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
    finally:
        await asyncio.to_thread(stop_all, procs)
    results = await results_of(store)
    assert len({r["job_id"] for r in results}) == len(results) == n
    for camp in ("m", "k"):
        counts = await store.counts(camp)
        mine = [r for r in results if r.get("campaign") == camp]
        assert {k: v for k, v in counts.items() if v and k not in LIVE} == recount(mine)
        assert all(counts.get(k, 0) == 0 for k in LIVE), counts
    whole = await store.counts()
    assert {k: v for k, v in whole.items() if v and k not in LIVE} == recount(results)
