"""``POST /v1/optout`` on a worker's HTTP server, over real HTTP, Redis and the simulator: a
person who says "don't call me again" during a call is never rung again, by any job or worker."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp

from dispatcher.dev.localredis import LocalRedis
from dispatcher.simulator import RunningSimulator
from dispatcher.simulator.config import CallSpec
from dispatcher.store import Store
from tests.conftest import RunningWorker, make_settings, provider_cfg, start_worker, wait_results
from tests.integration.helpers import creates, push

NUMBER = "+12125550171"
TOKEN = "s3cret-optout-token"


def settings(redis: LocalRedis, ns: str, sim: RunningSimulator, tmp: Path | None,
             **policy: Any) -> Any:
    optout = {}
    if tmp is not None:
        (tmp / "optout-token").write_text(TOKEN + "\n")
        optout = {"token_file": str(tmp / "optout-token")}
    return make_settings(redis.url, ns, {"default": provider_cfg("itellico", sim.url)},
                         tracking={"poll_schedule_s": [0.2]}, optout=optout,
                         policy={"calling_hours": ["always"], **policy})


async def post(w: RunningWorker, body: Any, token: str | None = TOKEN) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as s, s.post(
            f"http://127.0.0.1:{w.worker.http_port}/v1/optout", json=body,
            headers=headers) as resp:
        return resp.status, await resp.json()


async def until(check: Any, timeout: float = 20.0) -> None:
    for _ in range(int(timeout / 0.02)):
        if await check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not reached")


async def test_an_optout_during_a_live_call_stops_every_further_call_to_the_number(
        redis_server: LocalRedis, ns: str, store: Store, sim: RunningSimulator,
        workers: list[RunningWorker], tmp_path: Path) -> None:
    sim.sim.cfg.calls = CallSpec(ring_s=(0.1, 0.1), talk_s=(1.5, 1.5),
                                 outcome_by_number={NUMBER: "machine"})
    cfg = settings(redis_server, ns, sim, tmp_path,
                   redial={"machine": {"after": "4s", "max": 3}})
    w1, _ = start_worker(cfg, workers), start_worker(cfg, workers)
    await push(store, {"id": "b", "to": NUMBER})
    await until(lambda: _is(store, "b", wr="redial"))  # b's redial is scheduled
    await push(store, {"id": "a", "to": NUMBER})
    await until(lambda: _is(store, "a", state="tracking"))  # a's call is live
    status, body = await post(w1, {"to": "+1 212-555-0171", "via": "said stop on the call"})
    assert (status, body["revoked"]) == (200, True)
    before = len(creates(sim))
    assert before == 2
    await push(store, {"id": "c", "to": NUMBER})  # queued after the opt-out
    results = {r["job_id"]: r for r in await wait_results(store, 3, timeout=30)}
    assert len(creates(sim)) == before  # no further call from any job, any worker
    for job in ("a", "b"):
        assert (results[job]["outcome"], results[job]["reason"]) == ("blocked", "dnc")
        assert len(results[job]["calls"]) == 1
    assert (results["c"]["outcome"], results["c"]["reason"]) == ("blocked", "dnc")
    [shown] = await store.consent_history(NUMBER)
    assert shown.via == "said stop on the call"


async def _is(store: Store, job: str, **want: str) -> bool:
    info = await store.job_info(job)
    return all(info.get(k) == v for k, v in want.items())


async def test_an_optout_needs_the_token_and_a_well_formed_number_and_changes_nothing_else(
        redis_server: LocalRedis, ns: str, store: Store, sim: RunningSimulator,
        workers: list[RunningWorker], tmp_path: Path) -> None:
    w = start_worker(settings(redis_server, ns, sim, tmp_path), workers)
    off = start_worker(settings(redis_server, ns, sim, None), workers)
    await until(lambda: _up(w, off))
    assert (await post(w, {"to": NUMBER}, token=None))[0] == 401
    assert (await post(w, {"to": NUMBER}, token="wrong"))[0] == 401
    status, body = await post(w, {"to": "555-0171", "via": "call"})
    assert status == 400 and body["error"].startswith("to: ")
    status, body = await post(w, {"to": NUMBER, "why": "x"})
    assert status == 400 and body["error"].startswith("why: unknown field")
    status, body = await post(w, {"to": NUMBER, "via": 7})
    assert status == 400 and body["error"].startswith("via: ")
    assert (await post(off, {"to": NUMBER}))[0] == 404
    assert await store.consent_history(NUMBER) == []
    assert await store.dnc_check([NUMBER]) == [False]


async def _up(*ws: RunningWorker) -> bool:
    return all(w.worker.ready for w in ws)
