"""Producer API: push jobs in the wire format of DESIGN §3.1, cancel them, read results."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable
from typing import Any

from dispatcher.jobs import InvalidJob, parse_job
from dispatcher.store import Store, connect


class JobRejected(ValueError):
    """Raised by ``enqueue(validate=True)``: the job would only produce an ``invalid`` result."""


class Client:
    def __init__(self, redis_url: str = "redis://localhost:6379/0",
                 namespace: str = "dispatcher"):
        self.store = Store(connect(redis_url), namespace)

    async def enqueue(self, jobs: Iterable[dict[str, Any]], *, validate: bool = True
                      ) -> list[str]:
        """XADD each job; with ``validate``, refuse the batch if any job is malformed."""
        batch = list(jobs)
        if validate:
            for i, job in enumerate(batch):
                parsed = parse_job(json.dumps(job))
                if isinstance(parsed, InvalidJob):
                    raise JobRejected(f"job {i} ({job.get('id')!r}): {parsed.error}")
        return await self.store.enqueue(batch)

    async def cancel(self, job_id: str, ttl_s: int = 7 * 86400) -> bool:
        """True when the job had not finished: it gets ``cancelled`` unless already dialled."""
        return await self.store.cancel(job_id, ttl_s)

    async def results(self, start: str = "0", follow: bool = False, block_ms: int = 1000
                      ) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        last = start
        while True:
            batch = await self.store.read_results(last, 500, block_ms if follow else None)
            for eid, res in batch:
                last = eid
                yield eid, res
            if not batch and not follow:
                return

    async def close(self) -> None:
        await self.store.close()
