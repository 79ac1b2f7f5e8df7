"""Call policy over real Redis and the simulator: do-not-call, the pre-dial hook, per-number
caps across worker processes, redials, calling windows, and scheduling beyond max_defer_s.

Calling-hours tests choose their zones from the current time (a fixed-offset zone where it is
now midday, or midnight), so nothing depends on the hour at which the suite runs.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import time
from pathlib import Path
from typing import Any

import pytest

from dispatcher.core import timing
from dispatcher.core.limits import max_in_any_window
from dispatcher.dev.localredis import LocalRedis
from dispatcher.simulator import RunningSimulator
from dispatcher.simulator.config import CallSpec
from dispatcher.store import Store
from tests.conftest import RunningWorker, make_settings, provider_cfg, start_worker, wait_results
from tests.integration.helpers import calls_for, creates, push, set_key
from tests.integration.procs import spawn_workers, stop_all

FAST = CallSpec(ring_s=(0.05, 0.1), talk_s=(0.1, 0.2), answer_mix={"human": 1.0})


def zone_at(local_hour: int) -> str:
    """A fixed-offset zone where the local hour is ``local_hour`` right now."""
    now = dt.datetime.now(dt.UTC)
    k = (local_hour - now.hour) % 24
    if k > 14:
        k -= 24
    return "Etc/GMT" if k == 0 else (f"Etc/GMT-{k}" if k > 0 else f"Etc/GMT+{-k}")


def settings(redis: LocalRedis, ns: str, sim: RunningSimulator, dialect: str = "telecho",
             prov: dict[str, Any] | None = None, **sections: dict[str, Any]) -> Any:
    return make_settings(redis.url, ns, {"default": provider_cfg(dialect, sim.url,
                                                                 **(prov or {}))},
                         **sections)


def procs_config(redis: LocalRedis, ns: str, sim: RunningSimulator,
                 policy: dict[str, Any]) -> dict[str, Any]:
    """Worker processes' configuration: always open, no tracking, the given policy."""
    return {"log_format": "json", "log_level": "warning",
            "redis": {"url": redis.url, "namespace": ns, "block_ms": 200},
            "worker": {"concurrency": 10, "http_port": 0, "claim_idle_s": 4, "heartbeat_s": 0.5,
                       "dead_after_s": 2},
            "tracking": {"track_calls": False},
            "policy": {"calling_hours": ["always"], **policy},
            "providers": {"default": provider_cfg("telecho", sim.url, limits=["50/second"])}}


async def test_a_number_on_the_do_not_call_list_is_blocked_without_a_request(
        redis_server: LocalRedis, ns: str, store: Store, sim: RunningSimulator,
        workers: list[RunningWorker]) -> None:
    await store.dnc_add(["+12125550111"])
    start_worker(settings(redis_server, ns, sim, tracking={"track_calls": False}), workers)
    await push(store, {"id": "listed", "to": "+1 212 555 0111"},
               {"id": "free", "to": "+12125550112"})
    results = {r["job_id"]: r for r in await wait_results(store, 2)}
    assert (results["listed"]["outcome"], results["listed"]["reason"]) == ("blocked", "dnc")
    assert results["free"]["outcome"] == "started"
    assert not creates(sim, "listed") and len(creates(sim)) == 1


async def test_the_predial_hook_is_fail_closed(
        redis_server: LocalRedis, ns: str, store: Store, sim: RunningSimulator,
        workers: list[RunningWorker]) -> None:
    spec = sim.sim.cfg.predial
    spec.deny = {"+12125550121": "opted out on the web form"}
    spec.by_number = {"+12125550122": "http_500*2", "+12125550123": "slow",
                      "+12125550124": "garbage"}
    spec.slow_s = 3.0
    policy = {"predial_url": sim.url + "/_sim/predial", "predial_timeout_s": 0.6}
    start_worker(settings(redis_server, ns, sim, tracking={"track_calls": False},
                          policy=policy, retry={"base_delay_s": 0.2, "max_delay_s": 0.4}),
                 workers)
    await push(store, *({"id": f"h{i}", "to": f"+1212555012{i}"} for i in range(5)))
    results = {r["job_id"]: r for r in await wait_results(store, 3, timeout=20)}
    assert results["h0"]["outcome"] == "started"
    assert (results["h1"]["outcome"], results["h1"]["reason"]) == ("blocked", "predial")
    assert results["h1"]["error_message"] == "opted out on the web form"
    assert results["h2"]["outcome"] == "started"  # dialled once the hook answered
    asked = [e for e in sim.sim.predial_log if e["job_id"] == "h2"]
    assert [e["status"] for e in asked[:2]] == [500, 500]  # failed twice: not dialled then
    allowed = [e for e in asked if (e.get("answer") or {}).get("allow")]
    assert allowed and creates(sim, "h2")[0]["t"] > allowed[0]["t"]
    assert len(creates(sim, "h2")) == 1
    await asyncio.sleep(1.5)  # the slow and the garbage hook keep them waiting, never dialled
    assert not creates(sim, "h3") and not creates(sim, "h4")
    assert {"h3", "h4"}.isdisjoint(r["job_id"] for r in await wait_results(store, 3, 0))
    info = await store.job_info("h4")
    assert (info["state"], info["wr"]) == ("delayed", "predial")


async def test_per_number_caps_hold_across_worker_processes(
        redis_server: LocalRedis, ns: str, store: Store, sim: RunningSimulator,
        tmp_path: Path) -> None:
    sim.sim.cfg.calls = FAST
    cfg = procs_config(redis_server, ns, sim, {"max_calls_per_number": ["2/day"]})
    procs = spawn_workers(cfg, 2, tmp_path)
    try:
        # six jobs, different ids, one person; and one job for someone else
        await push(store, *({"id": f"n{i}", "to": "+12125550131"} for i in range(6)),
                   {"id": "other", "to": "+12125550132"})
        results = await wait_results(store, 3, timeout=20)
        await asyncio.sleep(1.0)
    finally:
        await asyncio.to_thread(stop_all, procs)
    dialled = [e for e in creates(sim) if e.get("to") == "+12125550131"]
    assert len(dialled) == 2  # the cap, however many jobs and workers
    assert sorted(r["job_id"] for r in results if r["job_id"] != "other") == sorted(
        e["correlation"] for e in dialled)
    waiting = [await store.job_info(f"n{i}") for i in range(6)]
    capped = [w for w in waiting if w.get("wr") == "number_cap"]
    assert len(capped) == 4 and all(int(w["wu"]) > time.time() * 1000 + 3600_000
                                    for w in capped)


async def test_per_subject_caps_hold_across_numbers_jobs_and_worker_processes(
        redis_server: LocalRedis, ns: str, store: Store, sim: RunningSimulator,
        tmp_path: Path) -> None:
    sim.sim.cfg.calls = FAST
    cfg = procs_config(redis_server, ns, sim, {"max_calls_per_subject": ["3/24h"]})
    procs = spawn_workers(cfg, 3, tmp_path)
    numbers = [f"+1212555016{i}" for i in range(5)]
    try:
        # fifty jobs, fifty ids, five numbers, one person; and one job on another subject
        await push(store, *({"id": f"s{i}", "to": numbers[i % 5], "subject": "lead-77"}
                            for i in range(50)),
                   {"id": "other", "to": numbers[0], "subject": "lead-78"})
        results = await wait_results(store, 4, timeout=30)
        await asyncio.sleep(1.0)
    finally:
        await asyncio.to_thread(stop_all, procs)
    dialled = [e for e in creates(sim) if e.get("correlation", "").startswith("s")]
    assert len(dialled) == 3  # the cap, however many numbers, jobs and workers
    assert {r["job_id"] for r in results} == {e["correlation"] for e in dialled} | {"other"}
    waiting = [await store.job_info(f"s{i}") for i in range(50)]
    capped = [w for w in waiting if w.get("wr") == "subject_cap"]
    assert len(capped) == 47 and all("3 calls to subject lead-77 in the last 24 h" in w["wd"]
                                     for w in capped)


async def test_busy_lines_are_redialled_with_a_new_correlation_id_each_time(
        redis_server: LocalRedis, ns: str, store: Store, sim: RunningSimulator,
        workers: list[RunningWorker]) -> None:
    sim.sim.cfg.calls = CallSpec(ring_s=(0.05, 0.1), talk_s=(0.1, 0.2),
                                 outcome_by_number={"+12125550141": "user_busy"})
    policy = {"redial": {"user_busy": {"after": 1.0, "max": 2}}}
    start_worker(settings(redis_server, ns, sim, "itellico", policy=policy,
                          tracking={"poll_schedule_s": [0.2]}), workers)
    await push(store, {"id": "busy", "to": "+12125550141"})
    [r] = await wait_results(store, 1, timeout=30)
    assert (r["outcome"], r["answer_status"]) == ("ended", "user_busy")
    posts = creates(sim, "busy")
    assert [p["correlation"] for p in posts] == ["busy", "busy~2", "busy~3"]
    assert all(b["t"] - a["t"] >= 1.0 for a, b in itertools.pairwise(posts))
    assert [c["call_id"] for c in r["calls"]] == calls_for(sim, "busy")
    assert all(c["answer_status"] == "user_busy" for c in r["calls"])


async def test_calling_windows_follow_the_recipients_local_time(
        redis_server: LocalRedis, ns: str, store: Store, sim: RunningSimulator,
        workers: list[RunningWorker]) -> None:
    policy = {"calling_hours": ["mon-sun 10:00-14:00"]}
    start_worker(settings(redis_server, ns, sim, tracking={"track_calls": False},
                          policy=policy), workers)
    soon = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)).isoformat()
    await push(store,
               {"id": "midday", "to": "+12125550151", "timezone": zone_at(12)},
               {"id": "midnight", "to": "+12125550152", "timezone": zone_at(0)},
               {"id": "expires", "to": "+12125550153", "timezone": zone_at(0),
                "expires_at": soon},
               {"id": "nowhere", "to": "+80012345678"})
    results = {r["job_id"]: r for r in await wait_results(store, 3)}
    assert results["midday"]["outcome"] == "started"
    assert results["expires"]["reason"] == "window_never_open"
    assert results["nowhere"]["reason"] == "no_timezone"
    info = await store.job_info("midnight")
    opens_in = int(info["wu"]) / 1000 - time.time()
    assert (info["state"], info["wr"]) == ("delayed", "window")
    assert 9 * 3600 < opens_in <= 10 * 3600 + 60 and "10:00" in info["wd"]
    assert not creates(sim, "midnight")


async def test_not_before_beyond_max_defer_is_dialled_when_due(
        redis_server: LocalRedis, ns: str, store: Store, sim: RunningSimulator,
        workers: list[RunningWorker]) -> None:
    start_worker(settings(redis_server, ns, sim, tracking={"track_calls": False},
                          retry={"max_defer_s": 1.0}), workers)
    due = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=3)
    await push(store, {"id": "later", "to": "+12125550161", "not_before": due.isoformat()})
    [r] = await wait_results(store, 1, timeout=15)
    assert r["outcome"] == "started"
    assert creates(sim, "later")[0]["t"] >= due.timestamp()


async def test_a_job_that_slept_until_due_is_dialled(
        redis_server: LocalRedis, ns: str, store: Store, sim: RunningSimulator,
        workers: list[RunningWorker], monkeypatch: pytest.MonkeyPatch) -> None:
    """Packed away on arrival (due in more than the threshold, shrunk here to 1 s), woken by
    its promotion, dialled once."""
    monkeypatch.setattr(timing, "DORMANT_AFTER_S", 1.0)
    start_worker(settings(redis_server, ns, sim, tracking={"track_calls": False}), workers)
    due = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=3)
    await push(store, {"id": "slept", "to": "+12125550162", "not_before": due.isoformat()})
    deadline = time.monotonic() + 5
    while not await store.r.hexists(store.k.dormant, "slept") and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    assert await store.r.hexists(store.k.dormant, "slept")
    assert not await store.r.exists(store.k.job("slept"))
    assert (await store.job_info("slept"))["wr"] == "not_before"
    [r] = await wait_results(store, 1, timeout=15)
    assert r["outcome"] == "started" and len(creates(sim, "slept")) == 1
    assert creates(sim, "slept")[0]["t"] >= due.timestamp()
    assert not await store.r.hexists(store.k.dormant, "slept")


@pytest.mark.parametrize("n", [60])
async def test_a_backlog_released_at_once_is_spread_by_the_limiter(
        redis_server: LocalRedis, ns: str, store: Store, sim: RunningSimulator,
        workers: list[RunningWorker], n: int) -> None:
    # jobs that waited overnight (for a window or a not_before) are released together by
    # the same promotion; the provider's windows still see them spread out
    set_key(sim, "telecho", limits=["20/second"])
    sim.sim.cfg.account("acme").max_concurrent_calls = 10_000  # rate limits only here
    s = settings(redis_server, ns, sim, tracking={"track_calls": False},
                 prov={"limits": ["10/second", "30/5s"]})
    for _ in range(2):
        start_worker(s, workers)
    due = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=2)).isoformat()
    await push(store, *({"id": f"o{i}", "to": f"+1212555{i:04d}", "not_before": due}
                        for i in range(n)))
    results = await wait_results(store, 40, timeout=30)
    assert len(results) >= 40
    times = [e["t"] for e in creates(sim)]
    assert max_in_any_window(times, 1.0) <= 10 and max_in_any_window(times, 5.0) <= 30
    assert not [e for e in sim.sim.audit if e["status"] == 429]
