"""A BullMQ (Python) worker doing the same work: POST one call start per job.

Pacing is BullMQ's own: one global rate limit per queue (a fixed window of max/duration).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal

import aiohttp
from bullmq import Worker

URL = os.environ["BENCH_SIM_URL"] + "/api/v1/public/calls/outbound"
HEADERS = {"Authorization": "Bearer " + os.environ["BENCH_KEY"]}


async def main() -> None:
    session = aiohttp.ClientSession(headers=HEADERS)

    async def process(job, token):  # type: ignore[no-untyped-def]
        body = {"phone_number_id": "tel_pn_main", "destination_number": job.data["to"],
                "metadata": {"dispatcher_job_id": job.data["id"]}}
        async with session.post(URL, data=json.dumps(body),
                                headers={"Content-Type": "application/json"}) as r:
            await r.read()
            if r.status >= 300:
                raise RuntimeError(f"HTTP {r.status}")

    worker = Worker("calls", process, {"connection": os.environ["BENCH_REDIS"],
                                       "concurrency": 20})
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await worker.close()
    await session.close()


if __name__ == "__main__":
    asyncio.run(main())
