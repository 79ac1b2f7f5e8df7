"""The Workers and Audit pages in a real browser: with every worker dead the alarm shows on
each page and the dead worker is marked; an action taken through the console by a labelled
token appears on the Audit page. Screenshots (desktop and a 390-px phone) in the tmp dir."""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import Browser, expect

from dispatcher.config.console import ConsoleConfig
from dispatcher.dev.localredis import LocalRedis
from dispatcher.store import Store
from tests.integration.test_console_browser import browser, log_in, tab_on
from tests.integration.test_console_http import place, quiet_settings, running_console
from tests.integration.test_console_workers import beat

__all__ = ["browser"]  # the module-scoped Chromium, shared with the other browser tests
LABELLED = "browser-token-0123456789abcdef"


async def test_workers_and_audit_pages_show_a_dead_fleet_and_who_acted(
        browser: Browser, redis_server: LocalRedis, ns: str, store: Store,
        tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text(f"{LABELLED} actions label=night-shift\n")
    now = await store.server_ms()
    await beat(store, "w1", now - 960_000, held=["j1"])
    await place(store, "c1", "queued", campaign="spring")
    cfg = ConsoleConfig(token_file=str(tokens))
    async with running_console(quiet_settings(redis_server, ns), cfg) as url, \
            tab_on(browser, url, tmp_path) as tab:
        page = tab.page
        await page.goto("/workers")
        await expect(page.locator('[data-alert="no-live-worker"]')).to_be_visible()
        row = page.locator('tr[data-worker="w1"]')
        await expect(row).to_have_attribute("data-state", "dead")
        await expect(row).to_contain_text("w1-host")
        await tab.shot("workers")
        await log_in(tab, LABELLED)
        await page.goto("/campaigns")
        await page.click('tr[data-campaign="spring"] button:has-text("Pause")')
        await expect(page.locator('tr[data-campaign="spring"]')).to_have_attribute(
            "data-state", "paused")
        await page.goto("/audit")
        entry = page.locator('tr[data-action="campaign.pause"]')
        await expect(entry).to_contain_text("night-shift")
        await expect(entry).to_contain_text("spring")
        await tab.shot("audit")
        await page.set_viewport_size({"width": 390, "height": 844})
        await tab.shot("audit-phone")
        await page.goto("/workers")
        await tab.shot("workers-phone")
    assert tab.errors == [], tab.errors
