"""The jobs list's index against real Redis: after every step of a job's life (intake, grant,
call, wait, result, redrive, intake again, cancel, erasure) each job is in exactly the sets of
its state, campaign and outcome; done sets are trimmed to the results' size."""

from __future__ import annotations

import json
from typing import Any

from dispatcher.store import Store
from dispatcher.store.keys import GROUP
from tests.integration.test_scripts import NOW, granted, job_args, pushed

LISTED = {"queued", "delayed", "parked", "dialing", "tracking", "finishing", "done",
          "redriven", "orphaned"}


async def index(store: Store) -> dict[str, set[str]]:
    """Each index set's members, by its key without the prefix."""
    out = {}
    async for key in store.r.scan_iter(match=store.k.prefix + "j[xo]:*"):
        out[key[len(store.k.prefix):]] = set(await store.r.zrange(key, 0, -1))
    return out


async def expected(store: Store) -> dict[str, set[str]]:
    """The sets each job hash says it belongs in."""
    out: dict[str, set[str]] = {}
    async for key in store.r.scan_iter(match=store.k.job_prefix + "*"):
        f: dict[str, Any] = await store.r.hgetall(key)
        jid = key[len(store.k.job_prefix):]
        if f.get("state") not in LISTED:
            continue
        names = [f"jx:{f['state']}"]
        if f.get("camp"):
            names.append(f"jx:{f['state']}:{f['camp']}")
        if f["state"] == "done" and f.get("outcome"):
            names.append(f"jo:{f['outcome']}")
        for n in names:
            out.setdefault(n, set()).add(jid)
    return out


async def step(store: Store, name: str, **args: Any) -> Any:
    res = await store.s.call(name, NOW, **args)
    assert await index(store) == await expected(store), f"after {name}"
    return res


async def test_every_state_change_keeps_the_index_exact(store: Store) -> None:
    j = await granted(store)  # j0, j1 dialling; j2 queued
    assert await index(store) == await expected(store)
    await step(store, "track", items=[{"id": j["id"], "dtok": j["tok"], "call_id": "c-1",
                                       "first_ms": 0, "ttl": 600}])
    await step(store, "defer", id="j1", to="delayed", reason="retry", until=NOW + 1000)
    await step(store, "finish", group=GROUP, ttl=600, maxlen=1000, items=[
        {"id": j["id"], "result": "{}", "outcome": "exhausted"}])
    assert (await index(store))["jo:exhausted"] == {j["id"]}
    await step(store, "redrive", ids=[j["id"]], outcomes=["exhausted"], dry=False)
    assert (await index(store))["jx:redriven:c1"] == {j["id"]}
    entries = await pushed(store, 1)
    await step(store, "ingest", group=GROUP, entries=[job_args(j["id"], entries[0])],
               grants=[])
    await step(store, "cancel", id="j2", ttl=600, ahead=False)
    await step(store, "forget", group=GROUP, ids=["j1"], numbers=[], patterns=[],
               results=[], entries=[], replies=[], after_results="0-0",
               after_jobs="0-0", tail=0, fence=60)
    assert "j1" not in set().union(*(await index(store)).values())


async def test_the_done_sets_keep_no_more_than_the_results(store: Store) -> None:
    entries = await pushed(store, 6)
    await store.s.call("ingest", NOW, group=GROUP, entries=[
        job_args(f"j{i}", e, place="finish", fin="invalid") for i, e in enumerate(entries)],
        grants=[])
    await store.s.call("finish", NOW, group=GROUP, ttl=600, maxlen=4, items=[
        {"id": f"j{i}", "result": json.dumps({"job_id": f"j{i}"}), "outcome": "invalid"}
        for i in range(6)])
    got = await index(store)
    assert len(got["jx:done"]) == len(got["jx:done:c1"]) == len(got["jo:invalid"]) == 4
    assert await store.r.ttl(store.k.job_index("done", "c1")) > 0
