"""The console in a real browser (Debian's headless Chromium, driven by Playwright): pages load
without script errors, numbers move while jobs run, the resume button clears a halt, a paused
campaign shows as paused. Screenshots of every page land in each test's tmp dir."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from dispatcher.config.console import ConsoleConfig
from dispatcher.config.settings import Settings
from dispatcher.dev.localredis import LocalRedis
from dispatcher.simulator import RunningSimulator
from dispatcher.simulator.config import CallSpec
from dispatcher.store import Store
from tests.conftest import RunningWorker, make_settings, provider_cfg, start_worker, wait_results
from tests.integration.helpers import push, set_key
from tests.integration.test_console_http import ACT, running_console, token_file

CHROMIUM = os.environ.get("CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")
HAVE_CHROMIUM = os.path.exists(CHROMIUM)
LAUNCH = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
          "--disable-component-update", "--disable-sync", "--no-first-run"]
FAST = CallSpec(ring_s=(0.2, 0.5), talk_s=(0.5, 1.5), answer_mix={"human": 3, "machine": 1})
PAGES = {"overview": "/", "providers": "/providers", "campaigns": "/campaigns",
         "failures": "/failures"}


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    assert HAVE_CHROMIUM, f"no Chromium at {CHROMIUM}: install Debian's chromium (make test does)"
    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=CHROMIUM, args=LAUNCH)
        yield b
        await b.close()


@dataclass
class Tab:
    page: Page
    shots: Path
    errors: list[str] = field(default_factory=list)

    async def shot(self, name: str) -> None:
        await self.page.screenshot(path=str(self.shots / f"{name}.png"), full_page=True)


@asynccontextmanager
async def tab_on(browser: Browser, base: str, tmp: Path) -> AsyncIterator[Tab]:
    """A fresh browser context on the console; closed before the console stops (a page left
    open would go on polling a closed port)."""
    ctx = await browser.new_context(base_url=base, viewport={"width": 1360, "height": 900})
    page = await ctx.new_page()
    tab = Tab(page, tmp / "screenshots")
    tab.shots.mkdir(exist_ok=True)
    page.on("console", lambda m: tab.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: tab.errors.append(str(e)))
    page.on("response", lambda r: tab.errors.append(f"{r.status} {r.url}")
            if r.status >= 400 else None)
    page.on("dialog", lambda d: asyncio.ensure_future(d.accept()))
    try:
        yield tab
    finally:
        await ctx.close()


async def log_in(tab: Tab, token: str = ACT) -> None:
    await tab.page.goto("/login")
    await tab.page.fill("input[name=token]", token)
    await tab.page.click("form.login button[type=submit]")
    await expect(tab.page.locator("header .who")).to_contain_text("log out")


def settings(redis: LocalRedis, ns: str, sim: RunningSimulator, **prov: Any) -> Settings:
    return make_settings(redis.url, ns, {"default": provider_cfg("telecho", sim.url, **prov)},
                         retry={"halt_probe_s": 600, "halt_probe_max_s": 600},
                         campaigns={"spring": {"share": 2}, "autumn": {}})


def jobs(n: int, prefix: str, first: int = 0, **extra: Any) -> list[dict[str, Any]]:
    """Jobs ``<prefix>0``... calling +1415555<first + i> (distinct numbers per batch)."""
    return [{"id": f"{prefix}{i}", "to": f"+1415555{first + i:04d}", **extra} for i in range(n)]


async def test_pages_load_cleanly_and_numbers_change_while_jobs_run(
        redis_server: LocalRedis, ns: str, store: Store, sim: RunningSimulator,
        workers: list[RunningWorker], browser: Browser, tmp_path: Path) -> None:
    sim.sim.cfg.calls = FAST
    sim.sim.cfg.faults.by_number["+14155550003"] = "validation"
    s = settings(redis_server, ns, sim, limits=["3/second"], max_concurrent_calls=4)
    cfg = ConsoleConfig(token_file=str(token_file(tmp_path)))
    async with running_console(s, cfg) as url, tab_on(browser, url, tmp_path) as tab:
        await tab.page.goto("/")
        await tab.page.evaluate("window.__notReloaded = true")
        results = tab.page.locator("[data-metric=results_hour] .v")
        await expect(results).to_have_text("0")
        start_worker(s, workers)
        await push(store, *jobs(12, "s", campaign="spring"), *jobs(8, "a", 100, campaign="autumn"))
        await expect(results).not_to_have_text("0", timeout=20_000)
        await expect(tab.page.locator("[data-metric=dialing] .v, [data-metric=live] .v")
                     .first).to_be_visible()
        assert await tab.page.evaluate("window.__notReloaded") is True  # updated in place
        await tab.shot("overview-running")
        await tab.page.goto("/providers")
        await expect(tab.page.locator('[data-window="3/second"]')).to_contain_text(" of 3 used")
        await tab.shot("providers-running")
        await tab.page.goto("/")
        await wait_results(store, 20, timeout=40)
        await expect(results).to_have_text("20", timeout=10_000)
        for name, path in PAGES.items():
            await tab.page.goto(path)
            await expect(tab.page.locator("#conn")).to_have_text("live")
            await tab.shot(name)
        await expect(tab.page.locator("tr[data-outcome=rejected]")).to_have_count(1)
        await tab.page.goto("/jobs?id=s3")
        await expect(tab.page.locator(".why.primary")).to_contain_text("done")
        await tab.shot("job-done")
        await tab.page.wait_for_timeout(2500)  # at least one refresh on this page too
    assert tab.errors == []


async def test_the_resume_button_clears_a_halt(
        redis_server: LocalRedis, ns: str, store: Store, sim: RunningSimulator,
        workers: list[RunningWorker], browser: Browser, tmp_path: Path) -> None:
    sim.sim.cfg.calls = FAST
    set_key(sim, "telecho", status="revoked")
    s = settings(redis_server, ns, sim)
    start_worker(s, workers)
    await push(store, *jobs(5, "h"))
    for _ in range(100):
        if (await store.counts()).get("parked", 0) == 5:
            break
        await asyncio.sleep(0.1)
    cfg = ConsoleConfig(token_file=str(token_file(tmp_path)))
    async with running_console(s, cfg) as url, tab_on(browser, url, tmp_path) as tab:
        await tab.page.goto("/")
        await expect(tab.page.locator("[data-alert=halted]")).to_contain_text("halted")
        await tab.shot("overview-halted")
        await tab.page.goto("/jobs?id=h3")
        why = tab.page.locator(".why.primary")
        await expect(why).to_contain_text("provider default is halted since")
        await expect(why.locator("button")).to_be_disabled()  # read-only until logged in
        await log_in(tab)
        await tab.page.goto("/jobs?id=h3")
        await tab.shot("job-halted")
        set_key(sim, "telecho", status="valid")  # the account is fixed
        await why.get_by_role("button", name="Resume provider default").click()
        await expect(tab.page.locator(".flash")).to_contain_text("provider default resumed")
        await expect(why).to_contain_text("done", timeout=20_000)  # the page follows the job
        await tab.shot("job-after-resume")
        await tab.page.goto("/providers")
        await expect(tab.page.locator("[data-provider=default]")).to_have_attribute(
            "data-state", "running")
        await tab.shot("providers-resumed")
    assert not await store.halt_info("default")
    assert {r["outcome"] for r in await wait_results(store, 5)} == {"ended"}
    assert tab.errors == []


async def test_a_paused_campaign_shows_as_paused_and_resumes_from_the_job_page(
        redis_server: LocalRedis, ns: str, store: Store, sim: RunningSimulator,
        workers: list[RunningWorker], browser: Browser, tmp_path: Path) -> None:
    sim.sim.cfg.calls = FAST
    s = settings(redis_server, ns, sim, limits=["2/second"])
    cfg = ConsoleConfig(token_file=str(token_file(tmp_path)))
    async with running_console(s, cfg) as url, tab_on(browser, url, tmp_path) as tab:
        await log_in(tab)
        await push(store, *jobs(3, "x", campaign="autumn"))
        start_worker(s, workers)
        await wait_results(store, 3)
        await push(store, *jobs(10, "p", 100, campaign="autumn"))
        await tab.page.goto("/campaigns")
        row = tab.page.locator("tr[data-campaign=autumn]")
        await row.get_by_role("button", name="Pause").click()
        await expect(tab.page.locator(".flash")).to_contain_text("campaign autumn paused")
        await expect(row).to_have_attribute("data-state", "paused")
        await expect(row.locator(".badge")).to_have_text("paused")
        await tab.shot("campaigns-paused")
        waiting = await first_queued(store, "p")
        await tab.page.goto(f"/jobs?id={waiting}")
        why = tab.page.locator(".why.primary")
        await expect(why).to_contain_text("campaign autumn is paused")
        await tab.shot("job-paused-campaign")
        await why.get_by_role("button", name="Resume campaign autumn").click()
        await expect(tab.page.locator(".flash")).to_contain_text("campaign autumn resumed")
        await expect(why).to_contain_text("done", timeout=20_000)
    assert len(await wait_results(store, 13)) == 13
    assert tab.errors == []


async def first_queued(store: Store, prefix: str) -> str:
    for _ in range(50):
        for i in range(10):
            if (await store.job_info(f"{prefix}{i}")).get("state") == "queued":
                return f"{prefix}{i}"
        await asyncio.sleep(0.1)
    raise AssertionError("no job of the paused campaign is queued")
