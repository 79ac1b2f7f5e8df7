"""The console's jobs list over HTTP against real Redis: filters and pages read from the index
the scripts keep, numbers masked, XSS escaped, and the cancel / redrive actions guarded like
every other action (token, CSRF, this site)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from dispatcher.config.console import ConsoleConfig
from dispatcher.dev.localredis import LocalRedis
from dispatcher.ops import audit, jobactions
from dispatcher.ops.jobfilter import JobFilter
from dispatcher.store import Store
from dispatcher.store.types import ResultItem
from tests.integration.test_console_http import (
    ACT,
    SEE,
    fetch,
    log_in,
    place,
    quiet_settings,
    running_console,
    token_file,
)


@pytest.fixture
async def console(redis_server: LocalRedis, ns: str, tmp_path: Path) -> AsyncIterator[str]:
    cfg = ConsoleConfig(token_file=str(token_file(tmp_path)))
    async with running_console(quiet_settings(redis_server, ns), cfg) as url:
        yield url


ROW = re.compile(r'<tr data-job="([^"]*)" data-state="([^"]*)">')
NEXT = re.compile(r'<a class="next" href="([^"]+)">')


async def listed(url: str, path: str, headers: dict[str, str] | None = None
                 ) -> tuple[list[str], str]:
    """Every job id the list shows, following its Next links; and the first page's HTML."""
    ids: list[str] = []
    first = ""
    while path:
        status, body, _ = await fetch(url + path.replace("&amp;", "&"), headers=headers)
        assert status == 200, body
        first = first or body
        ids += [m.group(1) for m in ROW.finditer(body)]
        nxt = NEXT.search(body)
        path = nxt.group(1) if nxt else ""
    return ids, first


async def test_the_list_filters_by_campaign_state_and_reason_and_pages_through_all(
        console: str, store: Store) -> None:
    for i in range(120):
        await place(store, f"s{i}", "delayed", "retry", campaign="spring", due_ms=1)
    for i in range(7):
        await place(store, f"a{i}", "delayed", "window", campaign="autumn", due_ms=1)
        await place(store, f"q{i}", "queued", campaign="spring", priority="high")
    ids, first = await listed(console, "/jobs?state=delayed&campaign=spring")
    assert sorted(ids) == sorted(f"s{i}" for i in range(120))  # no page repeats or skips one
    assert 'data-total="120"' in first
    ids, _ = await listed(console, "/jobs?state=delayed&wait_reason=window")
    assert sorted(ids) == [f"a{i}" for i in range(7)]
    ids, _ = await listed(console, "/jobs?campaign=spring&priority=high")  # queued: default
    assert sorted(ids) == [f"q{i}" for i in range(7)]
    status, body, _ = await fetch(console + "/jobs?state=sleeping")
    assert status == 400 and "state: expected one of" in body


async def test_numbers_are_masked_in_the_list_unless_the_token_grants_them(
        console: str, store: Store) -> None:
    await place(store, "n1", "queued", to="+14155550777")
    _, anon = await listed(console, "/jobs")
    _, seen = await listed(console, "/jobs", (await log_in(console, SEE)).headers)
    assert "+14155550777" not in anon and "********777" in anon
    assert "+14155550777" in seen


async def test_job_ids_campaign_names_and_details_are_escaped(
        console: str, store: Store) -> None:
    evil = '<img src=x onerror="alert(1)">'
    await place(store, evil, "delayed", "retry", campaign="<script>c</script>", due_ms=1,
                detail="<b>bold</b>", metadata={"note": "<script>m</script>"})
    _, body = await listed(console, "/jobs?state=delayed&campaign=%3Cscript%3Ec%3C/script%3E")
    assert 'data-job="&lt;img src=x onerror=&quot;alert(1)&quot;&gt;"' in body
    for raw in (evil, "<script>c</script>", "<b>bold</b>", "<script>m"):
        assert raw not in body
    assert "&lt;script&gt;c&lt;/script&gt;" in body


async def test_cancel_is_refused_without_a_token_or_csrf_and_works_with_them(
        console: str, store: Store) -> None:
    for i in range(5):
        await place(store, f"c{i}", "queued", campaign="spring")
    bulk, one = console + "/actions/jobs/cancel", console + "/actions/job/c0/cancel"
    me = await log_in(console, ACT)
    form = {"state": "queued", "campaign": "spring"}
    refused = [await fetch(bulk, "POST", data=form),
               await fetch(one, "POST", data={}),
               await fetch(bulk, "POST", data=form, headers=me.headers),  # no CSRF value
               await fetch(bulk, "POST", data={**form, "csrf": me.csrf},
                           headers={**me.headers, "Origin": "https://evil.example"})]
    assert [r[0] for r in refused] == [403, 403, 403, 403]
    assert (await store.counts("spring")).get("queued") == 5
    status, body, _ = await fetch(console + "/jobs/confirm?action=cancel&state=queued"
                                  "&campaign=spring", headers=me.headers)
    assert status == 200 and 'data-would="5"' in body
    status, _, headers = await fetch(one, "POST", data={"csrf": me.csrf},
                                     headers={**me.headers, "Origin": console})
    assert status == 303 and headers["Location"] == "/jobs?id=c0"
    status, _, headers = await fetch(bulk, "POST", data={**form, "csrf": me.csrf},
                                     headers={**me.headers, "Origin": console})
    assert status == 303 and "did=cancelled&n=4" in headers["Location"]
    counts = await store.counts("spring")
    assert counts.get("queued") == 0 and counts.get("finishing") == 5
    trail = [(e.action, e.detail) for e in reversed(await audit.latest(store, 10))]
    assert trail == [("job.cancel", ""), ("job.cancel", "4 jobs cancelled")]  # refused: none


async def test_redrive_by_filter_counts_first_then_puts_the_jobs_back(
        console: str, store: Store) -> None:
    for i in range(4):
        await place(store, f"x{i}", "queued", campaign="spring")
    flt = JobFilter(state="queued", campaign="spring")
    await jobactions.cancel_matching(store, flt, 600, dry=False)
    await store.finish([ResultItem(f"x{i}", None, {"job_id": f"x{i}", "outcome": "cancelled"},
                                   "cancelled") for i in range(4)], 600)  # as a worker would
    me = await log_in(console, ACT)
    status, body, _ = await fetch(console + "/jobs/confirm?action=redrive&outcome=cancelled",
                                  headers=me.headers)
    assert 'data-would="4"' in body
    assert (await store.counts("spring")).get("redriven", 0) == 0  # the count changed nothing
    status, _, headers = await fetch(console + "/actions/jobs/redrive", "POST",
                                     data={"outcome": "cancelled", "csrf": me.csrf},
                                     headers={**me.headers, "Origin": console})
    assert status == 303 and "did=redriven&n=4" in headers["Location"]
    assert [(e.action, e.detail) for e in await audit.latest(store, 1)] == [
        ("redrive", "4 jobs redriven")]
    ids, _ = await listed(console, "/jobs?state=redriven&campaign=spring")
    assert sorted(ids) == [f"x{i}" for i in range(4)]
