"""Cancelling and redriving the jobs a filter names (the console's jobs list, ``dispatcher
cancel`` and ``dispatcher redrive``): the ids come from the jobs list's index, a page at a
time, and each job is changed by its own atomic script (CANCEL, REDRIVE)."""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Sequence
from dataclasses import dataclass, field

from dispatcher.ops.jobfilter import CANCELLABLE, REDRIVABLE, FilterError, JobFilter
from dispatcher.store import Store
from dispatcher.store.joblist import JobPage

PAGE = 1000
MAX_IDS = 1_000_000  # one action's reach (a larger set: narrow the filter, or run it again)
BATCH = 500
AT_ONCE = 50  # cancels in flight at once


@dataclass
class Tally:
    """What an action did (or, dry, would do): ids changed and, per other answer, a count."""

    changed: list[str] = field(default_factory=list)
    other: collections.Counter[str] = field(default_factory=collections.Counter)

    @property
    def n(self) -> int:
        return len(self.changed)


async def page(store: Store, flt: JobFilter, size: int = 50,
               cursor: tuple[int, int] | None = None) -> JobPage:
    return await store.list_jobs(flt.args(size, cursor))


async def matching_ids(store: Store, flt: JobFilter, limit: int = MAX_IDS) -> list[str]:
    """Every id the filter matches now, newest first (or oldest, as the filter says)."""
    ids: dict[str, None] = {}
    cursor = None
    while len(ids) < limit:
        listing = await page(store, flt, PAGE, cursor)
        ids.update((str(r["id"]), None) for r in listing.rows)
        if listing.cursor is None:
            break
        cursor = listing.cursor
    return list(ids)[:limit]


def check_cancel(flt: JobFilter) -> None:
    if flt.state not in CANCELLABLE:
        raise FilterError(f"state: only jobs not yet dialled can be cancelled (expected one of "
                          f"{', '.join(CANCELLABLE)}, got {flt.state!r})")


def redrive_outcomes(flt: JobFilter) -> list[str]:
    if flt.state != "done":
        raise FilterError(f"state: only done jobs can be redriven (got {flt.state!r})")
    if flt.outcome and flt.outcome not in REDRIVABLE:
        raise FilterError(f"outcome: expected one of {', '.join(REDRIVABLE)}, got "
                          f"{flt.outcome!r}")
    return [flt.outcome] if flt.outcome else list(REDRIVABLE)


async def cancel_ids(store: Store, ids: Sequence[str], ttl_s: int, *, dry: bool) -> Tally:
    """Cancel these jobs (dry: count the ones that are still cancellable)."""
    tally = Tally()
    if dry:
        found = await store.peek_states(list(ids))
        for job_id in ids:
            if found.get(job_id) in CANCELLABLE:
                tally.changed.append(job_id)
            else:
                tally.other[found.get(job_id) or "unknown"] += 1
        return tally
    for start in range(0, len(ids), AT_ONCE):
        chunk = ids[start:start + AT_ONCE]
        res = await asyncio.gather(*(store.cancel_job(i, ttl_s, ahead=False) for i in chunk))
        for job_id, reply in zip(chunk, res, strict=True):
            if reply.value == "cancelled":
                tally.changed.append(job_id)
            else:
                tally.other[reply.value] += 1
    return tally


async def redrive_ids(store: Store, ids: Sequence[str], outcomes: Sequence[str], *,
                      dry: bool) -> Tally:
    tally = Tally()
    for start in range(0, len(ids), BATCH):
        for job_id, reply in await store.redrive(ids[start:start + BATCH], outcomes, dry=dry):
            if reply.value in ("redriven", "would"):
                tally.changed.append(job_id)
            else:
                tally.other[reply.value] += 1
    return tally


async def cancel_matching(store: Store, flt: JobFilter, ttl_s: int, *, dry: bool) -> Tally:
    check_cancel(flt)
    return await cancel_ids(store, await matching_ids(store, flt), ttl_s, dry=dry)


async def redrive_matching(store: Store, flt: JobFilter, *, dry: bool) -> Tally:
    outcomes = redrive_outcomes(flt)
    return await redrive_ids(store, await matching_ids(store, flt), outcomes, dry=dry)
