"""SAQ doing the same work: one Worker, ``concurrency`` blocking dequeues (BLMOVE), the call
id kept as the job's result (SAQ keeps a finished job for its ``ttl``, 600 s by default)."""

from __future__ import annotations

import asyncio
from typing import Any

from peers.work import CONCURRENCY, REDIS, session, start_call
from saq import Queue, Worker

QUEUE = "calls"


async def startup(ctx: Any) -> None:
    ctx["http"] = session()


async def shutdown(ctx: Any) -> None:
    await ctx["http"].close()


async def call(ctx: Any, *, payload: dict[str, Any]) -> str:
    return await start_call(ctx["http"], payload)


async def main() -> None:
    queue = Queue.from_url(REDIS, name=QUEUE)
    worker = Worker(queue, [call], concurrency=CONCURRENCY, startup=startup,
                    shutdown=shutdown)
    await worker.start()  # returns on SIGTERM


if __name__ == "__main__":
    asyncio.run(main())
