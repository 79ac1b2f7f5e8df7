"""Caller-ID pools against real Redis and the simulator: the grant script chooses a caller
ID per call atomically with its caps, `local` keeps the destination's area code, a job's own
`from` wins, and the simulator refuses a caller ID the account does not own."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from dispatcher.core.callerids import CallerIdPool, choose
from dispatcher.dev.localredis import LocalRedis
from dispatcher.simulator import RunningSimulator
from dispatcher.store import Store
from dispatcher.store.keys import GROUP
from dispatcher.store.types import GrantReply
from tests.conftest import ITL_AGENT, RunningWorker, make_settings, provider_cfg, start_worker
from tests.integration.helpers import push, set_key
from tests.integration.procs import spawn_workers, stop_all
from tests.integration.test_scripts import NOW, grant_args, job_args

POOL_5 = [("tel_pn_nyc", "+12125550100"), ("tel_pn_sfo", "+14155550100"),
          ("tel_pn_mia", "+13055550100"), ("tel_pn_bos", "+16175550100"),
          ("tel_pn_bkn", "+17185550100")]
AREAS = ["212", "415", "305", "617", "718", "347", "512", "206"]  # 347: NY; 512, 206: no pool


def pool(selection: str = "local", caps: list[str] | None = None,
         ids: list[tuple[str, str]] = POOL_5) -> CallerIdPool:
    return CallerIdPool.model_validate({"selection": selection, "caps": caps or [],
                                        "numbers": [{"id": i, "number": n} for i, n in ids]})


def dest(i: int) -> str:
    return f"+1{AREAS[i % len(AREAS)]}555{i:04d}"


async def ingest(store: Store, jobs: list[dict[str, Any]]) -> None:
    await store.enqueue(jobs)
    entries = [eid for eid, _ in await store.read("w1", len(jobs), 10)]
    await store.s.call("ingest", NOW, group=GROUP, grants=[], entries=[
        job_args(j["id"], e, to=j["to"], dk=j["to"], raw=json.dumps(j))
        for j, e in zip(jobs, entries, strict=True)])


async def grant_all(store: Store, cid: dict[str, Any], at: int = NOW) -> list[GrantReply]:
    out = []
    for step in range(40):
        args = {**grant_args(k=50, tok=f"g{at}.{step}"), "wins": [[100_000, 1000]],
                "caps": [], "slot_cap": 0, "cid": cid}
        res = await store.s.call("grant", at, rid=f"g{at}.{step}", grants=[args])
        reply = GrantReply.decode(res["grants"][0])
        out.append(reply)
        if not reply.jobs:
            return out
    return out


async def test_caps_hold_per_caller_id_and_the_rest_wait_with_caller_id_cap(
        store: Store) -> None:
    jobs = [{"id": f"j{i}", "to": dest(i)} for i in range(200)]
    await ingest(store, jobs)
    replies = await grant_all(store, pool(caps=["20/day"]).grant_args())
    used = Counter(g.caller_id for r in replies for g in r.jobs)
    assert sum(used.values()) == 100 and set(used.values()) == {20}
    counts = await store.r.hgetall(store.k.counts)
    assert counts.get("w:caller_id_cap") == "100"
    waiting = await store.r.hget(store.k.job("j199"), "wr")
    assert waiting == "caller_id_cap"
    # a day later the caps have freed: the waiting jobs are granted again
    await store.s.call("promote", NOW + 86_400_001, src="delayed", top="now", limit=500,
                       max_defer=86_400_000 * 2)
    later = await grant_all(store, pool(caps=["20/day"]).grant_args(), at=NOW + 86_400_001)
    assert sum(len(r.jobs) for r in later) == 100


async def test_local_takes_the_area_code_then_the_region_then_any(store: Store) -> None:
    """One call per destination, so use never decides: the tier alone does."""
    jobs = [{"id": f"j{i}", "to": dest(i)} for i in range(len(AREAS))]
    await ingest(store, jobs)
    cid = pool().grant_args()
    replies = await grant_all(store, cid)
    chosen = {g.id: g.caller_id for r in replies for g in r.jobs}
    table = {dest(i)[2:5]: chosen[f"j{i}"] for i in range(len(AREAS))}
    print("\narea code -> caller ID: " + ", ".join(f"{a} -> {c}" for a, c in table.items()))
    assert table == {"212": "tel_pn_nyc", "415": "tel_pn_sfo", "305": "tel_pn_mia",
                     "617": "tel_pn_bos", "718": "tel_pn_bkn",
                     "347": "tel_pn_nyc",   # NY, no 347 in the pool: a NY one (ties: order)
                     "512": "tel_pn_sfo", "206": "tel_pn_mia"}  # anywhere: the least used
    used: Counter[str] = Counter()
    for i in range(len(AREAS)):  # the reference model makes the same choices in order
        ref = choose(cid, dest(i), used)
        assert ref == chosen[f"j{i}"]
        used[ref] += 1


async def test_rotate_spreads_calls_evenly_and_a_jobs_own_from_wins(store: Store) -> None:
    jobs = [{"id": f"j{i}", "to": "+12125551234"} for i in range(50)]
    jobs.append({"id": "own", "to": "+12125551234", "from": "tel_pn_main"})
    await ingest(store, jobs)
    replies = await grant_all(store, pool("rotate").grant_args())
    got = {g.id: g.caller_id for r in replies for g in r.jobs}
    assert got.pop("own") is None  # its own from goes out; no pool caller ID is used
    assert set(Counter(got.values()).values()) == {10}


# -- against the simulator ------------------------------------------------------------------
def own(sim: RunningSimulator, ids: list[tuple[str, str]]) -> None:
    sim.sim.cfg.account("acme").caller_ids.update(dict(ids))


async def test_four_workers_never_take_a_caller_id_past_its_cap(
        redis_server: LocalRedis, ns: str, store: Store, sim: RunningSimulator,
        tmp_path: Path) -> None:
    own(sim, POOL_5)
    set_key(sim, "telecho", limits=["100/second"])
    sim.sim.cfg.account("acme").max_concurrent_calls = 100_000
    prov = provider_cfg("telecho", sim.url, limits=["100/second"])
    prov["caller_ids"] = {"selection": "local", "caps": ["20/day"],
                          "numbers": [{"id": i, "number": n} for i, n in POOL_5]}
    cfg = {"log_format": "json", "log_level": "warning",
           "redis": {"url": redis_server.url, "namespace": ns, "block_ms": 500},
           "worker": {"concurrency": 20, "http_port": 0, "heartbeat_s": 1},
           "tracking": {"track_calls": False}, "providers": {"default": prov}}
    await push(store, *({"id": f"j{i}", "to": dest(i)} for i in range(200)))
    procs = spawn_workers(cfg, 4, tmp_path)
    try:
        for _ in range(1200):
            counts = await store.r.hgetall(store.k.counts)
            if int(counts.get("w:caller_id_cap", 0)) + len(sim.sim.audit) >= 200:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # nothing more may go out
    finally:
        await asyncio.to_thread(stop_all, procs)
    creates = [e for e in sim.sim.audit if e["method"] == "POST"]
    per_caller = Counter(e["caller"] for e in creates if e["status"] == 201)
    counts = await store.r.hgetall(store.k.counts)
    print(f"\ncalls per caller ID: {dict(per_caller)}; waiting with caller_id_cap: "
          f"{counts.get('w:caller_id_cap')}")
    assert len(creates) == 100 and sum(per_caller.values()) == 100
    assert max(per_caller.values()) <= 20
    assert counts.get("w:caller_id_cap") == "100"


async def test_every_call_names_its_caller_id_and_the_area_code_is_kept(
        redis_server: LocalRedis, ns: str, store: Store, sim: RunningSimulator,
        workers: list[RunningWorker]) -> None:
    """itellicoAI: the pool's numbers are sent as from_number; each call in the result
    names the one it used."""
    numbers = [("+12125550100", "+12125550100"), ("+14155550101", "+14155550101")]
    own(sim, numbers)
    sim.sim.cfg.calls.ring_s = (0.05, 0.1)
    sim.sim.cfg.calls.talk_s = (0.05, 0.1)
    prov = provider_cfg("itellico", sim.url, agent_id=ITL_AGENT)
    prov["caller_ids"] = {"numbers": [{"number": n} for n, _ in numbers]}
    start_worker(make_settings(redis_server.url, ns, {"default": prov}), workers)
    await push(store, {"id": "ny", "to": "+12125559876"}, {"id": "sf", "to": "+14155559876"})
    from tests.conftest import wait_results
    results = {r["job_id"]: r for r in await wait_results(store, 2)}
    assert results["ny"]["calls"][0]["from"] == "+12125550100"
    assert results["sf"]["calls"][0]["from"] == "+14155550101"
    sent = {e["to"]: e["caller"] for e in sim.sim.audit if e["method"] == "POST"}
    assert sent == {"+12125559876": "+12125550100", "+14155559876": "+14155550101"}


async def test_the_simulator_refuses_a_caller_id_the_account_does_not_own(
        sim: RunningSimulator) -> None:
    from tests.integration.test_simulator import IK, TEL, TK, call, itl_body, tel_body
    sim.sim.cfg.resources["tel_pn_spare"] = "active"  # exists, but not this account's
    status, _, body = await call(sim, "POST", TEL + "/calls/outbound", TK,
                                 tel_body(phone_number_id="tel_pn_spare"))
    assert (status, body["error"]["code"]) == (404, "phone_number_not_found")
    own(sim, [("tel_pn_spare", "+12125550111")])
    status, _, body = await call(sim, "POST", TEL + "/calls/outbound", TK,
                                 tel_body(phone_number_id="tel_pn_spare"))
    assert status == 201 and body["phone_number"] == "+12125550111"
    status, _, body = await call(sim, "POST", "/v1/accounts/me/calls", IK,
                                 itl_body(from_number="+12125550100"))
    assert status == 422 and [e["field"] for e in body["errors"]] == ["from_number"]


# -- health ---------------------------------------------------------------------------------
async def test_a_low_answer_rate_flags_once_rests_and_recovers(store: Store) -> None:
    """flag_min_calls = 4, flag_answer_rate = 0.5, rest_flagged: the flag changes once when
    the rate falls (and the caller ID is rested), not again while it stays low, and once
    more when it recovers."""
    changes = []
    outcomes = [True, False, False, False, False, False, True, True, True]
    for i, answered in enumerate(outcomes):
        res = await store.caller_id_ended("p", "tel_pn_a", f"c{i}", answered=answered,
                                          keep=4, rate=0.5, rest=True)
        if res.changed:
            changes.append((i, res.flagged, res.rested))
    assert changes == [(3, True, True), (7, False, False)]
    again = await store.caller_id_ended("p", "tel_pn_a", "c8", answered=True, keep=4,
                                        rate=0.5, rest=True)
    assert not again.changed and again.recent == 4  # a call counted twice counts once
    [h] = await store.caller_id_health("p", ["tel_pn_a"])
    assert (h.calls, h.answered, h.rested, h.flagged_since_ms) == (9, 4, True, None)
    assert h.answer_rate == 0.75


async def test_a_rested_caller_id_is_skipped_until_restored(store: Store) -> None:
    jobs = [{"id": f"j{i}", "to": "+12125551234"} for i in range(6)]
    await ingest(store, jobs)
    await store.caller_id_rest("p", "tel_pn_nyc", rest=True)
    replies = await grant_all(store, pool().grant_args())
    assert "tel_pn_nyc" not in {g.caller_id for r in replies for g in r.jobs}
    await store.caller_id_rest("p", "tel_pn_nyc", rest=False)
    await ingest(store, [{"id": "k0", "to": "+12125551234"}])
    [first, *_] = await grant_all(store, pool().grant_args(), at=NOW + 1)
    assert [g.caller_id for g in first.jobs] == ["tel_pn_nyc"]  # its area code again


async def test_a_worker_logs_a_flag_once_and_a_rested_pool_makes_jobs_wait(
        redis_server: LocalRedis, ns: str, store: Store, sim: RunningSimulator,
        workers: list[RunningWorker], capsys: pytest.CaptureFixture[str]) -> None:
    number = "+12125550100"
    own(sim, [(number, number)])
    sim.sim.cfg.calls.ring_s = (0.05, 0.1)
    sim.sim.cfg.calls.answer_mix = {"user_unavailable": 1.0}  # nobody answers
    prov = provider_cfg("itellico", sim.url, agent_id=ITL_AGENT)
    prov["caller_ids"] = {"numbers": [{"number": number}], "flag_answer_rate": 0.5,
                          "flag_min_calls": 3, "rest_flagged": True}
    start_worker(make_settings(redis_server.url, ns, {"default": prov}), workers)
    capsys.readouterr()
    await push(store, *({"id": f"j{i}", "to": f"+1212555{i:04d}"} for i in range(6)))
    from tests.conftest import wait_results
    assert len(await wait_results(store, 6)) == 6
    await push(store, {"id": "later", "to": "+12125559999"})
    for _ in range(200):
        if await store.r.hget(store.k.job("later"), "wr") == "caller_id_cap":
            break
        await asyncio.sleep(0.05)
    assert await store.r.hget(store.k.job("later"), "wr") == "caller_id_cap"
    logged = capsys.readouterr().out.splitlines()
    assert sum(1 for line in logged if "caller_id.flagged" in line) == 1
    # under `from`, a phone key the configured logs mask (tests/unit/test_logs.py)
    assert [line for line in logged if "caller_id.flagged" in line and "from=" in line]
    [h] = await store.caller_id_health("default", [number])
    assert h.rested and h.calls == 6 and h.answered == 0
