"""Every Lua script against real Redis: run it twice with the same arguments (and clock) and
the second run changes nothing — a reply lost and the call retried cannot double a step."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from dispatcher.store import Store
from dispatcher.store.keys import GROUP
from dispatcher.store.scripts import NAMES

NOW = 1_800_000_000_000
Setup = Callable[[Store], Awaitable[dict[str, Any]]]


async def snapshot(store: Store) -> dict[str, Any]:
    """Every key of the namespace, read by type (TTLs as present/absent)."""
    out: dict[str, Any] = {}
    async for key in store.r.scan_iter(match=store.k.prefix + "*"):
        kind = await store.r.type(key)
        if kind == "string":
            value: Any = await store.r.get(key)
        elif kind == "hash":
            value = await store.r.hgetall(key)
        elif kind == "list":
            value = await store.r.lrange(key, 0, -1)
        elif kind == "set":
            value = sorted(await store.r.smembers(key))
        elif kind == "zset":
            value = await store.r.zrange(key, 0, -1, withscores=True)
        elif kind == "stream":
            value = [(e, f) for e, f in await store.r.xrange(key)]
            if key == store.k.jobs:
                pending = await store.r.xpending_range(key, GROUP, "-", "+", 100)
                value.append([(p["message_id"], p["consumer"], p["times_delivered"])
                              for p in pending])
        else:
            value = kind
        out[key] = (kind, value, await store.r.pttl(key) > 0)
    return out


def job_args(job_id: str, entry: str, **over: Any) -> dict[str, Any]:
    raw = json.dumps({"id": job_id, "to": "+14155550100"})
    return {"e": entry, "id": job_id, "raw": raw, "prov": "p", "prio": "normal", "camp": "c1",
            "to": "+14155550100", "dk": "+14155550100", "exp": 0, "place": "queued",
            "reason": "", "due": 0, "deadline": NOW + 60_000, "fin": "", **over}


def grant_args(k: int = 2, tok: str = "t1") -> dict[str, Any]:
    return {"prov": "p", "wins": [[10, 1000]], "margin": 0, "slot_cap": 3, "lease": 60_000,
            "caps": [[5, 86_400_000]], "caps_keep": 86_400_000, "camps": {"c1": {"share": 1}},
            "dnc": True, "k": k, "consumer": "w1", "tok": tok}


async def pushed(store: Store, n: int = 3) -> list[str]:
    """n entries in the stream, read by consumer w1 (so they are pending)."""
    await store.enqueue([{"id": f"j{i}", "to": "+14155550100"} for i in range(n)])
    return [eid for eid, _ in await store.read("w1", n, 10)]


async def ingested(store: Store, n: int = 3, **over: Any) -> list[str]:
    entries = await pushed(store, n)
    await store.s.call("ingest", NOW, group=GROUP, entries=[
        job_args(f"j{i}", e, **over) for i, e in enumerate(entries)], grants=[])
    return entries


async def granted(store: Store) -> dict[str, Any]:
    await ingested(store)
    res: dict[str, Any] = await store.s.call("grant", NOW, rid="g0", grants=[grant_args()])
    return res["grants"][0]["jobs"][0]


async def setup_ingest(store: Store) -> dict[str, Any]:
    entries = await pushed(store)
    return {"group": GROUP, "rid": "r1", "entries": [job_args("j0", entries[0]),
                                                    job_args("j0", entries[1]),
                                                    job_args("j2", entries[2], place="delayed",
                                                             reason="window", due=NOW + 5)],
            "grants": [grant_args()]}


async def setup_grant(store: Store) -> dict[str, Any]:
    await ingested(store)
    await store.r.sadd(store.k.dnc, "nobody")
    return {"rid": "r2", "grants": [grant_args(k=3)]}


async def setup_admit(store: Store) -> dict[str, Any]:
    await store.r.set(store.k.rate_hint("p", 1000), 5)
    return {"prov": "p", "wins": [[10, 1000]], "margin": 0, "tok": "a1"}


async def setup_finish(store: Store) -> dict[str, Any]:
    j = await granted(store)
    entries = await pushed(store, 1)
    result = json.dumps({"job_id": j["id"], "outcome": "started"})
    return {"group": GROUP, "ttl": 600, "maxlen": 1000, "items": [
        {"id": j["id"], "result": result, "outcome": "started", "answer": "",
         "dtok": j["tok"]},
        {"e": entries[0], "result": json.dumps({"job_id": None}), "outcome": "invalid"}]}


async def setup_defer(store: Store) -> dict[str, Any]:
    j = await granted(store)
    return {"id": j["id"], "dtok": j["tok"], "to": "delayed", "reason": "retry",
            "until": NOW + 1000, "set": {"attempts": 1, "last_code": "http_500"},
            "deadline": NOW + 9000, "refund_rate": True, "refund_number": True}


async def setup_track(store: Store) -> dict[str, Any]:
    j = await granted(store)
    return {"items": [{"id": j["id"], "dtok": j["tok"], "call_id": "c-1", "first_ms": 500,
                       "ttl": 600, "attempts": 1}]}


async def tracked(store: Store) -> str:
    j = await granted(store)
    await store.s.call("track", NOW, items=[{"id": j["id"], "dtok": j["tok"],
                                             "call_id": "c-1", "first_ms": 0, "ttl": 600}])
    return str(j["id"])


async def setup_visit(store: Store) -> dict[str, Any]:
    await tracked(store)
    await store.s.call("webhook", NOW, event_id="ev1", call_id="c-1", ttl=600,
                       fields={"status": "completed"})
    return {"provs": ["p"], "lease": 30_000, "limit": 10}


async def setup_revisit(store: Store) -> dict[str, Any]:
    job_id = await tracked(store)
    return {"items": [{"id": job_id, "delay": 5000, "lease": 60_000, "prov": "p",
                       "camp": "c1"}]}


async def setup_promote(store: Store) -> dict[str, Any]:
    await ingested(store, place="delayed", reason="not_before", due=NOW - 1)
    return {"src": "delayed", "top": "now", "limit": 10, "max_defer": 60_000}


async def setup_sweep(store: Store) -> dict[str, Any]:
    await ingested(store, deadline=NOW - 1)
    return {"limit": 10}


async def setup_heartbeat(store: Store) -> dict[str, Any]:
    await granted(store)  # dialled by w1, which then dies
    await store.r.zadd(store.k.consumers, {"w1": NOW - 60_000})
    await store.r.hset(store.k.worker("w1"), mapping={"host": "h1", "pid": 7})
    await pushed(store, 1)  # and an entry w1 read but never ingested
    return {"group": GROUP, "consumer": "w2", "held": [], "dead": 5000, "stale": 5000,
            "settle": {"p": 11_000}, "info": {"host": "h2", "pid": 8, "version": "1",
                                              "started": NOW, "concurrency": 4}}


async def setup_push(store: Store) -> dict[str, Any]:
    return {"batch": "b-1", "jobs": ['{"id":"j0","to":"+14155550100"}', '{"id":"j1"}'],
            "ttl": 60}


async def setup_cancel(store: Store) -> dict[str, Any]:
    await ingested(store)
    return {"id": "j1", "ttl": 600, "ahead": False}


async def setup_campaign(store: Store) -> dict[str, Any]:
    await ingested(store)
    return {"op": "cancel", "camp": "c1", "provs": ["p"], "batch": 100}


async def setup_halt(store: Store) -> dict[str, Any]:
    await ingested(store)
    return {"prov": "p", "reason": "key revoked", "code": "revoked_api_key", "first": 30_000,
            "max": 600_000, "batch": 100}


async def setup_resume(store: Store) -> dict[str, Any]:
    await ingested(store)
    await store.s.call("halt", NOW, prov="p", reason="r", code="c", first=1000, max=2000,
                       batch=100)
    return {"prov": "p", "batch": 100, "max_defer": 60_000}


async def setup_claimfin(store: Store) -> dict[str, Any]:
    await setup_cancel(store)
    await store.s.call("cancel", NOW, id="j1", ttl=600, ahead=False)
    return {"lease": 30_000, "limit": 10}


async def setup_cooldown(store: Store) -> dict[str, Any]:
    return {"prov": "p", "ms": 3000}


async def setup_observe(store: Store) -> dict[str, Any]:
    return {"prov": "p", "limit": 60, "ms": 60_000, "remaining": 2, "reset": 4000}


async def setup_shrink(store: Store) -> dict[str, Any]:
    await granted(store)
    return {"prov": "p", "ttl": 60_000}


async def setup_webhook(store: Store) -> dict[str, Any]:
    await tracked(store)
    return {"event_id": "e9", "call_id": "c-1", "ttl": 600, "fields": {"status": "completed"}}


async def setup_redrive(store: Store) -> dict[str, Any]:
    j = await granted(store)
    await store.s.call("finish", NOW, group=GROUP, ttl=600, maxlen=1000, items=[
        {"id": j["id"], "result": "{}", "outcome": "exhausted", "dtok": j["tok"]}])
    return {"ids": [j["id"], "nobody"], "outcomes": ["exhausted"], "dry": False}


async def setup_regrant(store: Store) -> dict[str, Any]:
    j = await granted(store)
    return {"id": j["id"], "dtok": j["tok"], "tok": "late-1", "prov": "p",
            "wins": [[10, 1000]], "margin": 0}


async def setup_limits(store: Store) -> dict[str, Any]:
    return {"prov": "p", "op": "set", "by": "cli@h", "wins": [[5, 1000]], "pace": [],
            "margin": 10, "slots": 2}


async def setup_cidstat(store: Store) -> dict[str, Any]:
    return {"prov": "p", "id": "tel_pn_a", "call_id": "c-1", "answered": False, "keep": 1,
            "rate": 0.5, "rest": True}


async def setup_bill(store: Store) -> dict[str, Any]:
    await store.r.zadd(store.k.budget_holds("c1"), {"2000000|j0": NOW + 60_000})
    return {"camp": "c1", "day": "2027-01-15", "id": "j0", "worst": 2_000_000,
            "call_id": "c-1", "cost": 1_000_000, "keep": 600}


async def setup_peek(store: Store) -> dict[str, Any]:
    await ingested(store, 1, place="delayed", reason="not_before", due=NOW + 3_600_000,
                   detail="")  # due in an hour: it sleeps
    return {"ids": ["j0", "nobody"]}


async def setup_forget(store: Store) -> dict[str, Any]:
    j = await granted(store)  # j0..j2 queued, one of them being dialled (it keeps a fence)
    [entry] = await pushed(store, 1)  # a payload read by w1, not ingested yet
    await store.r.xadd(store.k.results, {"result": json.dumps({"job_id": "j1"})})
    return {"group": GROUP, "ids": ["j1", "j2", j["id"], "nobody"],
            "numbers": ["+14155550100"], "results": [], "entries": [{"e": entry, "id": "j0"}],
            "after_results": "0-0", "after_jobs": "0-0", "tail": 100, "fence": 600}


async def setup_consent(store: Store) -> dict[str, Any]:
    await ingested(store, 1)
    ev = [{"dk": "+14155550100", "ev": {"k": "c", "id": "c1", "scope": "*", "given": NOW - 1,
                                         "src": "web form", "exp": 0, "rec": NOW}},
          {"dk": "+14155550100", "ev": {"k": "r", "id": "r1", "at": NOW, "via": "call",
                                         "rec": NOW}}]
    return {"events": ev, "dnc": True}


async def setup_registry(store: Store) -> dict[str, Any]:
    await store.s.call("registry", NOW, reg="tps", as_of=NOW - 86_400_000, count=3)
    return {"reg": "us-dnc", "as_of": NOW - 3_600_000, "count": 2}


async def setup_unconsent(store: Store) -> dict[str, Any]:
    await store.s.call("consent", NOW, **await setup_consent(store))
    await store.s.call("consent", NOW, dnc=False, events=[{"dk": "h1", "ev": {
        "k": "r", "id": "r0", "at": NOW - 5, "via": "letter", "rec": NOW}}])
    return {"plain": "+14155550100", "hashed": "h1"}


async def setup_joblist(store: Store) -> dict[str, Any]:
    await ingested(store, 3)
    return {"state": "queued", "camp": "c1", "prov": "p", "n": 2, "budget": 100}


async def drop_index(store: Store) -> None:
    """Leave the jobs as a version without the jobs list's index would: no index sets, and
    no mark that the index is whole."""
    async for key in store.r.scan_iter(match=store.k.prefix + "j[xo]:*"):
        await store.r.delete(key)
    await store.r.delete(store.k.index_built)


async def setup_reindex(store: Store) -> dict[str, Any]:
    j = await granted(store)  # j0, j1 dialling, j2 queued
    await store.s.call("finish", NOW, group=GROUP, ttl=600, maxlen=1000, items=[
        {"id": j["id"], "result": "{}", "outcome": "exhausted", "dtok": j["tok"]}])
    [entry] = await pushed(store, 1)
    await store.s.call("ingest", NOW, group=GROUP, grants=[], entries=[job_args(
        "s0", entry, place="delayed", reason="not_before", due=NOW + 3_600_000, detail="")])
    await drop_index(store)
    return {"ids": ["j0", "j1", "j2", "s0", "nobody"], "dry": False}


SETUPS: dict[str, Setup] = {
    "admit": setup_admit, "campaign": setup_campaign, "cancel": setup_cancel,
    "claimfin": setup_claimfin, "cooldown": setup_cooldown, "defer": setup_defer,
    "finish": setup_finish, "grant": setup_grant, "halt": setup_halt,
    "heartbeat": setup_heartbeat, "ingest": setup_ingest, "observe": setup_observe,
    "promote": setup_promote, "push": setup_push, "resume": setup_resume, "revisit": setup_revisit,
    "shrink": setup_shrink, "sweep": setup_sweep, "track": setup_track,
    "redrive": setup_redrive, "regrant": setup_regrant, "visit": setup_visit,
    "webhook": setup_webhook, "forget": setup_forget, "peek": setup_peek,
    "consent": setup_consent, "registry": setup_registry, "unconsent": setup_unconsent,
    "limits": setup_limits, "cidstat": setup_cidstat, "bill": setup_bill,
    "joblist": setup_joblist, "reindex": setup_reindex,
}
# reads: change nothing even the first time, and answer this
READ_ONLY: dict[str, Callable[[Any], bool]] = {
    "peek": lambda r: [j["id"] for j in r["jobs"]] == ["j0"],
    "joblist": lambda r: len(r["rows"]) == 2 and r["total"] == 3 and r["next"]["k"] == 2}


def test_every_script_has_a_twice_test() -> None:
    assert set(SETUPS) == set(NAMES)


@pytest.mark.parametrize("name", sorted(SETUPS))
async def test_running_a_script_twice_changes_nothing_the_second_time(
        store: Store, name: str) -> None:
    args = await SETUPS[name](store)
    before = await snapshot(store)
    first = await store.s.call(name, NOW, **args)
    after_first = await snapshot(store)
    if name in READ_ONLY:
        assert after_first == before, f"{name}: a read changed state"
        assert READ_ONLY[name](first), first
    else:
        assert after_first != before, f"{name}: the first run did nothing"
    second = await store.s.call(name, NOW, **args)
    assert await snapshot(store) == after_first, f"{name}: the second run changed state"
    if name in ("grant", "ingest"):
        assert second == first  # a replayed grant returns the same jobs, not new ones


async def test_jobs_taken_over_from_a_dead_worker_go_before_the_waiting_ones(
        store: Store) -> None:
    await granted(store)  # w1 dials j0 and j1, then dies; j2 waits in line
    await store.r.zadd(store.k.consumers, {"w1": NOW - 60_000})
    await store.s.call("heartbeat", NOW, group=GROUP, consumer="w2", held=[], dead=5000,
                       stale=5000, settle={"p": 0})
    await store.s.call("promote", NOW + 1, src="delayed", top="now", limit=10,
                       max_defer=60_000)
    line = await store.r.lrange(store.k.ready("p", "normal", "c1"), 0, -1)
    assert set(line[:2]) == {"j0", "j1"} and line[2:] == ["j2"]


async def test_calls_a_dead_worker_was_polling_are_due_again_at_once(store: Store) -> None:
    job_id = await tracked(store)
    await store.s.call("visit", NOW, provs=["p"], lease=30_000, limit=10)  # w1 polls it
    await store.s.call("heartbeat", NOW, group=GROUP, consumer="w1", held=[], dead=5000,
                       stale=5000, settle={"p": 0}, visiting=[job_id])
    assert await store.r.zscore(store.k.tracking("p"), job_id) == NOW + 30_000
    later = NOW + 6000  # w1 has been silent longer than `dead`
    res = await store.s.call("heartbeat", later, group=GROUP, consumer="w2", held=[],
                             dead=5000, stale=5000, settle={"p": 0}, visiting=[])
    assert res["revisit"] == 1 and res["reaped"] == ["w1"]
    assert await store.r.zscore(store.k.tracking("p"), job_id) == later


async def test_a_granting_reply_is_kept_for_replay_as_long_as_the_caller_says(
        store: Store) -> None:
    await ingested(store)
    store.s.reply_ttl_ms = 120_000
    await store.s.call("grant", NOW, rid="kept", grants=[grant_args()])
    assert 100_000 < await store.r.pttl(store.k.reply("kept")) <= 120_000


async def test_an_unsure_job_granted_again_is_reclaimed_from_its_new_grant_not_its_dial(
        store: Store) -> None:
    """Its look-up searches from the first dial, but a reply still on its way for the new
    grant is not lost, and a takeover waits settle from the new grant (it may send then)."""
    await granted(store)  # dialled at NOW by w1, whose grant reply was lost
    await store.s.call("heartbeat", NOW + 6000, group=GROUP, consumer="w1", held=[],
                       dead=5000, stale=5000, settle={"p": 3000})
    await store.s.call("promote", NOW + 9000, src="delayed", top="now", limit=10,
                       max_defer=60_000)
    again = NOW + 10_000
    res = await store.s.call("grant", again, rid="g1", grants=[grant_args(k=3, tok="t2")])
    regrant = res["grants"][0]["jobs"][0]  # one of w1's two (the call slots allow one)
    assert regrant["unsure"] and regrant["dial_ms"] == NOW  # the look-up starts there
    res = await store.s.call("heartbeat", again + 1000, group=GROUP, consumer="w1", held=[],
                             dead=5000, stale=5000, settle={"p": 3000})
    assert res["reconciled"] == 0  # a second after its grant: the reply may be on its way
    await store.r.zadd(store.k.consumers, {"w1": NOW - 60_000})  # w1 dies now
    await store.s.call("heartbeat", again + 1000, group=GROUP, consumer="w2", held=[],
                       dead=5000, stale=5000, settle={"p": 3000})
    assert await store.r.zscore(store.k.delayed, regrant["id"]) == again + 3000


async def test_a_visit_leased_after_the_last_heartbeat_is_freed_when_its_worker_dies(
        store: Store) -> None:
    """w1 leases the call and dies before any heartbeat names it: VISIT itself put it in w1's
    visiting set, so the reaper makes it due at once instead of after its 30-s lease."""
    job_id = await tracked(store)
    await store.s.call("heartbeat", NOW, group=GROUP, consumer="w1", held=[], dead=5000,
                       stale=5000, settle={"p": 0}, visiting=[], visited=[])
    await store.s.call("visit", NOW + 100, provs=["p"], lease=30_000, limit=10, consumer="w1")
    later = NOW + 6000
    res = await store.s.call("heartbeat", later, group=GROUP, consumer="w2", held=[],
                             dead=5000, stale=5000, settle={"p": 0}, visiting=[], visited=[])
    assert res["revisit"] == 1 and res["reaped"] == ["w1"]
    assert await store.r.zscore(store.k.tracking("p"), job_id) == later


async def test_only_ended_visits_leave_a_live_workers_visiting_set(store: Store) -> None:
    job_id = await tracked(store)
    await store.s.call("visit", NOW, provs=["p"], lease=30_000, limit=10, consumer="w1")
    # a heartbeat whose snapshot was taken before the lease still keeps it
    await store.s.call("heartbeat", NOW + 10, group=GROUP, consumer="w1", held=[], dead=5000,
                       stale=5000, settle={"p": 0}, visiting=[], visited=[])
    assert await store.r.smembers(store.k.prefix + "visiting:w1") == {job_id}
    await store.s.call("heartbeat", NOW + 20, group=GROUP, consumer="w1", held=[], dead=5000,
                       stale=5000, settle={"p": 0}, visiting=[], visited=[job_id])
    assert not await store.r.smembers(store.k.prefix + "visiting:w1")


@pytest.mark.parametrize("shared", [True, False])
async def test_a_dead_workers_unsure_jobs_share_one_place_when_the_provider_lists_calls(
        store: Store, shared: bool) -> None:
    """Three calls of a dead worker and a fresh job, with room for two requests: with one
    listing for the grant's look-ups (TelEcho), the three take one place between them and
    the fresh job the other; else each takes its own and only two are granted."""
    await ingested(store, 4)
    rules = {**grant_args(k=3), "wins": [[2, 1000]], "slot_cap": 10, "caps": []}
    first = await store.s.call("grant", NOW, rid="g0", grants=[rules])
    assert len(first["grants"][0]["jobs"]) == 2  # the log's room; the window then moves on
    await store.s.call("grant", NOW + 1000, rid="g1", grants=[{**rules, "k": 1, "tok": "t2"}])
    await store.s.call("heartbeat", NOW + 1000, group=GROUP, consumer="w1", held=[], dead=5000,
                       stale=5000, settle={"p": 0})
    later = NOW + 7000  # w1 is dead: its three dials wait to be looked up; j3 waits too
    await store.s.call("heartbeat", later, group=GROUP, consumer="w2", held=[], dead=5000,
                       stale=5000, settle={"p": 0})
    await store.s.call("promote", later, src="delayed", top="now", limit=10, max_defer=60_000)
    again = {**rules, "k": 10, "tok": "t3", "consumer": "w2", **({"shared": True} if shared
                                                                  else {})}
    res = await store.s.call("grant", later, rid="g2", grants=[again])
    jobs = res["grants"][0]["jobs"]
    places = await store.r.zrangebyscore(store.k.rate_log("p"), later, "+inf")
    assert len(places) == 2
    if shared:
        assert [j["id"] for j in jobs][-1] == "j3" and len(jobs) == 4
        assert [bool(j.get("np")) for j in jobs] == [False, True, True, False]
    else:
        assert len(jobs) == 2 and all(j["unsure"] and not j.get("np") for j in jobs)


async def test_a_dead_workers_dial_due_for_its_look_up_is_granted_before_new_dials(
        store: Store) -> None:
    """No promotion has run since it became due: the grant itself moves it first."""
    await ingested(store, 2)
    rules = {**grant_args(k=1), "caps": []}
    [first] = (await store.s.call("grant", NOW, rid="g0", grants=[rules]))["grants"][0]["jobs"]
    await store.s.call("heartbeat", NOW, group=GROUP, consumer="w1", held=[], dead=5000,
                       stale=5000, settle={"p": 4000})
    later = NOW + 6000
    await store.s.call("heartbeat", later, group=GROUP, consumer="w2", held=[], dead=5000,
                       stale=5000, settle={"p": 4000})
    assert await store.r.zscore(store.k.delayed, first["id"]) == NOW + 4000
    res = await store.s.call("grant", later, rid="g1", grants=[{**rules, "tok": "t2"}])
    [again] = res["grants"][0]["jobs"]
    assert again["id"] == first["id"] and again["unsure"]
    assert await store.r.zcard(store.k.recon("p")) == 0
