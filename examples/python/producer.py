"""An asyncio producer: push a campaign, say which ids were already known, wait for results.

    REDIS_URL=redis://localhost:6379/0 .venv/bin/python examples/python/producer.py

An id the dispatcher already knew is not dialled again: it says so and does not wait for it.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from dispatcher.client import Client

LEADS = [("crm-py-1001", "+14155550100", "Ann"), ("crm-py-1002", "+12125550101", "Bob")]


async def main() -> None:
    async with Client(os.environ.get("REDIS_URL", "redis://localhost:6379/0"),
                      os.environ.get("DISPATCHER_NAMESPACE", "dispatcher")) as client:
        jobs: list[dict[str, Any]] = [
            {"id": i, "to": to, "campaign": "spring-2026", "metadata": {"name": name}}
            for i, to, name in LEADS]
        sent = await client.enqueue(jobs)  # validated first: a bad job raises JobRejected
        print(f"pushed {len(sent)} jobs; already known: {', '.join(sent.duplicates) or 'none'}")
        new = [job["id"] for job in jobs if job["id"] not in sent.duplicates]
        if not new:
            print("nothing new to wait for (already known ids are not dialled again; change "
                  "the ids to push new jobs)")
        for job_id in new:
            result = await client.wait(job_id, timeout=300)
            print(job_id, result["outcome"], result.get("answer_status"))
        status = await client.campaign("spring-2026")
        if status:
            print(f"campaign: {status.done} done, {status.remaining} to go")


if __name__ == "__main__":
    asyncio.run(main())
