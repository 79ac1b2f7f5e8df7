"""Poison input, misconfiguration and outages never stall the queue or burn jobs."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import socket
import time

import aiohttp

from dispatcher.dev.localredis import LocalRedis
from dispatcher.simulator import RunningSimulator, start_simulator
from dispatcher.simulator.config import CallSpec, SimConfig
from dispatcher.store import Store
from tests.conftest import RunningWorker, make_settings, provider_cfg, start_worker, wait_results
from tests.integration.helpers import creates, push, set_key

NO_TRACK = {"track_calls": False}


async def pending(store: Store) -> int:
    return int((await store.r.xpending(store.k.jobs, "workers"))["pending"])


async def test_an_entry_that_is_not_utf8_gets_a_result_and_stalls_nobody(
        redis_server: LocalRedis, ns: str, store: Store, sim: RunningSimulator,
        workers: list[RunningWorker]) -> None:
    start_worker(make_settings(redis_server.url, ns, {"default": provider_cfg(
        "telecho", sim.url)}, tracking=NO_TRACK), workers)
    await store.raw.xadd(store.k.jobs, {b"job": b'{"id": "x\xff\xfe", "to": "+1"}'})
    await push(store, *({"id": f"u{i}", "to": f"+1212555{i:04d}"} for i in range(10)))
    results = await wait_results(store, 11)
    bad = [r for r in results if r["job_id"] is None]
    assert len(bad) == 1 and bad[0]["outcome"] == "invalid"
    assert bad[0]["error_message"].startswith("job:")
    assert sorted(r["outcome"] for r in results if r["job_id"]) == ["started"] * 10
    assert await pending(store) == 0


async def test_deep_nesting_and_huge_metadata_end_once_as_small_invalid_results(
        redis_server: LocalRedis, ns: str, store: Store, sim: RunningSimulator,
        workers: list[RunningWorker]) -> None:
    start_worker(make_settings(redis_server.url, ns, {"default": provider_cfg(
        "telecho", sim.url)}, tracking=NO_TRACK), workers)
    deep = '{"id": "deep", "to": "+12125550100", "metadata": {"a": ' + "[" * 100_000 + \
        "]" * 100_000 + "}}"
    huge = json.dumps({"id": "huge", "to": "+12125550100", "metadata": {"x": "y" * 1_000_000}})
    await push(store, deep, huge, {"id": "fine", "to": "+12125550101"})
    results = await wait_results(store, 3)
    await asyncio.sleep(0.5)
    assert len(await wait_results(store, 3, 0)) == 3  # not redelivered
    by = {r["job_id"]: r for r in results}
    assert by["fine"]["outcome"] == "started"
    for r in results:
        if r["job_id"] != "fine":
            assert r["outcome"] == "invalid" and len(json.dumps(r)) < 2000
    assert await pending(store) == 0


async def test_a_wrong_base_url_halts_the_provider_instead_of_rejecting_jobs(
        redis_server: LocalRedis, ns: str, store: Store, sim: RunningSimulator,
        workers: list[RunningWorker]) -> None:
    cfg = provider_cfg("telecho", sim.url + "/api/v2/public")  # a typo in the path
    start_worker(make_settings(redis_server.url, ns, {"default": cfg}, tracking=NO_TRACK,
                               retry={"halt_probe_s": 60.0}), workers)
    await push(store, *({"id": f"w{i}", "to": f"+1212555{i:04d}"} for i in range(5)))
    for _ in range(100):
        if (await store.counts()).get("parked") == 5:
            break
        await asyncio.sleep(0.05)
    halt = await store.halt_info("default")
    assert halt and halt["code"] == "http_404"
    assert (await store.counts()).get("parked") == 5
    assert await store.r.xlen(store.k.results) == 0


async def test_an_unreachable_provider_opens_its_circuit_and_spends_no_attempts(
        redis_server: LocalRedis, ns: str, store: Store,
        workers: list[RunningWorker]) -> None:
    hold = socket.socket()  # the port is ours, but nothing listens: connections are refused
    hold.bind(("127.0.0.1", 0))
    port = hold.getsockname()[1]
    cfg = provider_cfg("telecho", f"http://127.0.0.1:{port}")
    start_worker(make_settings(redis_server.url, ns, {"default": cfg}, tracking=NO_TRACK,
                               retry={"base_delay_s": 0.05, "max_delay_s": 0.1,
                                      "halt_probe_s": 1.0, "halt_probe_max_s": 1.0,
                                      "max_attempts": 2}), workers)
    await push(store, *({"id": f"c{i}", "to": f"+1212555{i:04d}"} for i in range(8)))
    for _ in range(200):
        if (await store.halt_info("default")).get("code") == "circuit_open":
            break
        await asyncio.sleep(0.05)
    assert (await store.halt_info("default"))["code"] == "circuit_open"
    await asyncio.sleep(1.0)
    assert await store.r.xlen(store.k.results) == 0  # nothing burnt into "exhausted"
    hold.close()
    sim = await start_simulator(SimConfig(), port=port)  # the provider is back
    try:
        results = await wait_results(store, 8, timeout=20)
    finally:
        await sim.stop()
    assert sorted(r["outcome"] for r in results) == ["started"] * 8
    assert all(r["attempts"] == 1 for r in results)
    assert not await store.halt_info("default")


async def test_jobs_of_an_unconfigured_provider_wait_parked_until_it_is_configured(
        redis_server: LocalRedis, ns: str, store: Store, sim: RunningSimulator,
        workers: list[RunningWorker]) -> None:
    tel = provider_cfg("telecho", sim.url)
    start_worker(make_settings(redis_server.url, ns, {"default": tel}, tracking=NO_TRACK),
                 workers)
    await push(store, *({"id": f"e{i}", "to": f"+1212555{i:04d}", "provider": "eu"}
                        for i in range(3)))
    for _ in range(100):
        if (await store.counts()).get("w:unknown_provider") == 3:
            break
        await asyncio.sleep(0.05)
    assert (await store.counts()).get("w:unknown_provider") == 3
    assert await store.r.xlen(store.k.results) == 0
    from dispatcher.ops.status import collect, render
    status = await collect(store, make_settings(redis_server.url, ns, {"default": tel}))
    assert status["unconfigured"] == {"eu": 3}
    assert "provider eu: NOT CONFIGURED; 3 jobs parked" in render(status)
    # the operator configures it (a new rollout) and resumes it
    both = {"default": tel, "eu": provider_cfg("itellico", sim.url)}
    await workers.pop().stop()
    start_worker(make_settings(redis_server.url, ns, both, tracking=NO_TRACK), workers)
    assert await store.unpark("eu") == 3
    results = await wait_results(store, 3)
    assert sorted(r["outcome"] for r in results) == ["started"] * 3


async def test_resume_polls_calls_tracked_during_a_halt_at_once(
        redis_server: LocalRedis, ns: str, store: Store, sim: RunningSimulator,
        workers: list[RunningWorker]) -> None:
    sim.sim.cfg.calls = CallSpec(ring_s=(0.05, 0.1), talk_s=(0.5, 0.6),
                                 answer_mix={"human": 1.0})
    start_worker(make_settings(redis_server.url, ns, {"default": provider_cfg(
        "telecho", sim.url)}, tracking={"poll_schedule_s": [0.2]}), workers)
    await push(store, {"id": "live", "to": "+12125550100"})
    while not await store.r.zscore(store.k.tracking("default"), "live"):
        await asyncio.sleep(0.02)
    await store.halt("default", "key revoked", "revoked_api_key", 600_000, 600_000)
    await asyncio.sleep(1.0)  # the call ended meanwhile; polls wait for the halt
    assert not await wait_results(store, 1, 0)
    await store.unpark("default")
    [r] = await wait_results(store, 1, timeout=3)  # not after the old probe time (10 min)
    assert r["outcome"] == "ended"


def _sign(body: bytes, ts: str, secret: str = "whsec_demo") -> str:
    return hmac.new(secret.encode(), body + b"." + ts.encode(), hashlib.sha256).hexdigest()


async def test_webhooks_with_a_nan_timestamp_or_deep_nesting_are_refused(
        redis_server: LocalRedis, ns: str, store: Store, sim: RunningSimulator,
        workers: list[RunningWorker]) -> None:
    cfg = provider_cfg("itellico", sim.url, webhook_secret_env="TEST_WEBHOOK_SECRET")
    w = start_worker(make_settings(redis_server.url, ns, {"default": cfg}), workers)
    while not w.worker.ready:
        await asyncio.sleep(0.02)
    url = f"http://127.0.0.1:{w.worker.http_port}/webhooks/default"
    deep = ('{"event_id": "e", "event_type": "conversation.ended", "data": ' + "[" * 50_000
            + "]" * 50_000 + "}").encode()
    now = str(int(time.time()))
    async with aiohttp.ClientSession() as s:
        async with s.post(url, data=b"{}", headers={"X-Itellico-Timestamp": "nan",
                                                    "X-Itellico-Signature": _sign(b"{}",
                                                                                  "nan")}) as r:
            assert r.status == 401
        async with s.post(url, data=deep, headers={"X-Itellico-Timestamp": now,
                                                   "X-Itellico-Signature": _sign(deep, now)}
                          ) as r:
            assert r.status == 400


async def test_redrive_puts_exhausted_jobs_back_after_a_fix(
        redis_server: LocalRedis, ns: str, store: Store, sim: RunningSimulator,
        workers: list[RunningWorker]) -> None:
    sim.sim.cfg.faults.by_number = {"+12125550177": "http_503"}
    start_worker(make_settings(redis_server.url, ns, {"default": provider_cfg(
        "telecho", sim.url)}, tracking=NO_TRACK), workers)
    await push(store, {"id": "r1", "to": "+12125550177", "max_attempts": 2})
    [first] = await wait_results(store, 1)
    assert first["outcome"] == "exhausted"
    assert await store.redrive(["r1"], ["exhausted"], dry=True) == [("r1", "would")]
    assert await store.r.xlen(store.k.results) == 1
    sim.sim.cfg.faults.by_number = {}  # the outage is over
    assert await store.redrive(["r1"], ["exhausted"], dry=False) == [("r1", "redriven")]
    results = await wait_results(store, 2)
    assert [r["outcome"] for r in results] == ["exhausted", "started"]
    assert len(creates(sim, "r1")) == 3
    assert any(e["e"] == "redriven" for e in await store.timeline("r1"))


async def test_a_full_window_of_the_whole_account_is_obeyed(
        redis_server: LocalRedis, ns: str, store: Store, sim: RunningSimulator,
        workers: list[RunningWorker]) -> None:
    set_key(sim, "telecho", limits=["2/second"])
    start_worker(make_settings(redis_server.url, ns, {"default": provider_cfg(
        "telecho", sim.url, limits=["2/second"])}, tracking=NO_TRACK), workers)
    await push(store, *({"id": f"a{i}", "to": f"+1212555{i:04d}"} for i in range(6)))
    assert len(await wait_results(store, 6, timeout=10)) == 6
    assert not [e for e in sim.sim.audit if e["status"] == 429]
