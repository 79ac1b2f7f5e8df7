"""The campaign rules of the GRANT and CAMPAIGN scripts, one script call at a time against a
real Redis with a pinned clock: priority order, fair share by pass, pause, cancel."""

from __future__ import annotations

import collections
import json
from typing import Any

from dispatcher.store import Store
from dispatcher.store.keys import GROUP
from dispatcher.store.scripts import as_list

NOW = 1_800_000_000_000


def grant_args(k: int, tok: str, camps: dict[str, Any] | None = None,
               prov: str = "p") -> dict[str, Any]:
    return {"prov": prov, "wins": [[100_000, 1000]], "margin": 0, "slot_cap": 0,
            "lease": 60_000, "caps": [], "caps_keep": 0, "camps": camps or {"~": {}},
            "dnc": False, "k": k, "consumer": "w1", "tok": tok}


async def ingest(store: Store, jobs: list[tuple[str, str, str]], prov: str = "p",
                 now: int = NOW) -> None:
    """Push and ingest jobs given as (id, campaign, priority), all ready."""
    await store.enqueue([{"id": i, "to": "+14155550100"} for i, _, _ in jobs])
    entries = [eid for eid, _ in await store.read("w1", len(jobs), 10)]
    args = [{"e": e, "id": i, "raw": json.dumps({"id": i, "to": "+14155550100"}),
             "prov": prov, "prio": prio, "camp": camp, "to": "+14155550100", "dk": "",
             "exp": 0, "place": "queued", "reason": "", "due": 0, "deadline": 0, "fin": ""}
            for e, (i, camp, prio) in zip(entries, jobs, strict=True)]
    await store.s.call("ingest", now, group=GROUP, entries=args, grants=[])


async def grant(store: Store, k: int, tok: str, camps: dict[str, Any] | None = None,
                now: int = NOW, prov: str = "p") -> dict[str, Any]:
    res = await store.s.call("grant", now, rid=tok, grants=[grant_args(k, tok, camps, prov)])
    out: dict[str, Any] = res["grants"][0]
    return out


def ids(reply: dict[str, Any]) -> list[str]:
    return [j["id"] for j in reply["jobs"] or []]


async def test_priority_is_strict_high_then_normal_then_low(store: Store) -> None:
    await ingest(store, [(f"l{i}", "c", "low") for i in range(3)]
                 + [(f"n{i}", "c", "normal") for i in range(3)]
                 + [("h0", "c", "high")])
    order = [i for n in range(7) for i in ids(await grant(store, 1, f"g{n}"))]
    assert order == ["h0", "n0", "n1", "n2", "l0", "l1", "l2"]


async def test_shares_1_to_3_split_grants_1_to_3(store: Store) -> None:
    await ingest(store, [(f"a{i}", "a", "normal") for i in range(200)]
                 + [(f"b{i}", "b", "normal") for i in range(200)])
    camps = {"a": {"share": 1}, "b": {"share": 3}}
    got = [i for n in range(100) for i in ids(await grant(store, 1, f"g{n}", camps))]
    split = collections.Counter(i[0] for i in got)
    assert split == {"a": 25, "b": 75}


async def test_a_small_campaign_pushed_after_a_large_one_is_served_at_once(
        store: Store) -> None:
    await ingest(store, [(f"big{i}", "big", "normal") for i in range(1000)])
    for n in range(50):
        await grant(store, 1, f"g{n}")
    await ingest(store, [(f"small{i}", "small", "normal") for i in range(10)])
    got = [i for n in range(20) for i in ids(await grant(store, 1, f"h{n}"))]
    assert sum(i.startswith("small") for i in got) == 10  # one in two grants


async def test_a_resumed_campaign_has_not_saved_up_grants_while_paused(store: Store) -> None:
    await ingest(store, [(f"a{i}", "a", "normal") for i in range(200)]
                 + [(f"b{i}", "b", "normal") for i in range(200)])
    await store.s.call("campaign", NOW, op="pause", camp="a", provs=["p"], batch=100)
    paused = [i for n in range(60) for i in ids(await grant(store, 1, f"g{n}"))]
    assert all(i.startswith("b") for i in paused) and len(paused) == 60
    await store.s.call("campaign", NOW, op="resume", camp="a", provs=["p"], batch=100)
    after = [i for n in range(40) for i in ids(await grant(store, 1, f"h{n}"))]
    split = collections.Counter(i[0] for i in after)
    assert abs(split["a"] - split["b"]) <= 2, split  # shares 1:1, not a's backlog first


async def test_a_job_whose_dial_came_back_after_its_campaign_was_cancelled_is_cancelled(
        store: Store) -> None:
    await ingest(store, [("j1", "c", "normal")])
    [g] = (await grant(store, 1, "g1"))["jobs"]
    res = await store.s.call("campaign", NOW, op="cancel", camp="c", provs=["p"], batch=100)
    assert res["cancelled"] == 0  # being dialled: too late for the cancel itself
    # the provider answered 503: the job goes back to wait, no call was made
    assert await store.s.call("defer", NOW, id="j1", dtok=g["tok"], to="delayed",
                              reason="retry", until=NOW + 1, set={}, deadline=0,
                              refund_rate=True, refund_number=True)
    await store.s.call("promote", NOW + 5, src="delayed", top="now", limit=10,
                       max_defer=60_000)
    reply = await grant(store, 1, "g2", now=NOW + 5)
    assert ids(reply) == [] and reply["fin"] == ["j1"]
    assert await store.r.hget(store.k.job("j1"), "fin") == "cancelled"


async def test_cancel_reaches_ready_jobs_of_a_provider_it_was_not_told_about(
        store: Store) -> None:
    await ingest(store, [("j1", "c", "normal")], prov="other")
    await store.s.call("campaign", NOW, op="cancel", camp="c", provs=["p"], batch=100)
    reply = await grant(store, 5, "g1", prov="other")
    assert ids(reply) == [] and reply["fin"] == ["j1"]


async def test_pause_holds_every_job_and_spends_no_attempt(store: Store) -> None:
    await ingest(store, [(f"j{i}", "c", "normal") for i in range(3)] + [("x", "", "normal")])
    await store.s.call("campaign", NOW, op="pause", camp="c", provs=["p"], batch=100)
    assert ids(await grant(store, 10, "g1")) == ["x"]
    assert await store.r.hget(store.k.job("j0"), "attempts") == "0"
    await store.s.call("campaign", NOW, op="resume", camp="c", provs=["p"], batch=100)
    assert ids(await grant(store, 10, "g2")) == ["j0", "j1", "j2"]


async def test_time_paused_does_not_count_toward_max_defer(store: Store) -> None:
    await ingest(store, [("j1", "c", "normal")])
    await store.r.zadd(store.k.deadlines, {"j1": NOW + 2000})  # max_defer_s = 2 s
    await store.s.call("campaign", NOW + 100, op="pause", camp="c", provs=["p"], batch=10)
    await store.s.call("campaign", NOW + 1900, op="resume", camp="c", provs=["p"], batch=10)
    assert as_list((await store.s.call("sweep", NOW + 2500, limit=10))["due"]) == []
    # 1.8 s paused: the 2 s of waiting that count end at NOW + 3800
    assert as_list((await store.s.call("sweep", NOW + 3700, limit=10))["due"]) == []
    assert (await store.s.call("sweep", NOW + 3900, limit=10))["due"] == ["j1"]


async def test_jobs_read_after_a_campaign_cancel_are_cancelled_until_resume(
        store: Store) -> None:
    await store.s.call("campaign", NOW, op="cancel", camp="c", provs=["p"], batch=10)
    await ingest(store, [("j1", "c", "normal"), ("other", "d", "normal")])
    assert await store.r.hget(store.k.job("j1"), "fin") == "cancelled"
    assert await store.r.hget(store.k.job("other"), "state") == "queued"
    await store.s.call("campaign", NOW, op="resume", camp="c", provs=["p"], batch=10)
    await ingest(store, [("j2", "c", "normal")])
    assert await store.r.hget(store.k.job("j2"), "state") == "queued"
