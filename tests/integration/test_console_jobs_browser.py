"""The jobs list in a real browser (Debian's headless Chromium, driven by Playwright): what a
filter shows, page after page, is what Redis holds for 10,000 jobs; a filtered redrive of 50
exhausted jobs gives each one new result and one call at the provider; escaping holds.
Screenshots land in each test's tmp dir."""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp
from playwright.async_api import Browser, expect

from dispatcher.config.console import ConsoleConfig
from dispatcher.dev.localredis import LocalRedis
from dispatcher.simulator import RunningSimulator
from dispatcher.store import Store
from dispatcher.store.protocol import Place
from dispatcher.store.types import Placement
from tests.conftest import RunningWorker, make_settings, provider_cfg, start_worker, wait_results
from tests.integration.helpers import of_job, push, set_key
from tests.integration.test_console_browser import FAST, browser, log_in, tab_on
from tests.integration.test_console_http import quiet_settings, running_console, token_file

__all__ = ["browser"]  # the module's Chromium, shared by this file's tests
PLACES = (("queued", ""), ("delayed", "retry"), ("parked", "unknown_provider"))


def placement(i: int) -> Placement:
    """Job ``b<i>``: campaign spring or autumn, and one of three places, by i."""
    camp = ("spring", "autumn")[i % 2]
    where, reason = PLACES[(i // 2) % 3]
    jid = f"b{i}"
    raw = json.dumps({"id": jid, "to": f"+1415{i:07d}", "campaign": camp})
    return Placement(entry_id=f"1-{i}", job_id=jid, raw=raw, provider="default",
                     priority="normal", campaign=camp, to=f"+1415{i:07d}", dnc_key="",
                     expires_ms=0, place=Place(where), reason=reason,
                     due_ms=1 if where == "delayed" else 0, detail="")


async def test_the_list_filtered_by_campaign_and_state_is_what_redis_holds_for_10000_jobs(
        redis_server: LocalRedis, ns: str, store: Store, browser: Browser,
        tmp_path: Path) -> None:
    for k in range(0, 10_000, 500):  # the intake script, 500 jobs a call
        await store.ingest([placement(i) for i in range(k, k + 500)])
    pipe = store.r.pipeline(transaction=False)
    for i in range(10_000):
        pipe.hmget(store.k.job(f"b{i}"), "state", "camp")
    held = await pipe.execute()
    truth = {f"b{i}" for i, (state, camp) in enumerate(held)
             if state == "delayed" and camp == "spring"}
    assert len(truth) > 1000
    cfg = ConsoleConfig(token_file=str(token_file(tmp_path)))
    async with running_console(quiet_settings(redis_server, ns), cfg) as url, \
            tab_on(browser, url, tmp_path) as tab:
        page = tab.page
        await page.goto("/jobs")
        await page.select_option("select[name=state]", "delayed")
        await page.fill("input[name=campaign]", "spring")
        await page.click("form.filters button[type=submit]")
        await expect(page.locator(".summary")).to_have_attribute("data-total", str(len(truth)))
        await tab.shot("jobs-list")
        shown: list[str] = []
        while True:
            rows = page.locator("tr[data-job]")
            shown += [str(x) for x in await rows.evaluate_all(
                "rs => rs.map(r => r.getAttribute('data-job'))")]
            assert set(await rows.evaluate_all(
                "rs => rs.map(r => r.getAttribute('data-state'))")) == {"delayed"}
            nxt = page.locator("a.next")
            if not await nxt.count():
                break
            async with page.expect_navigation():  # read the next page, never this one
                await nxt.click()
        assert len(shown) == len(set(shown)) and set(shown) == truth
        await page.set_viewport_size({"width": 390, "height": 844})
        await page.goto("/jobs?state=parked&campaign=autumn")
        await tab.shot("jobs-list-phone")
    assert tab.errors == []


async def test_a_filtered_redrive_of_50_exhausted_jobs_dials_each_once_more(
        redis_server: LocalRedis, ns: str, store: Store, sim: RunningSimulator,
        workers: list[RunningWorker], browser: Browser, tmp_path: Path) -> None:
    sim.sim.cfg.calls = FAST
    bad = {f"+1212555{i:04d}": "outbound_call_failed" for i in range(50)}
    sim.sim.cfg.faults.by_number = dict(bad)
    set_key(sim, "telecho", limits=["100/second"])  # the provider's limit is not the subject
    s = make_settings(redis_server.url, ns, {"default": provider_cfg("telecho", sim.url,
                                                                     limits=["50/second"])},
                      tracking={"track_calls": False})
    start_worker(s, workers)
    await push(store, *({"id": f"r{i}", "to": to, "campaign": "spring", "max_attempts": 2}
                        for i, to in enumerate(bad)),
               *({"id": f"ok{i}", "to": f"+1415666{i:04d}", "campaign": "spring"}
                 for i in range(10)))
    first = await wait_results(store, 60, timeout=60)
    assert len(first) == 60, await store.counts()
    assert sorted(r["job_id"] for r in first if r["outcome"] == "exhausted") == sorted(
        f"r{i}" for i in range(50))
    sim.sim.cfg.faults.by_number = {}  # the outage is over
    cfg = ConsoleConfig(token_file=str(token_file(tmp_path)))
    async with running_console(s, cfg) as url, tab_on(browser, url, tmp_path) as tab:
        await log_in(tab)
        await tab.page.goto("/jobs?state=done&campaign=spring&outcome=exhausted")
        await expect(tab.page.locator("tr[data-job]")).to_have_count(50)
        await tab.shot("jobs-exhausted")
        await tab.page.click("text=Redrive all matching…")
        await expect(tab.page.locator(".dry")).to_have_attribute("data-would", "50")
        await tab.shot("jobs-redrive-dry-run")
        await tab.page.click("form[action='/actions/jobs/redrive'] button")
        await expect(tab.page.locator("[data-did=redriven]")).to_contain_text("50 jobs")
        results = await wait_results(store, 110, timeout=60)
    again = [r for r in results[60:]]
    assert sorted(r["job_id"] for r in again) == sorted(f"r{i}" for i in range(50))
    assert {r["outcome"] for r in again} == {"started"}
    async with aiohttp.ClientSession() as http, http.get(sim.url + "/_sim/calls") as resp:
        calls = (await resp.json())["calls"]
    for i in range(50):
        assert len([c for c in calls if of_job(c["correlation"], f"r{i}")]) == 1, f"r{i}"
    assert tab.errors == []
