"""The three scripts every job passes through (INGEST, GRANT, FINISH) handle a batch with few
Redis commands per job, and what they sum or take in one go is exactly what they would have
done one job at a time: counters equal a recount of the jobs, no id popped is lost."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from dispatcher.dev.localredis import LocalRedis, start_redis
from dispatcher.store import Store
from dispatcher.store.keys import GROUP
from tests.conftest import store_on

from .test_scripts import NOW, grant_args, job_args, pushed

# Redis commands a job costs from its entry to its result, summed over INGEST (with its first
# grants), GRANT and FINISH. One job at a time it was about 40.
MOST_COMMANDS_PER_JOB = 22


@pytest.fixture(scope="module")
def own_redis() -> Iterator[LocalRedis]:
    """A server of this module's own: its command statistics are reset and read."""
    server = start_redis()
    yield server
    server.stop()


@pytest.fixture
async def quiet_store(own_redis: LocalRedis, ns: str) -> AsyncIterator[Store]:
    async with store_on(own_redis, ns) as s:
        yield s


async def commands_run(store: Store) -> int:
    """Commands run since the last reset, not counting the script calls themselves."""
    stats = await store.r.info("commandstats")
    return sum(int(v["calls"]) for k, v in stats.items()
               if not k.startswith(("cmdstat_eval", "cmdstat_script", "cmdstat_info",
                                    "cmdstat_config")))


def plain(k: int, tok: str) -> dict[str, Any]:
    """A grant with no per-number caps, slots or campaigns: the common case."""
    return {**grant_args(k, tok), "caps": [], "slot_cap": 0, "camps": {},
            "wins": [[10_000, 1000]]}


async def test_a_hundred_jobs_cost_few_redis_commands_each(quiet_store: Store) -> None:
    store = quiet_store
    n = 100
    entries = await pushed(store, n)
    await store.r.config_resetstat()
    res = await store.s.call("ingest", NOW, group=GROUP, rid="i1", entries=[
        job_args(f"j{i}", e, camp="") for i, e in enumerate(entries)],
        grants=[plain(60, "t1")])
    first = res["grants"][0]["jobs"]
    res = await store.s.call("grant", NOW, rid="g1", grants=[plain(n, "t2")])
    jobs = [*first, *res["grants"][0]["jobs"]]
    assert [j["id"] for j in jobs] == [f"j{i}" for i in range(n)]  # in order, every one
    await store.s.call("finish", NOW, group=GROUP, ttl=600, maxlen=1000, items=[
        {"id": j["id"], "result": json.dumps({"job_id": j["id"]}), "outcome": "started",
         "answer": "", "dtok": j["tok"]} for j in jobs])
    assert await store.r.xlen(store.k.results) == n
    per_job = await commands_run(store) / n
    assert per_job <= MOST_COMMANDS_PER_JOB, per_job


async def test_counters_summed_over_a_batch_equal_a_recount_of_the_jobs(
        quiet_store: Store) -> None:
    store = quiet_store
    n = 30
    entries = await pushed(store, n)
    await store.r.sadd(store.k.dnc, "+14155550107")
    await store.s.call("cancel", NOW, id="j3", ttl=600, ahead=True)

    def entry(i: int, e: str) -> dict[str, Any]:
        over: dict[str, Any] = {"camp": ("c1", "c2", "")[i % 3]}
        if i % 5 == 4:
            over.update(place="delayed", reason="window", due=NOW + 60_000)
        if i == 7:
            over.update(to="+14155550107", dk="+14155550107")
        return job_args(f"j{i}", e, **over)

    camps = {"c1": {"share": 1}, "c2": {"share": 3}}
    await store.s.call("ingest", NOW, group=GROUP, rid="i2",
                       entries=[entry(i, e) for i, e in enumerate(entries)],
                       grants=[{**plain(4, "t1"), "camps": camps}])
    res = await store.s.call("grant", NOW, rid="g2", grants=[{**plain(6, "t2"), "camps": camps}])
    jobs = res["grants"][0]["jobs"]
    await store.s.call("finish", NOW, group=GROUP, ttl=600, maxlen=1000, items=[
        {"id": j["id"], "result": "{}", "outcome": "started", "answer": "", "dtok": j["tok"]}
        for j in jobs[:3]])

    field = {"queued": "queued", "delayed": "delayed", "dialing": "dialing",
             "finishing": "finishing"}
    want: dict[str, Counter[str]] = {"": Counter(), "c1": Counter(), "c2": Counter()}
    for i in range(n):
        h = await store.r.hgetall(store.k.job(f"j{i}"))
        for scope in {"", h["camp"]}:
            want[scope]["total"] += 1
            if h["state"] in field:
                want[scope][field[h["state"]]] += 1
            if h["state"] == "delayed":
                want[scope]["w:window"] += 1
            if h["state"] == "done":
                want[scope]["o:" + h["outcome"]] += 1
    assert want[""]["finishing"] == 2  # the cancelled one and the do-not-call one
    assert want[""]["o:started"] == 3 and want[""]["dialing"] == 7
    for scope, key in (("", store.k.counts), ("c1", store.k.campaign("c1")),
                       ("c2", store.k.campaign("c2"))):
        got = {f: int(v) for f, v in (await store.r.hgetall(key)).items()
               if f in want[scope] or f in field.values() or f.startswith(("o:", "w:"))}
        assert {f: v for f, v in got.items() if v} == dict(+want[scope]), scope


async def test_a_run_taken_at_once_routes_every_id_it_popped(quiet_store: Store) -> None:
    """Cancelled, do-not-call and stale ids inside a run are routed or dropped exactly as
    one at a time; the rest of the list stays in order for the next grant."""
    store = quiet_store
    n = 12
    entries = await pushed(store, n)
    await store.r.sadd(store.k.dnc, "+14155550102")
    await store.s.call("ingest", NOW, group=GROUP, rid="i3", entries=[
        job_args(f"j{i}", e, camp="",
                 **({"to": "+14155550102", "dk": "+14155550102"} if i == 2 else {}))
        for i, e in enumerate(entries)], grants=[])
    await store.s.call("cancel", NOW, id="j1", ttl=600, ahead=False)
    await store.s.call("cancel", NOW, id="j4", ttl=600, ahead=False)
    res = await store.s.call("grant", NOW, rid="g3", grants=[plain(5, "t1")])
    g = res["grants"][0]
    assert [j["id"] for j in g["jobs"]] == ["j0", "j3", "j5", "j6", "j7"]
    assert sorted(g["fin"]) == ["j2"]  # cancelled jobs were finished by CANCEL already
    res = await store.s.call("grant", NOW, rid="g4", grants=[plain(50, "t2")])
    g = res["grants"][0]
    assert [j["id"] for j in g["jobs"]] == ["j8", "j9", "j10", "j11"]
    assert g["why"] == "empty"
    assert not await store.r.exists(store.k.ready("p", "normal", None))
    assert await store.r.zcard(store.k.ready_campaigns("p", "normal")) == 0


async def test_a_job_without_a_call_slot_frees_none_and_one_with_a_slot_frees_it(
        quiet_store: Store) -> None:
    store = quiet_store
    entries = await pushed(store, 2)
    await store.s.call("ingest", NOW, group=GROUP, rid="i4", entries=[
        job_args(f"j{i}", e, camp="") for i, e in enumerate(entries)], grants=[])
    a = (await store.s.call("grant", NOW, rid="g5", grants=[plain(1, "t1")]))["grants"][0]
    b = (await store.s.call("grant", NOW, rid="g6", grants=[
        {**plain(1, "t2"), "slot_cap": 3}]))["grants"][0]
    assert await store.r.hget(store.k.job("j0"), "sl") == "0"
    assert await store.r.hget(store.k.job("j1"), "sl") == "1"
    assert await store.r.zrange(store.k.slots("p"), 0, -1) == ["j1"]
    await store.r.config_resetstat()
    await store.s.call("finish", NOW, group=GROUP, ttl=600, maxlen=1000, items=[
        {"id": j["id"], "result": "{}", "outcome": "started", "answer": "", "dtok": j["tok"]}
        for j in (*a["jobs"], *b["jobs"])])
    assert await store.r.zcard(store.k.slots("p")) == 0
    stats = await store.r.info("commandstats")
    # deadlines twice, the one slot once, the jobs list's dialling set once for both
    assert stats["cmdstat_zrem"]["calls"] == 4
