"""Finding a call that may exist, page by page, every page paced like any provider request."""

from __future__ import annotations

import asyncio
import time

from dispatcher.core.margins import SENDING
from dispatcher.core.model import CallState
from dispatcher.core.timing import Timing
from dispatcher.engine.pacing import Pacer
from dispatcher.logs import get_logger
from dispatcher.metrics import REQUESTS, count, status_label
from dispatcher.providers import Adapter
from dispatcher.providers.base import ProviderFailure

MAX_PAGES = 50
TRIES_PER_PAGE = 3


async def find_call(pacer: Pacer, adapter: Adapter, timing: Timing, job_id: str, call_n: int,
                    since: float, *, placed: tuple[float, str] | None = None
                    ) -> list[CallState] | None:
    """The job's call number ``call_n`` if the provider has it; None when it could not be asked.

    None means *unknown*: the caller must not dial. ``placed``: (when granted, its token) a
    place in the provider's log the first request may use, so it waits for no other.
    """
    provider = adapter.name
    cursor: str | None = None
    restarted = False
    for _ in range(MAX_PAGES):
        page: tuple[list[CallState], str | None] | None = None
        for _ in range(TRIES_PER_PAGE):
            if placed is not None:
                SENDING.set(pacer.clock(provider, *placed))
                placed = None
            elif not (await pacer.request(provider, deadline=time.time() + 60)).granted:
                return None
            try:
                page = await adapter.find_calls(job_id, call_n, since, cursor)
                count(REQUESTS, provider, "lookup", "200")
                break
            except ProviderFailure as failure:
                count(REQUESTS, provider, "lookup", status_label(failure.error))
                if failure.error.code == "invalid_cursor" and not restarted:
                    cursor, restarted = None, True  # a stale cursor: restart the listing
                    continue
                error = failure.error
                get_logger(job_id=job_id, provider=provider).warning(
                    "call.lookup_failed", http_status=error.status, error_code=error.code)
                await asyncio.sleep(timing.lookup_retry(error.status, error.retry_after_s))
        if page is None:
            return None
        if page[0] or page[1] is None:
            return page[0]
        cursor = page[1]
    return None  # more pages than we may read: unknown, never a reason to dial
