"""The five systems as the harness drives them: how to push jobs with each one's own producer
API, which worker process to start, and how many results it has recorded.

Each system gets the producer's job id as its own job id (the dispatcher's dedupe; SAQ's
``key``, arq's ``_job_id``, BullMQ's ``jobId``), so every system refuses a second push of it.
"""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, cast

import redis
import redis.asyncio as aioredis

from benchmarks import common

Job = dict[str, Any]
CHUNK = 500


def _int(reply: object) -> int:
    """A sync client's integer reply (redis-py types them as maybe-awaitable)."""
    return int(cast(int, reply))


def _wire(job: Job) -> str:
    """Compact JSON, as ``dispatcher.client`` writes it."""
    return json.dumps(job, separators=(",", ":"))


@dataclass
class Setup:
    """Where one system runs: its private Redis, the stub, the worker's concurrency."""

    redis_url: str
    stub_url: str
    concurrency: int
    tmp: Path


class System:
    """One system; ``open`` before pushing, ``close`` after."""

    name: ClassVar[str]
    module: ClassVar[str]  # the worker, run as ``python -m <module>`` from benchmarks/

    def __init__(self, setup: Setup) -> None:
        self.setup = setup

    def worker_cmd(self) -> list[str]:
        return [sys.executable, "-m", self.module]

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def push(self, jobs: list[Job]) -> None:
        """Many jobs, batched the way the system's API allows."""
        for i in range(0, len(jobs), CHUNK):
            await asyncio.gather(*(self.push_one(j) for j in jobs[i:i + CHUNK]))

    async def push_one(self, job: Job) -> None:
        raise NotImplementedError

    def done(self, r: redis.Redis, total: int) -> int:
        """Jobs whose result is recorded."""
        raise NotImplementedError


class Raw(System):
    name, module = "raw loop", "peers.raw_worker"
    stream, group = "raw:jobs", "workers"

    async def open(self) -> None:
        self.r = aioredis.Redis.from_url(self.setup.redis_url)
        if not await self.r.exists(self.stream):
            await self.r.xgroup_create(self.stream, self.group, id="0", mkstream=True)

    async def close(self) -> None:
        await self.r.aclose()

    async def push(self, jobs: list[Job]) -> None:
        for i in range(0, len(jobs), CHUNK):
            pipe = self.r.pipeline(transaction=False)
            for j in jobs[i:i + CHUNK]:
                pipe.xadd(self.stream, {"job": _wire(j)})
            await pipe.execute()

    async def push_one(self, job: Job) -> None:
        await self.r.xadd(self.stream, {"job": _wire(job)})

    def done(self, r: redis.Redis, total: int) -> int:
        g = cast(list[dict[str, Any]], r.xinfo_groups(self.stream))[0]
        return int(g["entries-read"] or 0) - int(g["pending"])


class Dispatcher(System):
    name, module = "dispatcher", "dispatcher"
    ns = "pb"

    def worker_cmd(self) -> list[str]:
        s = self.setup
        cfg = s.tmp / "dispatcher.toml"
        default = common.provider(s.stub_url, ["100000000/minute"])
        cfg.write_text(common.worker_toml(s.redis_url, self.ns, {"default": default},
                                          concurrency=s.concurrency,
                                          tracking=common.NO_TRACKING))
        return common.run_cmd(cfg)

    async def open(self) -> None:
        from dispatcher.client import Client
        self.c = Client(self.setup.redis_url, namespace=self.ns)

    async def close(self) -> None:
        await self.c.close()

    async def push(self, jobs: list[Job]) -> None:
        for i in range(0, len(jobs), CHUNK):
            await self.c.enqueue(jobs[i:i + CHUNK])

    async def push_one(self, job: Job) -> None:
        await self.c.enqueue([job])

    def done(self, r: redis.Redis, total: int) -> int:
        return _int(r.xlen("{" + self.ns + "}:results"))


class Saq(System):
    name, module = "SAQ", "peers.saq_worker"

    async def open(self) -> None:
        from saq import Queue
        self.q = Queue.from_url(self.setup.redis_url, name="calls")

    async def close(self) -> None:
        await self.q.disconnect()

    async def push_one(self, job: Job) -> None:
        await self.q.enqueue("call", key=job["id"], payload=job)

    def done(self, r: redis.Redis, total: int) -> int:
        return total - _int(r.zcard("saq:calls:incomplete"))


class Arq(System):
    name, module = "arq", "peers.arq_worker"

    async def open(self) -> None:
        from arq import create_pool
        from arq.connections import RedisSettings
        self.pool = await create_pool(RedisSettings.from_dsn(self.setup.redis_url))

    async def close(self) -> None:
        await self.pool.aclose()

    async def push_one(self, job: Job) -> None:
        await self.pool.enqueue_job("call", job, _job_id=job["id"])

    def done(self, r: redis.Redis, total: int) -> int:
        return total - _int(r.zcard("arq:queue"))


class BullMQ(System):
    name, module = "BullMQ", "peers.bullmq_peer"

    async def open(self) -> None:
        from bullmq import Queue  # type: ignore[import-untyped]
        self.q = Queue("calls", {"connection": self.setup.redis_url})

    async def close(self) -> None:
        await self.q.close()

    async def push(self, jobs: list[Job]) -> None:
        for i in range(0, len(jobs), CHUNK):
            await self.q.addBulk([{"name": "call", "data": j, "opts": {"jobId": j["id"]}}
                                  for j in jobs[i:i + CHUNK]])

    async def push_one(self, job: Job) -> None:
        await self.q.add("call", job, {"jobId": job["id"]})

    def done(self, r: redis.Redis, total: int) -> int:
        return _int(r.zcard("bull:calls:completed"))


SYSTEMS: dict[str, type[System]] = {
    "raw": Raw, "dispatcher": Dispatcher, "saq": Saq, "bullmq": BullMQ, "arq": Arq}
