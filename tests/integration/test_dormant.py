"""Jobs due long after they arrive sleep in one packed field and wake, unchanged, for anything
that looks them up (real Redis; the scripts' clock pinned)."""

from __future__ import annotations

import json
from typing import Any

from dispatcher.store import Store
from dispatcher.store.keys import GROUP
from dispatcher.store.protocol import CancelResult

NOW = 1_800_000_000_000
HOUR = 3_600_000
TO = "+14155550100"


async def arrive(store: Store, job_id: str, due: int, **over: Any) -> str:
    """One job pushed, read by w1 and ingested as delayed until ``due``."""
    await store.enqueue([{"id": job_id, "to": TO}])
    [(entry, _)] = await store.read("w1", 1, 10)
    raw = json.dumps({"id": job_id, "to": TO, "campaign": "c1"})
    args = {"e": entry, "id": job_id, "raw": raw, "prov": "p", "prio": "normal",
            "camp": "c1", "to": TO, "dk": TO, "exp": 0, "place": "delayed",
            "reason": "not_before", "due": due, "detail": "at 09:00", "deadline": 0, "fin": "",
            **over}
    res = await store.s.call("ingest", NOW, group=GROUP, entries=[args], grants=[])
    return str(res["entries"][0]["r"])


async def asleep(store: Store, job_id: str) -> bool:
    return bool(await store.r.hexists(store.k.dormant, job_id))


async def test_a_job_due_in_an_hour_sleeps_in_one_field(store: Store) -> None:
    assert await arrive(store, "j1", NOW + HOUR) == "ok"
    assert await asleep(store, "j1")
    assert not await store.r.exists(store.k.job("j1"), store.k.timeline("j1"))
    assert await store.r.zscore(store.k.delayed, "j1") == NOW + HOUR
    info = await store.job_info("j1")  # read without waking it
    assert info["state"] == "delayed" and info["wr"] == "not_before" and info["to"] == TO
    assert [e["e"] for e in await store.timeline("j1")] == ["claimed", "waiting"]
    assert await asleep(store, "j1")
    assert (await store.counts("c1"))["delayed"] == 1


async def test_a_job_due_within_a_minute_stays_awake(store: Store) -> None:
    await arrive(store, "j1", NOW + 30_000)
    assert not await asleep(store, "j1")
    assert await store.r.exists(store.k.job("j1"))


async def test_a_woken_job_is_the_job_that_never_slept(store: Store) -> None:
    """Its hash and timeline, once woken, equal those of a job that stayed awake (apart from
    its own entry id and due time)."""
    await arrive(store, "awake", NOW + 30_000)
    await arrive(store, "slept", NOW + HOUR)
    await store.r.zadd(store.k.delayed, {"slept": NOW + 30_000})  # its time has come
    await store.s.call("promote", NOW + 40_000, src="delayed", top="now", limit=10,
                       max_defer=60_000)
    assert not await asleep(store, "slept")

    def same_shape(h: dict[str, str]) -> dict[str, str]:
        return {k: v for k, v in h.items() if k not in ("owner", "raw")}
    a = same_shape(await store.r.hgetall(store.k.job("awake")))
    s = same_shape(await store.r.hgetall(store.k.job("slept")))
    assert a == s and a["state"] == "queued"
    assert json.loads(await store.r.hget(store.k.job("slept"), "raw") or "")["id"] == "slept"

    def events(tl: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{k: v for k, v in e.items() if k not in ("entry", "u")} for e in tl]
    assert events(await store.timeline("awake")) == events(await store.timeline("slept"))
    assert len(await store.timeline("slept")) == 2  # claimed, waiting (queued adds none)


async def test_a_second_entry_with_a_sleeping_id_is_a_duplicate(store: Store) -> None:
    await arrive(store, "j1", NOW + HOUR)
    assert await arrive(store, "j1", NOW + HOUR) == "dup"
    assert (await store.counts())["total"] == 1
    _, seen = await store.push_jobs([("j1", json.dumps({"id": "j1", "to": TO}))])
    assert seen == [True]


async def test_a_sleeping_job_can_be_cancelled(store: Store) -> None:
    await arrive(store, "j1", NOW + HOUR)
    assert await store.cancel_job("j1", 600, ahead=False) is CancelResult.CANCELLED
    assert not await asleep(store, "j1")
    assert (await store.job_info("j1"))["state"] == "finishing"
    assert await store.r.zscore(store.k.delayed, "j1") is None


async def test_a_sleeping_job_is_erased_by_its_number(store: Store) -> None:
    await arrive(store, "j1", NOW + HOUR)
    erased = await store.forget(numbers=[TO])
    assert erased.jobs == ["j1"]
    assert not await asleep(store, "j1")
    assert not await store.r.exists(store.k.job("j1"), store.k.timeline("j1"))
    assert await store.r.zscore(store.k.delayed, "j1") is None


async def test_a_sleeping_job_expires_on_time(store: Store) -> None:
    """``expires_at`` before ``not_before``: the sweep finds it asleep and finishes it."""
    await arrive(store, "j1", NOW + HOUR, exp=NOW + 1000, deadline=NOW + 1000)
    res = await store.s.call("sweep", NOW + 2000, limit=10)
    assert res["due"] == ["j1"]
    assert (await store.job_info("j1"))["fin"] == "expired"


async def test_a_sleeping_job_is_not_redriven_and_a_cancelled_campaign_takes_it(
        store: Store) -> None:
    await arrive(store, "j1", NOW + HOUR)
    assert [j["r"] for j in (await store.s.call("redrive", NOW, ids=["j1"],
                                                outcomes=["exhausted"], dry=True))["jobs"]] \
        == ["not_done"]
    await store.campaign("cancel", "c1", ["p"])
    assert (await store.job_info("j1"))["state"] == "finishing"
    assert not await asleep(store, "j1")


async def test_a_redriven_job_does_not_sleep(store: Store) -> None:
    """Its hash carries more than arrival writes (call numbers): it stays a hash."""
    await store.r.hset(store.k.job("j1"), mapping={"cn": 2, "state": "redriven"})
    await arrive(store, "j1", NOW + HOUR)
    assert not await asleep(store, "j1")
    assert (await store.r.hget(store.k.job("j1"), "cn")) == "2"
