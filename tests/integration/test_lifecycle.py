"""Following calls to their end, and never dialling twice when an answer is lost."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from typing import Any

import aiohttp
import pytest

from dispatcher.core.limits import max_in_any_window
from dispatcher.dev.localredis import LocalRedis
from dispatcher.simulator import RunningSimulator
from dispatcher.simulator.config import CallSpec
from dispatcher.store import Store
from tests.conftest import RunningWorker, make_settings, provider_cfg, start_worker, wait_results
from tests.integration.helpers import calls_for, creates, push, set_key

FAST_CALLS = CallSpec(ring_s=(0.05, 0.3), talk_s=(0.1, 0.8), error_reason_p=0.05)


async def started(w: RunningWorker) -> int:
    for _ in range(200):
        if w.worker.ready:
            return w.worker.http_port
        await asyncio.sleep(0.02)
    raise AssertionError("worker did not start")


async def run_mix(redis: LocalRedis, ns: str, store: Store, sim: RunningSimulator,
                  workers: list[RunningWorker], dialect: str, n: int,
                  **prov: Any) -> list[dict[str, Any]]:
    sim.sim.cfg.calls = FAST_CALLS
    sim.sim.cfg.account("acme").max_concurrent_calls = 1000
    set_key(sim, dialect, limits=["200/second"])
    cfg = provider_cfg(dialect, sim.url, limits=["150/second"], **prov)
    w = start_worker(make_settings(redis.url, ns, {"default": cfg},
                                   worker={"concurrency": 50}), workers)
    port = await started(w)
    sim.sim.cfg.account("acme").webhook_url = f"http://127.0.0.1:{port}/webhooks/default"
    await push(store, *({"id": f"m{i}", "to": f"+1415555{i:04d}"} for i in range(n)))
    return await wait_results(store, n, timeout=60)


def assert_matches_truth(sim: RunningSimulator, results: list[dict[str, Any]]) -> None:
    truth = {c.correlation: c for c in sim.sim.calls.values()}
    for r in results:
        call = truth[r["job_id"]]
        t = call.truth()
        assert r["outcome"] == "ended", r
        assert (r["call_id"], r["answer_status"], r["disconnection_reason"]) == \
            (t["call_id"], t["answer_status"], t["disconnection_reason"]), (r, t)
        assert r["duration_seconds"] == pytest.approx(t["duration_seconds"], abs=0.01)
    assert len({c.correlation for c in sim.sim.calls.values()}) == len(sim.sim.calls)


@pytest.mark.parametrize("dialect", ["telecho", "itellico"])
async def test_results_match_the_providers_ground_truth(
        redis_server: LocalRedis, ns: str, store: Store, sim: RunningSimulator,
        workers: list[RunningWorker], dialect: str) -> None:
    prov = {"webhook_secret_env": "TEST_WEBHOOK_SECRET"} if dialect == "itellico" else {}
    results = await run_mix(redis_server, ns, store, sim, workers, dialect, 150, **prov)
    # network_error/provider_error before an answer are retried as a new call: compare the
    # final call of each job with the result
    retried = {c.correlation for c in sim.sim.calls.values()
               if c.reason in ("network_error", "provider_error")
               and c.answer not in ("human", "machine")}
    final = {r["job_id"]: r for r in results}
    assert len(final) == 150 == len(results)
    assert_matches_truth_final(sim, final, retried)
    answers = {r["answer_status"] for r in results}
    assert {"human", "machine", "user_busy", "user_unavailable"} <= answers
    if dialect == "itellico":
        assert sim.sim.webhook_log, "webhooks were delivered"


def assert_matches_truth_final(sim: RunningSimulator, final: dict[str, Any],
                               retried: set[str | None]) -> None:
    by_job: dict[str | None, list[Any]] = {}
    for cid in sim.sim.order:
        c = sim.sim.calls[cid]
        by_job.setdefault(c.correlation, []).append(c)
    for job_id, r in final.items():
        calls = by_job[job_id]
        if job_id not in retried:
            assert len(calls) == 1, (job_id, calls)
        t = calls[-1].truth()
        assert r["outcome"] == "ended", r
        assert (r["call_id"], r["answer_status"], r["disconnection_reason"]) == \
            (t["call_id"], t["answer_status"], t["disconnection_reason"]), (r, t)
        assert r["duration_seconds"] == pytest.approx(t["duration_seconds"], abs=0.01)


def _sign(body: bytes, ts: str, secret: str = "whsec_demo") -> str:
    return hmac.new(secret.encode(), body + b"." + ts.encode(), hashlib.sha256).hexdigest()


async def test_forged_or_stale_webhooks_are_rejected_and_duplicates_give_one_result(
        redis_server: LocalRedis, ns: str, store: Store, sim: RunningSimulator,
        workers: list[RunningWorker]) -> None:
    sim.sim.cfg.faults.webhook_duplicates = 2  # every event delivered three times
    results = await run_mix(redis_server, ns, store, sim, workers, "itellico", 10,
                            webhook_secret_env="TEST_WEBHOOK_SECRET")
    assert len(results) == 10
    await asyncio.sleep(1.0)
    assert await store.r.xlen(store.k.results) == 10
    deliveries = [x for x in sim.sim.webhook_log if x["ok"]]
    assert len(deliveries) >= 20  # duplicates really were delivered and accepted
    port = workers[0].worker.http_port
    url = f"http://127.0.0.1:{port}/webhooks/default"
    body = json.dumps({"event_id": "evt_x", "event_type": "conversation.ended",
                       "data": {"conversation_uuid": "c1", "status": "completed"}}).encode()
    now = str(int(time.time()))
    async with aiohttp.ClientSession() as s:
        forged = {"X-Itellico-Signature": _sign(body, now, "wrong"),
                  "X-Itellico-Timestamp": now}
        stale_ts = str(int(time.time()) - 600)
        stale = {"X-Itellico-Signature": _sign(body, stale_ts), "X-Itellico-Timestamp": stale_ts}
        good = {"X-Itellico-Signature": _sign(body, now), "X-Itellico-Timestamp": now}
        for headers, status in ((forged, 401), (stale, 401), ({}, 401), (good, 200)):
            async with s.post(url, data=body, headers=headers) as r:
                assert r.status == status, (headers, await r.text())


async def test_a_webhook_that_never_comes_is_covered_by_polling(
        redis_server: LocalRedis, ns: str, store: Store, sim: RunningSimulator,
        workers: list[RunningWorker]) -> None:
    sim.sim.cfg.faults.webhook_drop_p = 1.0
    results = await run_mix(redis_server, ns, store, sim, workers, "itellico", 10,
                            webhook_secret_env="TEST_WEBHOOK_SECRET")
    assert len(results) == 10 and not sim.sim.webhook_log
    assert all(r["outcome"] == "ended" for r in results)
    polls = [e for e in sim.sim.audit if e["method"] == "GET" and e["path"].count("/") == 5]
    assert polls


async def test_polls_and_starts_together_stay_within_the_limits(
        redis_server: LocalRedis, ns: str, store: Store, sim: RunningSimulator,
        workers: list[RunningWorker]) -> None:
    sim.sim.cfg.calls = FAST_CALLS
    sim.sim.cfg.account("acme").max_concurrent_calls = 1000
    set_key(sim, "telecho", limits=["20/second", "100/10s"])
    cfg = provider_cfg("telecho", sim.url, limits=["20/second", "100/10s"])
    s = make_settings(redis_server.url, ns, {"default": cfg})
    for _ in range(2):
        start_worker(s, workers)
    await push(store, *({"id": f"l{i}", "to": f"+1415555{i:04d}"} for i in range(40)))
    results = await wait_results(store, 40, timeout=60)
    assert len(results) == 40
    audit = sim.sim.audit
    polls = [e for e in audit if e["method"] == "GET"]
    assert polls and not [e for e in audit if e["status"] == 429]
    times = [e["t"] for e in audit]
    assert max_in_any_window(times, 1.0) <= 20
    assert max_in_any_window(times, 10.0) <= 100


@pytest.mark.parametrize(("dialect", "fault"), [
    ("telecho", "reset_after_create"), ("telecho", "timeout_after_create"),
    ("telecho", "malformed_json"), ("itellico", "reset_after_create"),
    ("itellico", "timeout_after_create"), ("itellico", "conflict"),
    ("telecho", "http_500"), ("itellico", "http_502")])
async def test_lost_answers_are_reconciled_into_exactly_one_call(
        redis_server: LocalRedis, ns: str, store: Store, sim: RunningSimulator,
        workers: list[RunningWorker], dialect: str, fault: str) -> None:
    sim.sim.cfg.calls = FAST_CALLS
    sim.sim.cfg.faults.hang_s = 3.0  # longer than the 2 s client timeout
    numbers = [f"+1415555{i:04d}" for i in range(6)]
    for num in numbers:
        sim.sim.cfg.faults.by_number[num] = fault + "*1"  # the first request only
    if fault.startswith("http_"):
        # a 5xx after the call was created: make the simulator create it first
        sim.sim.cfg.faults.by_number.clear()
    cfg = provider_cfg(dialect, sim.url)
    start_worker(make_settings(redis_server.url, ns, {"default": cfg}), workers)
    if fault.startswith("http_"):
        sim.sim.next_faults.append({"fault": fault, "count": 3})
    await push(store, *({"id": f"f{i}", "to": n} for i, n in enumerate(numbers)))
    results = await wait_results(store, 6, timeout=40)
    assert len(results) == 6
    for i in range(6):
        assert len(calls_for(sim, f"f{i}")) == 1, (i, creates(sim, f"f{i}"))
    assert all(r["outcome"] == "ended" for r in results)
    await asyncio.sleep(0.5)
    assert await store.r.xlen(store.k.results) == 6


async def test_itellico_concurrency_limit_requeues_without_spending_an_attempt(
        redis_server: LocalRedis, ns: str, store: Store, sim: RunningSimulator,
        workers: list[RunningWorker]) -> None:
    sim.sim.cfg.calls = CallSpec(ring_s=(0.1, 0.2), talk_s=(0.5, 0.8),
                                 answer_mix={"human": 1.0})
    sim.sim.cfg.account("acme").max_concurrent_calls = 2
    # the dispatcher believes the plan allows 4: the provider refuses the excess
    cfg = provider_cfg("itellico", sim.url, max_concurrent_calls=4)
    start_worker(make_settings(redis_server.url, ns, {"default": cfg}), workers)
    await push(store, *({"id": f"c{i}", "to": f"+1415555{i:04d}"} for i in range(8)))
    results = await wait_results(store, 8, timeout=60)
    assert sorted(r["outcome"] for r in results) == ["ended"] * 8
    assert all(r["answer_status"] == "human" for r in results)
    refused = [c for c in sim.sim.calls.values() if c.reason == "concurrency_limit"]
    assert refused, "the scenario must hit the provider's limit"
    assert all(r["attempts"] == 1 for r in results)


async def test_call_slots_keep_live_calls_under_the_cap(
        redis_server: LocalRedis, ns: str, store: Store, sim: RunningSimulator,
        workers: list[RunningWorker]) -> None:
    sim.sim.cfg.calls = CallSpec(ring_s=(0.1, 0.2), talk_s=(0.3, 0.6),
                                 answer_mix={"human": 1.0})
    set_key(sim, "telecho", limits=["1000/minute"])
    cfg = provider_cfg("telecho", sim.url, max_concurrent_calls=5)
    s = make_settings(redis_server.url, ns, {"default": cfg})
    for _ in range(3):
        start_worker(s, workers)
    await push(store, *({"id": f"s{i}", "to": f"+1415555{i:04d}"} for i in range(25)))
    results = await wait_results(store, 25, timeout=60)
    assert len(results) == 25
    calls = list(sim.sim.calls.values())
    edges = sorted([(c.created, 1) for c in calls] + [(c.ended_at, -1) for c in calls])
    live = peak = 0
    for _, step in edges:
        live += step
        peak = max(peak, live)
    assert peak <= 5
    assert not [e for e in sim.sim.audit if e["code"] == "concurrency_limit"]


async def test_a_call_whose_end_is_never_learned_is_given_up(
        redis_server: LocalRedis, ns: str, store: Store, sim: RunningSimulator,
        workers: list[RunningWorker]) -> None:
    sim.sim.cfg.calls = CallSpec(ring_s=(0.1, 0.1), talk_s=(3600, 3600),
                                 answer_mix={"human": 1.0})
    cfg = provider_cfg("telecho", sim.url, max_concurrent_calls=3)
    start_worker(make_settings(redis_server.url, ns, {"default": cfg},
                               tracking={"max_track_s": 1.0}), workers)
    await push(store, {"id": "forever", "to": "+14155550100"})
    [r] = await wait_results(store, 1, timeout=20)
    assert (r["outcome"], r["answer_status"]) == ("ended", "unknown")
    assert await store.r.zcard(store.k.slots("default")) == 0


async def test_network_error_before_an_answer_is_retried_as_a_new_call(
        redis_server: LocalRedis, ns: str, store: Store, sim: RunningSimulator,
        workers: list[RunningWorker]) -> None:
    sim.sim.cfg.calls = CallSpec(ring_s=(0.1, 0.2), talk_s=(0.2, 0.3),
                                 answer_mix={"human": 1.0},
                                 outcome_by_number={"+14155550177": "unknown:network_error"})
    cfg = provider_cfg("itellico", sim.url)
    start_worker(make_settings(redis_server.url, ns, {"default": cfg}), workers)
    await push(store, {"id": "net", "to": "+14155550177", "max_attempts": 2})
    [r] = await wait_results(store, 1, timeout=20)
    calls = calls_for(sim, "net")
    assert len(calls) == 2  # the failed dial and one retry, each a new call
    assert (r["outcome"], r["attempts"], r["error_code"]) == ("exhausted", 2, "network_error")


async def test_deferral_is_bounded_by_max_defer_s(
        redis_server: LocalRedis, ns: str, store: Store, sim: RunningSimulator,
        workers: list[RunningWorker]) -> None:
    settings = make_settings(redis_server.url, ns, {"default": provider_cfg("telecho", sim.url)},
                             retry={"max_defer_s": 1.0}, tracking={"track_calls": False})
    await store.set_cooldown("default", 30_000)  # e.g. a long Retry-After
    start_worker(settings, workers)
    await push(store, {"id": "old", "to": "+14155550100"})
    [r] = await wait_results(store, 1, timeout=10)
    assert r["outcome"] == "exhausted" and "max_defer_s" in r["reason"]
    assert r["attempts"] == 0 and not sim.sim.audit


async def test_telecho_reconciliation_pages_past_newer_calls(
        redis_server: LocalRedis, ns: str, store: Store, sim: RunningSimulator,
        workers: list[RunningWorker]) -> None:
    sim.sim.cfg.calls = FAST_CALLS
    sim.sim.cfg.account("acme").max_concurrent_calls = 10_000
    sim.sim.cfg.faults.hang_s = 3.0  # the create answer never arrives within 2 s
    sim.sim.cfg.faults.by_number["+14155550142"] = "timeout_after_create*1"
    set_key(sim, "telecho", limits=["10000/minute"])
    start_worker(make_settings(redis_server.url, ns,
                               {"default": provider_cfg("telecho", sim.url)}), workers)
    await push(store, {"id": "buried", "to": "+14155550142"})
    while not calls_for(sim, "buried"):
        await asyncio.sleep(0.01)
    headers = {"Authorization": "Bearer tel_live_demo_key_0001"}
    async with aiohttp.ClientSession() as s:
        for i in range(150):  # another system on the same account keeps dialling
            async with s.post(sim.url + "/api/v1/public/calls/outbound", headers=headers,
                              json={"phone_number_id": "tel_pn_main",
                                    "destination_number": f"+1650555{i:04d}"}) as r:
                assert r.status == 201
    [r] = await wait_results(store, 1, timeout=20)
    assert r["outcome"] == "ended" and len(calls_for(sim, "buried")) == 1
    pages = [e for e in sim.sim.audit if e["method"] == "GET" and e["path"].endswith("/calls")]
    assert len(pages) >= 2  # the newest page did not hold the call


async def test_live_calls_are_polled_while_a_backlog_of_dials_waits_for_the_same_budget(
        redis_server: LocalRedis, ns: str, store: Store, sim: RunningSimulator,
        workers: list[RunningWorker]) -> None:
    sim.sim.cfg.calls = CallSpec(ring_s=(0.1, 0.2), talk_s=(0.3, 0.5),
                                 answer_mix={"human": 1.0})
    sim.sim.cfg.account("acme").max_concurrent_calls = 1000
    set_key(sim, "telecho", limits=["6/second"])
    cfg = provider_cfg("telecho", sim.url, limits=["6/second"])
    start_worker(make_settings(redis_server.url, ns, {"default": cfg},
                               tracking={"poll_schedule_s": [1.0, 0.5]}), workers)
    await push(store, *({"id": f"b{i}", "to": f"+1415555{i:04d}"} for i in range(40)))
    results = await wait_results(store, 40, timeout=60)
    assert len(results) == 40
    last_dial = max(e["t"] for e in creates(sim))
    polls_before = [e for e in sim.sim.audit if e["method"] == "GET" and e["t"] < last_dial]
    # calls that ended during the backlog were followed then, not after it
    assert len(polls_before) >= 15, len(polls_before)
