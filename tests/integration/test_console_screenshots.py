"""Screenshots of every console page, at desktop width and at a 390-px phone width. One console
over a fixed set of jobs, no worker and no simulator, so it takes a few seconds; file names
carry no time. ``make screenshots`` writes them into docs/screenshots/ (committed; the README
links there); a plain test run writes them into its temporary folder, so the tree stays clean."""

from __future__ import annotations

import os
from pathlib import Path

from playwright.async_api import Browser, expect

from dispatcher.config.console import ConsoleConfig
from dispatcher.dev.localredis import LocalRedis
from dispatcher.ops import audit
from dispatcher.store import Store
from dispatcher.store.history import EVERYWHERE, MINUTE_MS
from tests.integration.test_console_browser import browser, log_in, tab_on
from tests.integration.test_console_http import ACT, place, quiet_settings, running_console
from tests.integration.test_console_http import token_file as tokens_in
from tests.integration.test_console_workers import beat

__all__ = ["browser"]  # the module-scoped Chromium, shared with the other browser tests
SHOTS_TO = os.environ.get("SCREENSHOTS_TO")  # set by ``make screenshots``
PAGES = {"overview": "/", "overview-7d": "/?span=7d", "providers": "/providers",
         "campaigns": "/campaigns", "history-campaign": "/history?campaign=spring&span=24h",
         "jobs": "/jobs", "job-waiting": "/jobs?id=sp-w0", "failures": "/failures",
         "workers": "/workers", "audit": "/audit", "limits": "/limits",
         "callerids": "/callerids", "budgets": "/budgets", "login": "/login"}
WIDTHS = {"desktop": 1360, "phone": 390}


async def _a_busy_hour(store: Store) -> None:
    """Jobs queued, waiting and parked; a live and a dead worker; an hour of history; an
    audited action."""
    now = await store.server_ms()
    for i in range(4):
        await place(store, f"sp-q{i}", "queued", campaign="spring")
        await place(store, f"sp-w{i}", "delayed", "window", campaign="spring",
                    due_ms=now + 3_600_000, detail="09:00 America/Chicago")
    await place(store, "au-0", "parked", "unknown_provider", campaign="autumn",
                provider="ghost")
    await beat(store, "w1", now, held=[])
    await beat(store, "w2", now - 960_000, held=[])
    for m in range(60):
        t = now - m * MINUTE_MS
        await store.history_add([
            (EVERYWHERE, "o:ended", 20 + m % 7), (EVERYWHERE, "o:rejected", m % 3),
            (EVERYWHERE, "calls", 24 + m % 5), (EVERYWHERE, "w:retry", m % 4),
            (EVERYWHERE, "429", 1 if m % 17 == 0 else 0), ("spring", "o:ended", 10 + m % 3),
            ("spring", "calls", 12), ("spring", "w:window", 2)], t)
    await audit.record(store, audit.Action.CAMPAIGN_PAUSE, "autumn", "cli@ops-1")


async def test_every_page_at_desktop_and_phone_width_is_saved_for_the_docs(
        browser: Browser, redis_server: LocalRedis, ns: str, store: Store,
        tmp_path: Path) -> None:
    await _a_busy_hour(store)
    shots = Path(SHOTS_TO) if SHOTS_TO else tmp_path / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    cfg = ConsoleConfig(token_file=str(tokens_in(tmp_path)))
    settings = quiet_settings(redis_server, ns)
    settings.worker.dead_after_s = 600  # w1 stays alive while every page is shot; w2 is dead
    async with running_console(settings, cfg) as url, \
            tab_on(browser, url, tmp_path) as tab:
        await log_in(tab, ACT)
        for size, width in WIDTHS.items():
            await tab.page.set_viewport_size({"width": width, "height": 844})
            for name, path in PAGES.items():
                await tab.page.goto(path)
                await expect(tab.page.locator("h1")).to_be_visible()
                wide = await tab.page.evaluate("document.documentElement.scrollWidth")
                assert wide <= width, f"{name} is {wide} px wide at {width} px"
                await tab.page.screenshot(path=str(shots / f"{name}-{size}.png"),
                                          full_page=True)
    assert sorted(p.name for p in shots.glob("*.png")) == sorted(
        f"{n}-{s}.png" for n in PAGES for s in WIDTHS)
    assert tab.errors == [], tab.errors
