"""Campaigns across real worker processes sharing one scarce budget: priority order, fair
share by weight, a small campaign behind a large one, per-campaign call caps."""

from __future__ import annotations

import asyncio
import collections
import time
from pathlib import Path
from typing import Any

from dispatcher.dev.localredis import LocalRedis
from dispatcher.simulator import RunningSimulator
from dispatcher.simulator.config import CallSpec
from dispatcher.store import Store
from tests.conftest import provider_cfg
from tests.integration.helpers import creates, push, set_key
from tests.integration.procs import spawn_workers, stop_all


def fast_sim(sim: RunningSimulator, talk_s: tuple[float, float] = (0.1, 0.3)) -> None:
    """The simulated provider never limits: only the dispatcher's own budget does."""
    set_key(sim, "telecho", limits=["1000/second"])
    sim.sim.cfg.account("acme").max_concurrent_calls = 1000
    sim.sim.cfg.calls = CallSpec(ring_s=(0.05, 0.1), talk_s=talk_s)


def config(redis: LocalRedis, ns: str, sim: RunningSimulator, limits: list[str],
           **over: Any) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "log_format": "json", "log_level": "warning",
        "redis": {"url": redis.url, "namespace": ns, "block_ms": 100},
        "worker": {"concurrency": 20, "http_port": 0, "claim_idle_s": 5, "heartbeat_s": 0.5,
                   "promote_interval_s": 0.05},
        "tracking": {"poll_schedule_s": [0.2, 0.3]},
        "providers": {"default": provider_cfg("telecho", sim.url, limits=limits,
                                              max_concurrent_calls=over.pop("cap", 100))}}
    cfg.update(over)
    return cfg


def job(job_id: str, campaign: str | None = None, priority: str | None = None
        ) -> dict[str, Any]:
    out: dict[str, Any] = {"id": job_id, "to": "+14155550100"}
    if campaign:
        out["campaign"] = campaign
    if priority:
        out["priority"] = priority
    return out


async def until(check: Any, timeout: float, step: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(step)


def created_ids(sim: RunningSimulator) -> list[str]:
    return [str(e["correlation"]) for e in creates(sim)]


async def event_ms(store: Store, job_id: str, event: str) -> int:
    return next(int(e["t"]) for e in await store.timeline(job_id) if e["e"] == event)


async def test_a_high_job_pushed_behind_a_backlog_is_dialled_at_the_next_grant(
        redis_server: LocalRedis, ns: str, store: Store, sim: RunningSimulator,
        tmp_path: Path) -> None:
    fast_sim(sim)
    interval_ms = 250  # one grant per 200 ms window, plus the 50 ms send margin
    await push(store, *(job(f"n{i}") for i in range(16)))
    cfg = config(redis_server, ns, sim, ["1/0.2s"], tracking={"track_calls": False})
    procs = spawn_workers(cfg, 2, tmp_path)  # no status polls: every grant is a dial
    try:
        await until(lambda: len(creates(sim)) >= 3, 20)
        await push(store, *(job(f"l{i}", priority="low") for i in range(3)),
                   job("h", priority="high"))
        await until(lambda: len(creates(sim)) >= 20, 30)
    finally:
        await asyncio.to_thread(stop_all, procs)
    claimed, granted = await event_ms(store, "h", "claimed"), await event_ms(store, "h",
                                                                           "granted")
    assert granted - claimed <= interval_ms + 100
    between = [i for i in range(16)
               if claimed < await event_ms(store, f"n{i}", "granted") < granted]
    assert between == []  # no normal job went first once the high one was known
    order = created_ids(sim)
    assert max(order.index(f"n{i}") for i in range(16)) < min(
        order.index(f"l{i}") for i in range(3))  # normal before low


async def test_shares_1_to_3_split_a_scarce_budget_25_75(
        redis_server: LocalRedis, ns: str, store: Store, sim: RunningSimulator,
        tmp_path: Path) -> None:
    fast_sim(sim)
    await push(store, *(job(f"{c}{i}", c) for i in range(300) for c in "ab"))
    cfg = config(redis_server, ns, sim, ["50/second"],
                 campaigns={"a": {"share": 1}, "b": {"share": 3}})
    procs = spawn_workers(cfg, 2, tmp_path)
    try:
        await until(lambda: len(creates(sim)) >= 200, 30)
    finally:
        await asyncio.to_thread(stop_all, procs)
    first = collections.Counter(i[0] for i in created_ids(sim)[:200])
    assert abs(first["a"] / 200 - 0.25) <= 0.05, first
    assert abs(first["b"] / 200 - 0.75) <= 0.05, first


async def ingested(store: Store, timeout: float = 30) -> None:
    """Every entry pushed so far is in line (INGEST deletes an entry once it placed it)."""
    deadline = time.monotonic() + timeout
    while await store.r.xlen(store.k.jobs):
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def test_a_small_campaign_pushed_after_a_large_one_goes_out_within_a_window(
        redis_server: LocalRedis, ns: str, store: Store, sim: RunningSimulator,
        tmp_path: Path) -> None:
    """Counted in grants, not seconds: once the small campaign's jobs are in line, at most
    what was already granted (one window, 40, plus a batch on its way) of the big backlog
    (9,960 waiting) goes before its first call."""
    fast_sim(sim)
    await push(store, *(job(f"big{i}", "big") for i in range(10_000)))
    procs = spawn_workers(config(redis_server, ns, sim, ["40/second"]), 2, tmp_path)
    try:
        await until(lambda: len(creates(sim)) >= 40, 30)
        await ingested(store)
        await push(store, *(job(f"small{i}", "small") for i in range(50)))
        await ingested(store)
        in_line = len(creates(sim))
        small = lambda: [e for e in creates(sim)  # noqa: E731
                         if str(e["correlation"]).startswith("small")]
        await until(lambda: len(small()) >= 50, 30)
    finally:
        await asyncio.to_thread(stop_all, procs)
    first_small = next(i for i, c in enumerate(created_ids(sim)) if c.startswith("small"))
    assert first_small - in_line <= 2 * 40
    window = [e for e in creates(sim) if small()[0]["t"] <= e["t"] <= small()[-1]["t"]]
    share = sum(str(e["correlation"]).startswith("small") for e in window) / len(window)
    assert 0.4 <= share <= 0.6  # equal shares while both have jobs ready


def max_overlap(spans: list[tuple[float, float]]) -> int:
    points = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    live = peak = 0
    for _, d in points:
        live += d
        peak = max(peak, live)
    return peak


async def test_a_campaign_call_cap_holds_inside_the_provider_cap(
        redis_server: LocalRedis, ns: str, store: Store, sim: RunningSimulator,
        tmp_path: Path) -> None:
    fast_sim(sim, talk_s=(0.4, 0.6))
    await push(store, *(job(f"{c}{i}", c) for i in range(12) for c in "cd"))
    cfg = config(redis_server, ns, sim, ["100/second"], cap=6,
                 campaigns={"c": {"max_concurrent_calls": 2}})
    procs = spawn_workers(cfg, 2, tmp_path)
    try:
        await until(lambda: sum(c.ended_at < time.time() for c in sim.sim.calls.values())
                    >= 24, 40)
    finally:
        await asyncio.to_thread(stop_all, procs)
    calls = list(sim.sim.calls.values())
    capped = [(c.created, c.ended_at) for c in calls if str(c.correlation).startswith("c")]
    assert len(capped) == 12
    assert max_overlap(capped) == 2
    assert max_overlap([(c.created, c.ended_at) for c in calls]) <= 6
