"""The jobs list's cursor under many jobs that entered their state in the same millisecond
(one INGEST call stamps up to 500 with one time): paged 50 at a time, every job the filter
matches is read exactly once, whichever way the list is ordered."""

from __future__ import annotations

import pytest

from dispatcher.ops import jobactions
from dispatcher.ops.jobfilter import JobFilter
from dispatcher.store import Store
from tests.integration.test_console_jobs_browser import placement


@pytest.mark.parametrize("oldest_first", [False, True])
async def test_paging_reads_every_match_once_across_shared_scores(
        store: Store, oldest_first: bool) -> None:
    for k in range(0, 3_000, 500):
        await store.ingest([placement(i) for i in range(k, k + 500)])
    held = await store.r.zrange(store.k.job_index("delayed", "spring"), 0, -1)
    truth = {str(i) for i in held}
    assert len(truth) > 400
    flt = JobFilter(state="delayed", campaign="spring", oldest_first=oldest_first)
    shown: list[str] = []
    cursor = None
    while True:
        listing = await jobactions.page(store, flt, 50, cursor)
        shown += [str(row["id"]) for row in listing.rows]
        if listing.cursor is None:
            break
        cursor = listing.cursor
    assert len(shown) == len(set(shown)) and set(shown) == truth
