"""What producers and operators' tools ask of Redis besides the scripts: push jobs, find a
result by its finishing time, find which providers have ready jobs, check the connection."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis

from dispatcher.store import keys as K
from dispatcher.store.protocol import PushArgs, PushReply
from dispatcher.store.scripts import Scripts

PUSHED_TTL_S = 86400  # how long a batch token is remembered

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
                         ttl_s: int = PUSHED_TTL_S) -> int:
        """Push a batch of job payloads in one script call, once per ``batch`` token (made up
        when not given): a retry after a lost reply adds nothing. Returns entries added."""
        res: PushReply = await self.s.call("push", **PushArgs(
            batch=batch or uuid.uuid4().hex, jobs=list(payloads), ttl=ttl_s))
        return int(res["n"])

    async def newest_result_id(self) -> str:
        newest: Any = await self.r.xrevrange(self.k.results, count=1)
        return str(newest[0][0]) if newest else "0"

    async def done_ms(self, job_id: str) -> int | None:
        """When the job's result was written (None: not finished, or forgotten)."""
        v = await self.r.hget(self.k.job(job_id), "done_ms")
        return None if v is None else int(v)

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
