"""BullMQ (Python) doing the same work: one Worker, ``concurrency`` jobs at a time, the call
id kept as the job's return value (completed jobs are kept: ``removeOnComplete`` off)."""

from __future__ import annotations

import asyncio
import signal
from typing import Any

from bullmq import Worker  # type: ignore[import-untyped]
from peers.work import CONCURRENCY, REDIS, session, start_call

QUEUE = "calls"


async def main() -> None:
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with session() as s:
        async def process(job: Any, token: str) -> str:
            return await start_call(s, job.data)

        worker = Worker(QUEUE, process, {"connection": REDIS, "concurrency": CONCURRENCY})
        await stop.wait()
        await worker.close()


if __name__ == "__main__":
    asyncio.run(main())
