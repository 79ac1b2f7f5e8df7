"""The core path over real HTTP and real Redis, in both dialects."""

from __future__ import annotations

import asyncio
import itertools
import os
import subprocess
import sys

import pytest

from dispatcher.dev.localredis import LocalRedis
from dispatcher.simulator import RunningSimulator
from dispatcher.store import Store
from tests.conftest import RunningWorker, make_settings, provider_cfg, start_worker, wait_results
from tests.integration.helpers import MISSING_AGENT, calls_for, creates, push, set_key

DIALECTS = ["telecho", "itellico"]
NO_TRACK = {"track_calls": False}


def settings_for(redis: LocalRedis, ns: str, sim: RunningSimulator, dialect: str,
                 **prov: object) -> object:
    return make_settings(redis.url, ns, {"default": provider_cfg(dialect, sim.url, **prov)},
                         tracking=NO_TRACK)


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_unknown_agent_is_rejected_after_one_request(
        redis_server: LocalRedis, ns: str, store: Store, sim: RunningSimulator,
        workers: list[RunningWorker], dialect: str) -> None:
    start_worker(settings_for(redis_server, ns, sim, dialect), workers)  # type: ignore[arg-type]
    await push(store, {"id": "j1", "to": "+14155550100", "agent_id": MISSING_AGENT[dialect]})
    [res] = await wait_results(store, 1)
    assert res["outcome"] == "rejected" and res["http_status"] == 404
    assert res["attempts"] == 1
    assert len(creates(sim, "j1")) == 1 and len(sim.sim.audit) == 1


@pytest.mark.parametrize(("dialect", "fault"), [("telecho", "http_500"),
                                                ("itellico", "http_503")])
async def test_persistent_5xx_is_exhausted_after_max_attempts_with_backoff_gaps(
        redis_server: LocalRedis, ns: str, store: Store, sim: RunningSimulator,
        workers: list[RunningWorker], dialect: str, fault: str) -> None:
    sim.sim.cfg.faults.by_number["+14155550500"] = fault
    settings = settings_for(redis_server, ns, sim, dialect)
    start_worker(settings, workers)  # type: ignore[arg-type]
    await push(store, {"id": "j5", "to": "+14155550500", "max_attempts": 4})
    [res] = await wait_results(store, 1, timeout=20)
    assert res["outcome"] == "exhausted" and res["attempts"] == 4
    assert res["http_status"] == int(fault[5:])
    posts = creates(sim, "j5")
    assert len(posts) == 4
    gaps = [b["t"] - a["t"] for a, b in itertools.pairwise(posts)]
    nominal = [0.2, 0.4, 0.8]  # base 0.2 doubling, capped at 1.0
    for gap, nom in zip(gaps, nominal, strict=True):
        assert gap >= nom / 2 - 0.01, (gaps, nominal)
    assert not calls_for(sim, "j5")


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_429_retry_after_pauses_every_request(
        redis_server: LocalRedis, ns: str, store: Store, sim: RunningSimulator,
        workers: list[RunningWorker], dialect: str) -> None:
    sim.sim.next_faults.append({"fault": "rate_limit", "retry_after": 3, "count": 1})
    settings = settings_for(redis_server, ns, sim, dialect, limits=["1/0.3s"])
    start_worker(settings, workers)  # type: ignore[arg-type]
    start_worker(settings, workers)  # type: ignore[arg-type]
    await push(store, *({"id": f"r{i}", "to": f"+1415555{i:04d}"} for i in range(6)))
    results = await wait_results(store, 6, timeout=20)
    assert sorted(r["outcome"] for r in results) == ["started"] * 6
    audit = sim.sim.audit
    first_429 = next(e for e in audit if e["status"] == 429)
    # requests already on the wire when the 429 was answered may still land; after one
    # round trip (50 ms) nothing may reach the provider until Retry-After has passed
    after = [e["t"] for e in audit if e["t"] > first_429["t"] + 0.05]
    assert min(after) - first_429["t"] >= 3.0
    limited = next(r for r in results if r["job_id"] == first_429["correlation"])
    assert limited["attempts"] == 1  # the 429 was not an attempt


def _resume_cli(redis: LocalRedis, ns: str, sim_url: str) -> str:
    env = {**os.environ, "DISPATCHER_REDIS__URL": redis.url,
           "DISPATCHER_REDIS__NAMESPACE": ns,
           "DISPATCHER_PROVIDERS__DEFAULT__KIND": "telecho",
           "DISPATCHER_PROVIDERS__DEFAULT__BASE_URL": sim_url,
           "DISPATCHER_PROVIDERS__DEFAULT__API_KEY_ENV": "TEST_TELECHO_KEY"}
    out = subprocess.run([sys.executable, "-m", "dispatcher", "resume", "default"], env=env,
                         capture_output=True, text=True, timeout=30, check=True)
    return out.stdout


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_401_halts_the_provider_keeps_jobs_and_resume_continues(
        redis_server: LocalRedis, ns: str, store: Store, sim: RunningSimulator,
        workers: list[RunningWorker], dialect: str) -> None:
    set_key(sim, dialect, status="revoked")
    settings = make_settings(redis_server.url, ns,
                             {"default": provider_cfg(dialect, sim.url)},
                             tracking=NO_TRACK, retry={"halt_probe_s": 60.0})
    start_worker(settings, workers)
    await push(store, *({"id": f"h{i}", "to": f"+1415555{i:04d}"} for i in range(5)))
    for _ in range(100):
        if await store.r.zcard(store.k.parked("default")) == 5:
            break
        await asyncio.sleep(0.05)
    assert await store.r.zcard(store.k.parked("default")) == 5
    halt = await store.halt_info("default")
    assert halt["code"] in ("revoked_api_key", "unauthorized")
    denied = [e["t"] for e in sim.sim.audit if e["status"] == 401]
    assert max(denied) - min(denied) < 0.05  # only requests already on the wire, then none
    assert await store.r.xlen(store.k.results) == 0  # nothing burnt into results
    set_key(sim, dialect, status="valid")
    out = _resume_cli(redis_server, ns, sim.url)
    assert "resumed" in out and "5 parked jobs" in out
    results = await wait_results(store, 5, timeout=15)
    assert sorted(r["outcome"] for r in results) == ["started"] * 5


async def test_halted_provider_resumes_by_itself_after_a_successful_probe(
        redis_server: LocalRedis, ns: str, store: Store, sim: RunningSimulator,
        workers: list[RunningWorker]) -> None:
    sim.sim.cfg.account("acme").blocked = True  # 402 call_blocked: unpaid
    settings = make_settings(redis_server.url, ns,
                             {"default": provider_cfg("telecho", sim.url)},
                             tracking=NO_TRACK, retry={"halt_probe_s": 0.5})
    start_worker(settings, workers)
    await push(store, *({"id": f"p{i}", "to": f"+1415555{i:04d}"} for i in range(4)))
    for _ in range(100):
        if await store.halt_info("default"):
            break
        await asyncio.sleep(0.05)
    assert (await store.halt_info("default"))["code"] == "call_blocked"
    await asyncio.sleep(1.5)  # probes keep failing while the account is blocked
    assert await store.r.xlen(store.k.results) == 0
    sim.sim.cfg.account("acme").blocked = False
    results = await wait_results(store, 4, timeout=15)
    assert sorted(r["outcome"] for r in results) == ["started"] * 4
    assert not await store.halt_info("default")


@pytest.mark.parametrize(("raw", "field"), [
    ('{"id": "bad1", "to": "0800"}', "to"),
    ("not json at all", "job"),
    ('{"id": "bad3", "to": "+14155550100", "agent_id": "a", "workflow_id": "w"}',
     "workflow_id"),
    ('{"id": "bad4", "to": "+14155550100", "provider": "no such"}', "provider"),
])
async def test_invalid_job_gets_one_invalid_result_naming_the_field(
        redis_server: LocalRedis, ns: str, store: Store, sim: RunningSimulator,
        workers: list[RunningWorker], raw: str, field: str) -> None:
    start_worker(settings_for(redis_server, ns, sim, "telecho"), workers)  # type: ignore[arg-type]
    await push(store, raw, {"id": "good", "to": "+14155550100"})
    results = await wait_results(store, 2)
    bad = next(r for r in results if r["job_id"] != "good")
    assert bad["outcome"] == "invalid" and bad["error_message"].startswith(field + ":")
    assert next(r for r in results if r["job_id"] == "good")["outcome"] == "started"
    assert len(creates(sim)) == 1
    assert (await store.r.xpending(store.k.jobs, "workers"))["pending"] == 0


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_same_id_three_times_is_one_call_and_one_result(
        redis_server: LocalRedis, ns: str, store: Store, sim: RunningSimulator,
        workers: list[RunningWorker], dialect: str) -> None:
    settings = settings_for(redis_server, ns, sim, dialect)
    start_worker(settings, workers)  # type: ignore[arg-type]
    start_worker(settings, workers)  # type: ignore[arg-type]
    job = {"id": "dup", "to": "+14155550100"}
    await push(store, job, job, job)
    await wait_results(store, 1)
    await asyncio.sleep(0.5)
    assert len(await wait_results(store, 1)) == 1
    assert len(creates(sim, "dup")) == 1


async def test_cancel_before_dial_gives_cancelled_and_no_call(
        redis_server: LocalRedis, ns: str, store: Store, sim: RunningSimulator,
        workers: list[RunningWorker]) -> None:
    # one request per 2 s: the second job waits inside the worker when it is cancelled
    settings = settings_for(redis_server, ns, sim, "telecho", limits=["1/2s"])
    start_worker(settings, workers)  # type: ignore[arg-type]
    assert await store.cancel("early", 60)  # cancelled before it is even pushed
    await push(store, {"id": "a", "to": "+14155550100"}, {"id": "b", "to": "+14155550101"},
               {"id": "early", "to": "+14155550102"})
    for _ in range(100):
        if creates(sim):
            break
        await asyncio.sleep(0.02)
    first = creates(sim)[0]["correlation"]
    other = "b" if first == "a" else "a"
    assert await store.cancel(other, 60)
    results = {r["job_id"]: r["outcome"] for r in await wait_results(store, 3, timeout=10)}
    assert results == {first: "started", other: "cancelled", "early": "cancelled"}
    assert not creates(sim, other) and not creates(sim, "early")
    assert not await store.cancel(first, 60)  # finished: nothing to cancel


async def test_a_full_provider_window_we_were_not_told_about_pauses_without_a_429(
        redis_server: LocalRedis, ns: str, store: Store, sim: RunningSimulator,
        workers: list[RunningWorker]) -> None:
    set_key(sim, "telecho", limits=["3/2s"])  # the account's real limit
    # configured without that window; 1/0.3s leaves time to read each answer's headers
    settings = settings_for(redis_server, ns, sim, "telecho", limits=["1/0.3s"])
    start_worker(settings, workers)  # type: ignore[arg-type]
    await push(store, *({"id": f"w{i}", "to": f"+1415555{i:04d}"} for i in range(6)))
    results = await wait_results(store, 6, timeout=15)
    assert sorted(r["outcome"] for r in results) == ["started"] * 6
    assert not [e for e in sim.sim.audit if e["status"] == 429]


async def test_an_invalid_copy_of_a_job_under_way_does_not_add_a_result(
        redis_server: LocalRedis, ns: str, store: Store, sim: RunningSimulator,
        workers: list[RunningWorker]) -> None:
    start_worker(settings_for(redis_server, ns, sim, "telecho"), workers)  # type: ignore[arg-type]
    await push(store, {"id": "twin", "to": "+14155550100"}, {"id": "twin", "to": "garbage"},
               {"id": "solo", "to": "garbage"}, {"id": "solo", "to": "garbage"})
    await wait_results(store, 2)
    await asyncio.sleep(0.5)
    results = {r["job_id"]: r["outcome"] for r in await wait_results(store, 2)}
    assert await store.r.xlen(store.k.results) == 2
    # whichever copy a worker saw first owns the id; the other adds nothing
    assert results["solo"] == "invalid" and results["twin"] in ("started", "invalid")
    assert len(creates(sim, "twin")) == (1 if results["twin"] == "started" else 0)
