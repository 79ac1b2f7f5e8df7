"""What producers and operators' tools ask of Redis besides the scripts: push jobs, find a
result by its finishing time, find which providers have ready jobs, check the connection."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import Any, NamedTuple

import redis.asyncio as aioredis

from dispatcher.store import keys as K
from dispatcher.store.scripts import Scripts

PUSHED_TTL_S = 86400  # how long a batch token is remembered


class BatchPushed(NamedTuple):
    added: int  # stream entries added (0 when the batch was pushed before)
    known: int  # of the batch's ids, those the dispatcher already knew (advisory)


class Producing:
    r: aioredis.Redis
    k: K.Keys
    s: Scripts

    async def ping(self) -> None:
        await self.r.ping()

    async def push_jobs(self, jobs: Sequence[tuple[str | None, str]]
                        ) -> tuple[list[str], list[bool]]:
        """XADD each (id, payload) in one pipeline; also tells, per job, whether a worker
        already read a job with that id (advisory: the workers' own check is the real one)."""
        pipe = self.r.pipeline(transaction=False)
        for job_id, payload in jobs:
            pipe.hexists(self.k.dormant, str(job_id))  # first: a job that wakes is then a hash
            pipe.hexists(self.k.job(str(job_id)), "owner")
            pipe.xadd(self.k.jobs, {"job": payload})
        replies = await pipe.execute()
        seen = [bool(a or b) for a, b in zip(replies[0::3], replies[1::3], strict=True)]
        return [str(x) for x in replies[2::3]], seen

    async def push_batch(self, payloads: Sequence[str], batch: str | None = None,
                         ttl_s: int = PUSHED_TTL_S) -> BatchPushed:
        """Push a batch of job payloads in one script call, once per ``batch`` token (made up
        when not given): a retry after a lost reply adds nothing. Returns entries added and
        how many ids were already known (read by a worker before, or repeated in the batch;
        an id pushed but not yet read counts as new)."""
        res = await self.s.call("push", batch=batch or uuid.uuid4().hex, jobs=list(payloads),
                                ttl=ttl_s)
        return BatchPushed(int(res["n"]), int(res["known"]))

    async def newest_result_id(self) -> str:
        newest: Any = await self.r.xrevrange(self.k.results, count=1)
        return str(newest[0][0]) if newest else "0"

    async def done_ms(self, job_id: str) -> int | None:
        """When the job's result was written (None: not finished, or forgotten)."""
        done = await self.r.hget(self.k.job(job_id), "done_ms")
        return None if done is None else int(done)

    async def results_from(self, start: str, count: int) -> list[tuple[str, dict[str, Any]]]:
        """Results from stream id ``start`` on (``(id`` excludes it), oldest first."""
        entries: Any = await self.r.xrange(self.k.results, min=start, count=count)
        return [(str(eid), json.loads(f["result"])) for eid, f in entries]

    async def provider_names_with_ready_lists(self, priorities: Sequence[str]) -> set[str]:
        """Providers that have ready lists now, found by key name (a scan: a rare fallback)."""
        head = self.k.ready_campaigns_prefix
        found = set()
        async for key in self.r.scan_iter(match=head + "*", count=1000):
            prov, _, prio = str(key)[len(head):].rpartition(":")
            if prio in priorities and prov:
                found.add(prov)
        return found
