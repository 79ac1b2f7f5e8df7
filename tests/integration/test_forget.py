"""``dispatcher forget`` end to end (a right-to-erasure request), and results trimmed by age."""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import Any

from dispatcher.core.consent import Consent, Revocation
from dispatcher.core.numbers import dnc_key
from dispatcher.dev.localredis import LocalRedis
from dispatcher.simulator import RunningSimulator
from dispatcher.simulator.config import CallSpec
from dispatcher.store import Store
from dispatcher.store.keys import GROUP
from dispatcher.store.mentions import needle
from tests.conftest import RunningWorker, make_settings, provider_cfg, start_worker, wait_results
from tests.integration.helpers import calls_for, creates, push, set_key
from tests.integration.test_cli import cli, redis_env
from tests.integration.test_scripts import job_args, snapshot

ALICE = "+14155550111"
ALICE_NEEDLES = ("alice", "4155550111")


def settings(redis: LocalRedis, ns: str, sim: RunningSimulator, **over: Any) -> Any:
    set_key(sim, "telecho", limits=["1000/minute"])
    sim.sim.cfg.account("acme").max_concurrent_calls = 1000
    return make_settings(redis.url, ns, {"default": provider_cfg("telecho", sim.url)},
                         tracking={"poll_schedule_s": [0.2, 0.2]}, **over)


async def everything(store: Store) -> dict[str, str]:
    """Every key of the namespace with its whole value as text."""
    return {k: json.dumps(v[1], default=sorted) for k, v in (await snapshot(store)).items()}


def lasting(store: Store, keys: dict[str, str]) -> dict[str, str]:
    """``keys`` but the replay caches of grant replies (``reply:<rid>``): the worker keeps
    each a few seconds, so whether one is still there depends on the clock, not on what
    ``forget`` did; and but the audit trail, which records every run of the command (the
    action, never the number: the scan above checks that)."""
    return {k: v for k, v in keys.items()
            if not k.startswith(store.k.reply_prefix) and k != store.k.audit}


async def state_of(store: Store, job_id: str) -> str | None:
    return (await store.job_info(job_id)).get("state")  # a job due in an hour sleeps packed


async def test_forget_by_number_erases_every_trace_but_the_do_not_call_entry(
        redis_server: LocalRedis, ns: str, store: Store, sim: RunningSimulator,
        workers: list[RunningWorker]) -> None:
    sim.sim.cfg.calls = CallSpec(ring_s=(0.1, 0.1), talk_s=(0.2, 0.2))
    capped = {"policy": {"max_calls_per_number": ["5/day"]}}  # keeps a log per number
    w = start_worker(settings(redis_server, ns, sim, **capped), workers)
    later = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
    await push(store, {"id": "alice-1", "to": ALICE, "metadata": {"name": "Alice"}},
               {"id": "bob-1", "to": "+14155550122"},
               {"id": "alice-2", "to": "+1 (415) 555-0111", "not_before": later})
    results = await wait_results(store, 2, timeout=20)
    assert {r["job_id"] for r in results} == {"alice-1", "bob-1"}
    while await state_of(store, "alice-2") != "delayed":
        await asyncio.sleep(0.05)
    await w.stop()
    workers.remove(w)
    await push(store, {"id": "alice-3", "to": ALICE}, {"id": "bob-2", "to": "+14155550122"})
    await store.r.sadd(store.k.dnc, ALICE)
    revoked = Revocation(1_700_000_000_000, "said stop", 1_700_000_000_000, "r1")
    await store.consent_record([(ALICE, Consent("*", 1, "Alice's web form", 0, 1, "c1")),
                                (ALICE, revoked)], add_dnc=True)
    before = await everything(store)
    assert any("alice" in k or "alice" in v for k, v in before.items())

    out = cli("forget", "--number", "+1 415 555 0111", env=redis_env(redis_server, ns))
    assert out.returncode == 0, out.stderr
    assert "erased 2 jobs (alice-1, alice-2)" in out.stdout
    assert "1 results entries, 1 queued payloads, 1 number logs" in out.stdout
    assert f"kept on the do-not-call list (never erased, so they are not called again): " \
           f"{ALICE}" in out.stdout
    assert "erased 1 consent records" in out.stdout
    assert f"kept the revocations of consent, under the number's SHA-256 only (the proof " \
           f"that the person objected): {ALICE}" in out.stdout
    assert await store.consent_history(dnc_key(ALICE, True)) == [revoked]

    after = await everything(store)
    left = {k: v for k, v in after.items() if any(n in k or n in v for n in ALICE_NEEDLES)}
    assert left == {store.k.dnc: json.dumps([ALICE])}
    assert await store.r.hget(store.k.job("bob-1"), "state") == "done"
    assert [json.loads(f["result"])["job_id"] for _, f in
            await store.r.xrange(store.k.results)] == ["bob-1"]
    assert (await store.counts()).get("delayed") == 0

    again = cli("forget", "--number", ALICE, "--json", env=redis_env(redis_server, ns))
    assert again.returncode == 0, again.stderr
    report = json.loads(again.stdout)
    assert (report["jobs"], report["results"], report["entries"]) == ([], 0, 0)
    assert lasting(store, await everything(store)) == lasting(store, after)  # safe twice
    assert [f["action"] for _, f in await store.r.xrange(store.k.audit)] == ["forget"] * 2

    start_worker(settings(redis_server, ns, sim, **capped), workers)
    results = await wait_results(store, 2, timeout=20)
    assert [r["job_id"] for r in results] == ["bob-1", "bob-2"]
    assert not calls_for(sim, "alice-3") and len(creates(sim, "alice-1")) == 1


async def test_forget_a_job_whose_call_is_live_leaves_only_a_fence_and_no_result(
        redis_server: LocalRedis, ns: str, store: Store, sim: RunningSimulator,
        workers: list[RunningWorker]) -> None:
    sim.sim.cfg.calls = CallSpec(ring_s=(0.1, 0.1), talk_s=(1.5, 1.5))
    start_worker(settings(redis_server, ns, sim), workers)
    await push(store, {"id": "alice-live", "to": ALICE})
    while await state_of(store, "alice-live") != "tracking":
        await asyncio.sleep(0.02)
    erased = await store.forget(ids=["alice-live"], fence_s=60)
    assert erased.fenced == ["alice-live"] and erased.calls == 1
    await asyncio.sleep(3.0)  # the call ends meanwhile; nobody writes for it
    assert await store.r.xlen(store.k.results) == 0
    assert await store.r.hgetall(store.k.job("alice-live")) == {
        "state": "done", "outcome": "erased", "erased": "1"}
    assert 0 < await store.r.ttl(store.k.job("alice-live")) <= 60
    left = {k for k, v in (await everything(store)).items()
            if any(n in k or n in v for n in ALICE_NEEDLES)}
    slot_lease = store.k.slots("default")  # expires with the call's lease, holds the id only
    assert left <= {store.k.job("alice-live"), slot_lease}


async def test_a_payload_read_but_not_ingested_cannot_come_back_after_forget(
        store: Store) -> None:
    await store.enqueue([{"id": "alice-9", "to": ALICE}])
    [(entry, _)] = await store.read("w1", 10, 10)  # a worker holds it in memory
    erased = await store.forget(ids=["alice-9"])
    assert erased.entries == 1 and erased.fenced == ["alice-9"] and not erased.unknown
    res = await store.s.call("ingest", group=GROUP, entries=[
        job_args("alice-9", entry, to=ALICE, dk=ALICE)], grants=[])
    assert res["entries"][0]["r"] == "done"  # the worker's late INGEST places nothing
    assert await store.r.xlen(store.k.jobs) == 0
    assert await store.r.exists(store.k.timeline("alice-9")) == 0


async def test_forget_unknown_ids_says_so_and_changes_nothing(store: Store) -> None:
    erased = await store.forget(ids=["nobody"])
    assert erased.unknown == ["nobody"] and not erased.jobs


def test_forget_refuses_a_national_number_and_no_arguments(
        redis_server: LocalRedis, ns: str) -> None:
    env = redis_env(redis_server, ns)
    out = cli("forget", "--number", "4155550111", env=env)
    assert out.returncode == 2 and "national number" in out.stderr
    out = cli("forget", env=env)
    assert out.returncode == 2 and "--id" in out.stderr


async def test_results_older_than_max_age_are_trimmed_and_newer_ones_kept(
        store: Store) -> None:
    now_ms = int(time.time() * 1000)
    pipe = store.r.pipeline(transaction=False)
    for i in range(500):  # two hours old (ids are the time Redis wrote them)
        pipe.xadd(store.k.results, {"result": "{}"}, id=f"{now_ms - 7_200_000 + i}-0")
    await pipe.execute()
    fresh = [await store.r.xadd(store.k.results, {"result": "{}"}) for _ in range(10)]
    removed = await store.trim_results(3600)
    left = [e for e, _ in await store.r.xrange(store.k.results)]
    assert removed >= 400 and len(left) == 510 - removed
    assert left[-10:] == fresh
    assert await store.trim_results(3600) < 100  # approximate: whole stream nodes only


def digits_of(text: str) -> str:
    return re.sub(r"[^0-9]", "", text)


async def test_forget_by_number_finds_it_in_every_spelling_and_every_place(
        redis_server: LocalRedis, ns: str, store: Store, sim: RunningSimulator,
        workers: list[RunningWorker]) -> None:
    """A scan of every key and value finds no trace of the number, whatever its spelling:
    4155550111 is not in the digits of any key or value but the do-not-call entry's."""
    sim.sim.cfg.calls = CallSpec(ring_s=(0.1, 0.1), talk_s=(0.2, 0.2))
    w = start_worker(settings(redis_server, ns, sim), workers)
    later = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
    await push(
        store,
        {"id": "alice-1", "to": "+1-415-555-0111"},
        {"id": "bob-alt", "to": "+14155550122", "metadata": {"alt_phone": "(415) 555-0111"}},
        {"id": "carol-from", "to": "+14155550133", "from": "+1 415.555.0111"},
        {"id": "bad-other", "to": "+1 (415) 555-0111", "max_attempts": 0},
        {"id": "bad-newline", "to": "+14155550111\n"},
        {"id": "asleep", "to": "+14155550144", "not_before": later,
         "metadata": {"mobile": "4155550111"}},
        {"id": "dave", "to": "+14155550155"})
    results = await wait_results(store, 6, timeout=20)
    assert {r["job_id"] for r in results} == {
        "alice-1", "bob-alt", "carol-from", "bad-other", "bad-newline", "dave"}
    while await state_of(store, "asleep") != "delayed":
        await asyncio.sleep(0.05)
    await w.stop()
    workers.remove(w)
    await push(store, {"id": "queued-alt", "to": "+14155550166",
                       "metadata": {"phone_alt": "1 415 555 0111"}},
               '{"to": "+14155550111", "metadata": {"x": NaN}}')  # no id, never ingested
    await store.r.sadd(store.k.dnc, ALICE)
    await store.r.set(store.k.prefix + "reply:r1", json.dumps({"raw": '{"to": "415-555-0111"}'}),
                      px=60_000)  # a grant reply cached for a retried call
    before = await everything(store)
    assert sum("4155550111" in digits_of(k + v) for k, v in before.items()) > 5

    out = cli("forget", "--number", "+1 415 555 0111", env=redis_env(redis_server, ns))
    assert out.returncode == 0, out.stderr

    after = await everything(store)
    left = {k for k, v in after.items() if "4155550111" in digits_of(k + v)}
    assert left == {store.k.dnc}, {k: after[k][:300] for k in left}
    assert [json.loads(f["result"])["job_id"] for _, f in
            await store.r.xrange(store.k.results)] == ["dave"]
    assert await store.r.hget(store.k.job("dave"), "state") == "done"


async def test_entries_added_during_forget_are_matched_by_the_numbers_digits(
        store: Store) -> None:
    """The script matches what arrived after the caller's scan by the number's digits, in
    any spelling; other payloads stay."""
    spellings = ["+14155550111", "+1 (415) 555-0111", "415.555.0111", "4155550111\n"]
    for i, to in enumerate(spellings):
        await store.r.xadd(store.k.jobs, {"job": json.dumps({"id": f"a{i}", "to": to})})
    keep = [await store.r.xadd(store.k.jobs, {"job": json.dumps(j)}) for j in (
        {"id": "b1", "to": "+14155550112"}, {"id": "b2", "to": "+141555501110"})]
    await store.r.xadd(store.k.results, {"result": json.dumps(
        {"job_id": None, "outcome": "invalid", "error_message": "to: '415 555 0111\\n'"})})
    res = await store.s.call("forget", group=GROUP, ids=[], numbers=[ALICE],
                             patterns=[needle(ALICE).lua], results=[], entries=[], replies=[],
                             after_results="0-0", after_jobs="0-0", tail=100, fence=60)
    assert (res["entries"], res["results"]) == (4, 1)
    assert [e for e, _ in await store.r.xrange(store.k.jobs)] == keep


async def test_forget_by_id_erases_the_jobs_subject_log(
        redis_server: LocalRedis, ns: str, store: Store, sim: RunningSimulator,
        workers: list[RunningWorker]) -> None:
    """A per-subject cap keeps a log named after the subject (the person or lead): erasing the
    job erases it, and another subject's log stays."""
    sim.sim.cfg.calls = CallSpec(ring_s=(0.1, 0.1), talk_s=(0.1, 0.1))
    capped = {"policy": {"max_calls_per_subject": ["5/day"]}}
    w = start_worker(settings(redis_server, ns, sim, **capped), workers)
    await push(store, {"id": "alice-s1", "to": ALICE, "subject": "lead-alice"},
               {"id": "bob-s1", "to": "+14155550122", "subject": "lead-bob"})
    assert len(await wait_results(store, 2, timeout=20)) == 2
    await w.stop()
    workers.remove(w)
    keys = [str(k) async for k in store.r.scan_iter(match=store.k.subject_log("*"))]
    assert store.k.subject_log("lead-alice") in keys  # the log the erasure must take

    out = cli("forget", "--id", "alice-s1", env=redis_env(redis_server, ns))
    assert out.returncode == 0, out.stderr
    assert "1 subject logs" in out.stdout
    after = await everything(store)
    assert not [k for k, v in after.items() if "lead-alice" in k or "lead-alice" in v]
    assert store.k.subject_log("lead-bob") in after
