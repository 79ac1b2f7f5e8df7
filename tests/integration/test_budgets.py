"""Campaign budgets against real Redis, on a fixed clock: a campaign is dialled only while
today's billed spend plus its live calls' worst case plus one more call's stays within the
budget; at the budget its jobs wait (reason budget) until the next day."""

from __future__ import annotations

from typing import Any

import pytest

from dispatcher.core.budgets import MICRO, billed_micro, budget_day, parse_budget, worst_micro
from dispatcher.store import Store
from dispatcher.store.types import GrantReply
from tests.integration.test_scripts import NOW, grant_args, ingested

DAY_MS = 86_400_000
WORST = worst_micro(1.0, 120, 60)  # 1 a minute, calls of at most 2 minutes: 2


def camps(day: str, nxt: int) -> dict[str, Any]:
    return {"c1": {"share": 1, "budget": parse_budget("5/day"), "bday": day, "bnext": nxt}}


async def grant(store: Store, at: int, rid: str, day: str, nxt: int) -> GrantReply:
    args = {**grant_args(k=10, tok=rid), "wins": [[1000, 1000]], "caps": [], "slot_cap": 0,
            "camps": camps(day, nxt), "worst": WORST, "hold_ms": 180_000}
    res = await store.s.call("grant", at, rid=rid, grants=[args])
    return GrantReply.decode(res["grants"][0])


async def promote(store: Store, at: int) -> None:
    await store.s.call("promote", at, src="delayed", top="now", limit=100,
                       max_defer=3 * DAY_MS)


async def spent(store: Store, day: str, at: int) -> int:
    billed = int(await store.r.hget(store.k.spend("c1"), day) or 0)
    holds = await store.r.zrangebyscore(store.k.budget_holds("c1"), f"({at}", "+inf")
    return billed + sum(int(h.split("|")[0]) for h in holds)


async def test_a_budget_is_never_passed_and_turns_with_the_day(store: Store) -> None:
    await ingested(store, 3)
    await ingested_more(store)
    d1, d2 = "2027-01-15", "2027-01-16"
    first = await grant(store, NOW, "g1", d1, NOW + DAY_MS)
    assert len(first.jobs) == 2  # 0 + 2 + 2 = 4; a third would make 6
    assert await spent(store, d1, NOW) == 2 * WORST <= 5 * MICRO
    assert await store.r.hget(store.k.job("j2"), "wr") == "budget"
    # the first call ends after a minute: 1 billed instead of 2 held
    assert await store.bill("c1", d1, first.jobs[0].id, WORST, "call-a",
                            billed_micro(55, 1.0, 60))
    assert not await store.bill("c1", d1, first.jobs[0].id, WORST, "call-a", MICRO)  # once
    await promote(store, NOW + 30_000)
    second = await grant(store, NOW + 30_000, "g2", d1, NOW + DAY_MS)
    assert len(second.jobs) == 1  # 1 + 2 + 2 = 5
    assert await spent(store, d1, NOW + 30_000) <= 5 * MICRO
    for job, call in ((first.jobs[1], "call-b"), (second.jobs[0], "call-c")):
        await store.bill("c1", d1, job.id, WORST, call, billed_micro(100, 1.0, 60))
    assert await store.spend("c1", d1) == (5 * MICRO, 0)  # 1 + 2 + 2 billed
    await promote(store, NOW + 60_000)
    third = await grant(store, NOW + 60_000, "g3", d1, NOW + DAY_MS)
    assert third.jobs == ()
    due = await store.r.zscore(store.k.delayed, "j3")
    assert due == NOW + DAY_MS  # nothing left today: the next day
    await promote(store, NOW + DAY_MS)
    fourth = await grant(store, NOW + DAY_MS, "g4", d2, NOW + 2 * DAY_MS)
    assert len(fourth.jobs) == 2


async def ingested_more(store: Store) -> None:
    """Three more jobs of campaign c1 (j3..j5)."""
    import json

    from dispatcher.store.keys import GROUP
    from tests.integration.test_scripts import job_args
    await store.enqueue([{"id": f"j{i}", "to": "+14155550100"} for i in range(3, 6)])
    entries = [eid for eid, _ in await store.read("w1", 3, 10)]
    await store.s.call("ingest", NOW, group=GROUP, grants=[], entries=[
        job_args(f"j{i + 3}", e, raw=json.dumps({"id": f"j{i + 3}"}))
        for i, e in enumerate(entries)])


def test_the_budget_day_turns_at_midnight_in_its_zone() -> None:
    from datetime import UTC, datetime
    at = round(datetime(2027, 1, 16, 4, 30, tzinfo=UTC).timestamp() * 1000)  # 23:30 in NY
    ny_next = round(datetime(2027, 1, 16, 5, 0, tzinfo=UTC).timestamp() * 1000)
    assert budget_day(at, "America/New_York") == ("2027-01-15", ny_next)
    assert budget_day(at, "UTC")[0] == "2027-01-16"


async def test_workers_bill_ended_calls_and_stop_at_the_budget(
        redis_server: Any, ns: str, store: Store, sim: Any, workers: Any,
        tmp_path: Any) -> None:
    """Budget 3 a day at 1 a minute, calls of at most 2 minutes: one call at a time (1 + 2
    <= 3), each billed a minute when it ends; after two, 2 + 2 > 3: the rest wait."""
    import asyncio
    import json

    from tests.conftest import ITL_AGENT, make_settings, provider_cfg, start_worker
    from tests.integration.helpers import push
    from tests.integration.procs import toml
    from tests.integration.test_cli import cli
    sim.sim.cfg.calls.ring_s = (0.05, 0.1)
    sim.sim.cfg.calls.talk_s = (0.05, 0.1)
    sim.sim.cfg.calls.answer_mix = {"human": 1.0}
    prov = provider_cfg("itellico", sim.url, agent_id=ITL_AGENT, price_per_minute=1.0,
                        max_call_s=120)
    camp = {"spring": {"budget": "3/day"}}
    start_worker(make_settings(redis_server.url, ns, {"default": prov}, campaigns=camp),
                 workers)
    await push(store, *({"id": f"j{i}", "to": f"+1212555{i:04d}", "campaign": "spring"}
                        for i in range(4)))
    for _ in range(400):
        counts = await store.r.hgetall(store.k.campaign("spring"))
        if counts.get("w:budget") == "2" and counts.get("o:ended") == "2":
            break
        await asyncio.sleep(0.05)
    creates = [e for e in sim.sim.audit if e["method"] == "POST"]
    assert len(creates) == 2 and counts.get("w:budget") == "2", counts
    path = tmp_path / "c.toml"
    path.write_text(toml({"redis": {"url": redis_server.url, "namespace": ns},
                          "providers": {"default": prov}, "campaigns": camp}))
    out = cli("campaign", "status", "spring", "--json", "--config", str(path))
    spend = json.loads(out.stdout)["spend"]
    assert (spend["billed"], spend["live_worst_case"], spend["budget"]) == (2, 0, 3)


@pytest.mark.parametrize(("kind", "report"), [("itellico", True), ("telecho", True),
                                              ("itellico", False)])
async def test_spend_is_the_billed_duration_the_provider_reports(
        redis_server: Any, ns: str, store: Store, sim: Any, workers: Any, kind: str,
        report: bool) -> None:
    """The carrier bills in 30-s steps, the file says 60: a call the provider reports billed
    at 30 s costs half a minute; without a reported figure the dispatcher rounds the call's
    duration to its own 60-s step (the file is then what is wrong, not the spend)."""
    import asyncio

    import aiohttp

    from tests.conftest import make_settings, provider_cfg, start_worker
    from tests.integration.helpers import push
    sim.sim.cfg.calls.ring_s = (0.05, 0.1)
    sim.sim.cfg.calls.talk_s = (0.05, 0.1)
    sim.sim.cfg.calls.answer_mix = {"human": 1.0}
    acct = sim.sim.cfg.account("acme")
    acct.billing_increment_s, acct.report_billed = 30, report
    prov = provider_cfg(kind, sim.url, price_per_minute=1.0, billing_increment_s=60,
                        max_call_s=120)
    start_worker(make_settings(redis_server.url, ns, {"default": prov},
                               campaigns={"spring": {"budget": "100/day"}}), workers)
    await push(store, *({"id": f"j{i}", "to": f"+1212555{i:04d}", "campaign": "spring"}
                        for i in range(4)))
    for _ in range(400):
        if (await store.r.hget(store.k.campaign("spring"), "o:ended")) == "4":
            break
        await asyncio.sleep(0.05)
    async with aiohttp.ClientSession() as http, http.get(sim.url + "/_sim/calls") as r:
        truth = (await r.json())["calls"]
    assert len(truth) == 4 and all(0 < c["duration_seconds"] < 1 for c in truth)
    carrier = sum(c["billed_seconds"] for c in truth) / 60 * MICRO  # 4 x 30 s
    spent_all = sum(int(v) for v in (await store.r.hgetall(store.k.spend("spring"))).values())
    assert carrier == 2 * MICRO
    assert spent_all == (carrier if report else 4 * MICRO)
