"""An asyncio producer: push a campaign, say which ids were already known, wait for results.

    REDIS_URL=redis://localhost:6379/0 python examples/python/producer.py
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from dispatcher.client import Client

LEADS = [("lead-1001", "+14155550100", "Ann"), ("lead-1002", "+12125550101", "Bob")]


async def main() -> None:
    async with Client(os.environ.get("REDIS_URL", "redis://localhost:6379/0"),
                      os.environ.get("DISPATCHER_NAMESPACE", "dispatcher")) as client:
        jobs: list[dict[str, Any]] = [
            {"id": i, "to": to, "campaign": "spring-2026", "metadata": {"name": name}}
            for i, to, name in LEADS]
        sent = await client.enqueue(jobs)  # validated first: a bad job raises JobRejected
        print(f"pushed {len(sent)} jobs; already known: {sent.duplicates or 'none'}")
        for job in jobs:
            result = await client.wait(job["id"], timeout=300)
            print(job["id"], result["outcome"], result.get("answer_status"))
        status = await client.campaign("spring-2026")
        if status:
            print(f"campaign: {status.done} done, {status.remaining} to go")


if __name__ == "__main__":
    asyncio.run(main())
