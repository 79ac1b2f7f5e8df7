"""The baseline: XREADGROUP a batch, POST each job, XACK it. No pacing, dedupe or results:
the least any Redis-stream worker can do for the same work."""

from __future__ import annotations

import asyncio
import json
import signal

import redis.asyncio as aioredis
from peers.work import CONCURRENCY, REDIS, session, start_call

STREAM, GROUP = "raw:jobs", "workers"


async def main() -> None:
    r = aioredis.Redis.from_url(REDIS, decode_responses=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with session() as s:
        async def one(eid: str, job: str) -> None:
            await start_call(s, json.loads(job))
            await r.xack(STREAM, GROUP, eid)

        while not stop.is_set():
            resp = await r.xreadgroup(GROUP, "c", {STREAM: ">"}, count=CONCURRENCY, block=100)
            batch = [(eid, f["job"]) for _, es in resp or [] for eid, f in es]
            await asyncio.gather(*(one(e, j) for e, j in batch))
    await r.aclose()


if __name__ == "__main__":
    asyncio.run(main())
