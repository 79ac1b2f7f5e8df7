"""The limits page in a real browser (headless Chromium through Playwright): logged in, a bad
limit is refused beside the form and the page stays as sent; a good one shows as an override
by the token's label; no script or CSP error on the way."""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import Browser, expect

from dispatcher.config.console import ConsoleConfig
from dispatcher.dev.localredis import LocalRedis
from dispatcher.store import Store
from tests.integration.test_console_browser import browser, log_in, tab_on
from tests.integration.test_console_http import running_console, token_file
from tests.integration.test_console_limits import settings

__all__ = ["browser"]  # the module-scoped fixture, shared


async def test_limits_are_set_from_the_page_and_a_bad_one_is_refused_in_place(
        redis_server: LocalRedis, ns: str, store: Store, browser: Browser,
        tmp_path: Path) -> None:
    cfg = ConsoleConfig(token_file=str(token_file(tmp_path)))
    async with running_console(settings(redis_server, ns), cfg) as url, \
            tab_on(browser, url, tmp_path) as tab:
        await log_in(tab)
        page = tab.page
        await page.goto("/limits")
        await page.fill("input[name=limits]", "10/fortnight")
        await page.click("form.limits button[type=submit]")
        await expect(page.locator("[data-error=limits]")).to_contain_text("rate windows:")
        await page.wait_for_timeout(2500)  # longer than a refresh: the refusal stays
        await expect(page.locator("[data-error=limits]")).to_be_visible()
        assert (await store.limits_get("default")).windows == ()
        await tab.shot("limits-refused")
        # the refusal is a 400: the browser logs it twice (the response, and on its console)
        assert len(tab.errors) == 2 and all("400" in e for e in tab.errors), tab.errors
        tab.errors.clear()
        await page.fill("input[name=limits]", "10/second")
        await page.click("form.limits button[type=submit]")
        row = page.locator("tr[data-limit=limits]")
        await expect(row).to_have_attribute("data-source", "override")
        await expect(row).to_contain_text("10/second")
        await expect(row).to_contain_text("by console:")
        await expect(page.locator(".flash")).to_contain_text("new limits stored")
        await tab.shot("limits-override")
    assert (await store.limits_get("default")).windows == ((10, 1000),)
    assert tab.errors == []
