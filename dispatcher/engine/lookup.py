"""Finding a call that may exist, page by page, every page paced like any provider request.

A provider that lists its calls (TelEcho: every page must be read, there is no filter) can
answer the look-ups of several jobs with one listing: the unsure jobs of one grant (a dead
worker's calls, taken over together) share one, and the grant gave them one place in the
provider's log between them instead of one each (lib/grant.lua), so twenty look-ups cost one
request, not a second of the provider's budget.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from typing import Protocol, runtime_checkable

from dispatcher.core.margins import SENDING
from dispatcher.core.model import CallState
from dispatcher.core.timing import Timing
from dispatcher.engine.pacing import Pacer
from dispatcher.logs import get_logger
from dispatcher.metrics import REQUESTS, count, status_label
from dispatcher.providers import Adapter
from dispatcher.providers.base import ProviderFailure
from dispatcher.store.types import GrantReply, GrantRules

MAX_PAGES = 50
TRIES_PER_PAGE = 3

Page = tuple[list[CallState], str | None]
Placed = tuple[float, str]  # a place in the provider's log: (when granted, its token)


@runtime_checkable
class ListsCalls(Protocol):
    """A dialect whose look-up reads the provider's list of calls (so one serves many)."""

    async def list_calls(self, since: float, cursor: str | None) -> Page: ...


def sharing_lookups(rules: dict[str, GrantRules], adapters: Mapping[str, Adapter]
                    ) -> dict[str, GrantRules]:
    """The grant rules, where a provider that lists its calls gives a grant's unsure jobs
    one place in its log between them (they share one listing), not one each."""
    return {name: replace(r, shared_lookup=isinstance(adapters.get(name), ListsCalls))
            for name, r in rules.items()}


async def _scan(pacer: Pacer, provider: str, timing: Timing, log_id: str,
                fetch: Callable[[str | None], Awaitable[Page]],
                enough: Callable[[list[CallState]], bool], placed: Placed | None) -> bool:
    """Read pages until ``enough`` says so or the listing ends: True. False: unknown (a page
    could not be read, or more pages than we may read)."""
    cursor: str | None = None
    restarted = False
    for _ in range(MAX_PAGES):
        page: Page | None = None
        for _ in range(TRIES_PER_PAGE):
            if placed is not None:
                SENDING.set(pacer.clock(provider, *placed))
                placed = None
            elif not (await pacer.request(provider, deadline=time.time() + 60)).granted:
                return False
            try:
                page = await fetch(cursor)
                count(REQUESTS, provider, "lookup", "200")
                break
            except ProviderFailure as failure:
                count(REQUESTS, provider, "lookup", status_label(failure.error))
                if failure.error.code == "invalid_cursor" and not restarted:
                    cursor, restarted = None, True  # a stale cursor: restart the listing
                    continue
                error = failure.error
                get_logger(job_id=log_id, provider=provider).warning(
                    "call.lookup_failed", http_status=error.status, error_code=error.code)
                await asyncio.sleep(timing.lookup_retry(error.status, error.retry_after_s))
        if page is None:
            return False
        if enough(page[0]) or page[1] is None:
            return True
        cursor = page[1]
    return False  # more pages than we may read: unknown, never a reason to dial


async def find_call(pacer: Pacer, adapter: Adapter, timing: Timing, job_id: str, call_n: int,
                    since: float, *, placed: Placed | None = None
                    ) -> list[CallState] | None:
    """The job's call number ``call_n`` if the provider has it; None when it could not be asked.

    None means *unknown*: the caller must not dial. ``placed``: a place in the provider's log
    the first request may use, so it waits for no other.
    """
    found: list[CallState] = []

    def enough(calls: list[CallState]) -> bool:
        found.extend(calls)
        return bool(calls)

    async def fetch(cursor: str | None) -> Page:
        return await adapter.find_calls(job_id, call_n, since, cursor)

    ok = await _scan(pacer, adapter.name, timing, job_id, fetch, enough, placed)
    return found if ok else None


class SharedLookup:
    """The look-ups of one grant's unsure jobs, answered by one listing of the provider's
    calls since the earliest of their dials (a superset of each job's own search).

    Each job's dial task calls ``find`` in its first step, before any of them awaits, so all
    are in before the listing starts (it is a task scheduled after them); a job that comes
    later looks its call up alone. The listing's first request uses the first place a member
    brings; the grant gave the others none.
    """

    @classmethod
    def of(cls, reply: GrantReply, pacer: Pacer, adapter: Adapter, timing: Timing
           ) -> SharedLookup | None:
        """The listing a grant's unsure jobs share (None: fewer than two, or the provider
        does not list its calls)."""
        if sum(g.unsure for g in reply.jobs) < 2 or not isinstance(adapter, ListsCalls):
            return None
        return cls(pacer, adapter, timing)

    def __init__(self, pacer: Pacer, adapter: Adapter, timing: Timing):
        self.pacer, self.adapter, self.timing = pacer, adapter, timing
        self.wanted: dict[str, tuple[int, float]] = {}  # job id -> (call number, since)
        self.placed: Placed | None = None
        self.closed = False
        self._listing: asyncio.Task[dict[str, list[CallState]] | None] | None = None

    async def find(self, job_id: str, call_n: int, since: float, placed: Placed | None
                   ) -> list[CallState] | None:
        if self.closed or not isinstance(self.adapter, ListsCalls):
            return await find_call(self.pacer, self.adapter, self.timing, job_id, call_n, since,
                                   placed=placed)
        self.wanted[job_id] = (call_n, since)
        self.placed = self.placed or placed
        if self._listing is None:
            self._listing = asyncio.create_task(self._list(self.adapter))
        found = await asyncio.shield(self._listing)
        if found is None:  # the listing could not answer (one old dial can make it too long
            # to read): each job asks for itself, as it would have alone
            return await find_call(self.pacer, self.adapter, self.timing, job_id, call_n, since)
        return found.get(job_id)  # a job the listing did not search for is unknown (None)

    async def _list(self, adapter: ListsCalls) -> dict[str, list[CallState]] | None:
        self.closed = True  # who comes from now on is not searched for: it looks alone
        wanted = dict(self.wanted)
        since = min(s for _, s in wanted.values())
        found: dict[str, list[CallState]] = {i: [] for i in wanted}

        def enough(calls: list[CallState]) -> bool:
            for call in calls:
                if call.correlation in wanted and call.call_n == wanted[call.correlation][0]:
                    found[call.correlation].append(call)
            return all(found.values())

        async def fetch(cursor: str | None) -> Page:
            return await adapter.list_calls(since, cursor)

        ok = await _scan(self.pacer, self.adapter.name, self.timing, ",".join(sorted(wanted)),
                         fetch, enough, self.placed)
        return found if ok else None
