"""What the console showed wrong: the doubled header, no banner for jobs parked for an
unconfigured provider, an ETA while nothing can progress, a timeline ending at "parked" for a
queued job, bare rate-window bars, campaign names that were not links, a done job without its
answer status and duration."""

from __future__ import annotations

import re

from dispatcher.config.console import ConsoleConfig
from dispatcher.dev.localredis import LocalRedis
from dispatcher.store import Store
from dispatcher.store.types import ResultItem
from tests.conftest import make_settings, provider_cfg
from tests.integration.test_console_http import fetch, place, quiet_settings, running_console


async def test_the_header_does_not_repeat_the_default_namespace(
        redis_server: LocalRedis, ns: str) -> None:
    s = quiet_settings(redis_server, ns)
    async with running_console(s, ConsoleConfig()) as url:
        _, body, _ = await fetch(url + "/")
    assert re.search(rf'class="brand">dispatcher <small[^>]*>{ns}</small>', body)
    default = make_settings(redis_server.url, "dispatcher", {})
    async with running_console(default, ConsoleConfig()) as url:
        _, body, _ = await fetch(url + "/workers")
    assert '<span class="brand">dispatcher</span>' in body
    assert not re.search(r"dispatcher\W+(<[^>]+>\W*)*dispatcher\W*</span>", body)


async def test_jobs_parked_for_an_unconfigured_provider_get_a_banner(
        redis_server: LocalRedis, ns: str, store: Store) -> None:
    for i in range(3):
        await place(store, f"u{i}", "parked", "unknown_provider", provider="nosuch")
    async with running_console(quiet_settings(redis_server, ns), ConsoleConfig()) as url:
        _, body, _ = await fetch(url + "/")
    banner = re.search(r'<div class="alert bad" data-alert="unconfigured">.*?</div>', body)
    assert banner and "3 jobs parked" in banner.group(0) and "nosuch" in banner.group(0)
    assert "not configured" in banner.group(0)


async def test_no_eta_while_a_campaign_is_paused_or_its_provider_halted(
        redis_server: LocalRedis, ns: str, store: Store) -> None:
    now = await store.server_ms()
    for i in range(4):
        await place(store, f"s{i}", "queued", campaign="spring")
        await place(store, f"a{i}", "queued", campaign="autumn")
    for name in ("spring", "autumn"):  # 30 call starts in this 10-second bucket
        await store.r.hset(store.k.pace(name), str(now // 10000), 30)
    s = quiet_settings(redis_server, ns)
    async with running_console(s, ConsoleConfig()) as url:
        _, before, _ = await fetch(url + "/campaigns")
        await store.campaign("pause", "spring", ["default"])
        await store.halt("default", "account suspended", "402", 60_000, 600_000)
        _, after, _ = await fetch(url + "/campaigns")

    def eta(body: str, name: str) -> str:
        row = re.search(rf'<tr id="c-{name}".*?<td data-eta>(.*?)</td>', body)
        assert row, body
        return row.group(1)
    assert re.search(r"\d+ (s|min)", eta(before, "spring")), eta(before, "spring")
    assert eta(after, "spring") == '<span class="muted">— (paused)</span>'
    assert eta(after, "autumn") == '<span class="muted">— (provider halted)</span>'


async def test_a_resumed_jobs_timeline_ends_back_in_line_not_parked(
        redis_server: LocalRedis, ns: str, store: Store) -> None:
    await store.halt("default", "account suspended", "402", 60_000, 600_000)
    await place(store, "p1", "queued")  # parked: its provider is halted
    await store.unpark("default")
    async with running_console(quiet_settings(redis_server, ns), ConsoleConfig()) as url:
        _, body, _ = await fetch(url + "/jobs?id=p1")
    assert 'data-state="queued"' in body
    events = re.findall(r'<tr data-event="([a-z_]+)">', body)
    assert events[-2:] == ["parked", "resumed"], events


async def test_rate_windows_on_the_overview_carry_their_numbers(
        redis_server: LocalRedis, ns: str, store: Store) -> None:
    s = make_settings(redis_server.url, ns, {"default": provider_cfg(
        "telecho", "http://127.0.0.1:9", limits=["5/minute"])})
    async with running_console(s, ConsoleConfig()) as url:
        _, body, _ = await fetch(url + "/")
    assert '<small data-window="5/minute">0 of 5 used</small>' in body


async def test_campaign_names_are_links(redis_server: LocalRedis, ns: str,
                                        store: Store) -> None:
    await place(store, "c1", "queued", campaign="spring")
    await store.campaign("pause", "spring", ["default"])
    async with running_console(quiet_settings(redis_server, ns), ConsoleConfig()) as url:
        _, campaigns, _ = await fetch(url + "/campaigns")
        _, job, _ = await fetch(url + "/jobs?id=c1")
        _, overview, _ = await fetch(url + "/")
    assert '<a href="/jobs?campaign=spring"><b>spring</b></a>' in campaigns
    link = '<a href="/campaigns#c-spring" data-campaign-link>spring</a>'
    assert link in job and link in overview


async def test_a_done_jobs_page_shows_its_answer_status_and_duration(
        redis_server: LocalRedis, ns: str, store: Store) -> None:
    await place(store, "d1", "queued")
    await store.finish([ResultItem("d1", None, {"job_id": "d1", "outcome": "ended",
                                                "answer_status": "human",
                                                "duration_seconds": 83.5},
                                   "ended", answer="human")], 600)
    async with running_console(quiet_settings(redis_server, ns), ConsoleConfig()) as url:
        _, body, _ = await fetch(url + "/jobs?id=d1")
    assert '<span data-fact="answer_status">human</span>' in body
    assert '<span data-fact="duration">1 min 24 s</span>' in body
