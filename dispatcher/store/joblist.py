"""The jobs list: pages read from the index sets the state-changing scripts keep
(lua/lib/core.lua, read by lua/joblist.lua)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NotRequired, TypedDict

import redis.asyncio as aioredis

from dispatcher.store.keys import Keys
from dispatcher.store.scripts import Scripts, as_list

BUDGET = 5000  # ids one page may look at: a rare filter answers short, with a cursor


class JobListArgs(TypedDict):
    state: str
    n: int
    camp: NotRequired[str]
    outcome: NotRequired[str]
    prov: NotRequired[str]
    prio: NotRequired[str]
    wr: NotRequired[str]
    lo: NotRequired[int]
    hi: NotRequired[int]
    asc: NotRequired[bool]
    cur: NotRequired[dict[str, int]]
    budget: NotRequired[int]


@dataclass(frozen=True)
class JobPage:
    """One page: rows (the job's fields, ``id`` and ``since``), where to go on from
    (``None``: the end), the size of the set read and whether that size counts matches."""

    rows: list[dict[str, Any]]
    cursor: tuple[int, int] | None
    total: int
    exact: bool
    seen: int


class JobList:
    s: Scripts
    r: aioredis.Redis
    k: Keys

    async def peek_states(self, job_ids: list[str]) -> dict[str, str]:
        """Each known id's state, read without waking a sleeping job (it is delayed)."""
        pipe = self.r.pipeline(transaction=False)
        for job_id in job_ids:
            pipe.hget(self.k.job(job_id), "state")
            pipe.hexists(self.k.dormant, job_id)
        got = await pipe.execute()
        out = {}
        for job_id, state, asleep in zip(job_ids, got[0::2], got[1::2], strict=True):
            if state or asleep:
                out[job_id] = str(state or "delayed")
        return out

    async def list_jobs(self, args: JobListArgs) -> JobPage:
        full: dict[str, Any] = {"budget": BUDGET, **args}
        res: dict[str, Any] = await self.s.call("joblist", **full)
        nxt = res.get("next")
        cursor = (int(nxt["s"]), int(nxt["k"])) if isinstance(nxt, dict) and nxt else None
        return JobPage(rows=as_list(res["rows"]), cursor=cursor, total=int(res["total"]),
                       exact=bool(res["exact"]), seen=int(res["seen"]))
