"""Finding a call that may exist, page by page, every page paced like any provider request."""

from __future__ import annotations

import asyncio
import time

from dispatcher.logs import get_logger
from dispatcher.metrics import REQUESTS
from dispatcher.pacing import Pacer
from dispatcher.providers.base import Adapter, CallState, ProviderFailure

MAX_PAGES = 50
TRIES_PER_PAGE = 3


async def find_job_calls(pacer: Pacer, adapter: Adapter, provider: str, job_id: str,
                         since: float, ignore: tuple[str, ...]) -> list[CallState] | None:
    """Calls of this job not in ``ignore``; None when the provider could not be asked.

    Stops at the first page with a match. None means *unknown*: the caller must not dial.
    """
    cursor: str | None = None
    restarted = False
    for _ in range(MAX_PAGES):
        page: tuple[list[CallState], str | None] | None = None
        for _ in range(TRIES_PER_PAGE):
            adm = await pacer.acquire(provider, job_id=job_id, deadline=time.time() + 60)
            if not adm.granted:
                return None
            try:
                page = await adapter.find_calls(job_id, since, cursor)
                REQUESTS.labels(provider, "lookup", "200").inc()
                break
            except ProviderFailure as f:
                REQUESTS.labels(provider, "lookup", str(f.error.status or f.error.code)).inc()
                if f.error.code == "invalid_cursor" and not restarted:
                    cursor, restarted = None, True  # PROVIDERS §1.4: restart the listing
                    continue
                get_logger(job_id=job_id, provider=provider).warning(
                    "call.lookup_failed", http_status=f.error.status, error_code=f.error.code)
                await asyncio.sleep(0.2 if f.error.status != 429 else
                                    max(1.0, f.error.retry_after_s or 1.0))
        if page is None:
            return None
        found = [c for c in page[0] if c.call_id not in ignore]
        if found or page[1] is None:
            return found
        cursor = page[1]
    return None  # more pages than we may read: unknown, never a reason to dial
