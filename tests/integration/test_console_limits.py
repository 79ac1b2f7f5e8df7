"""The console's limits, caller-ID and budget pages over HTTP against real Redis: what is in
force and where it comes from, actions only with an actions token (and this site's CSRF
value), a bad limit refused in words with nothing stored, every value escaped."""

from __future__ import annotations

import html
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from dispatcher.config.console import ConsoleConfig
from dispatcher.config.settings import Settings
from dispatcher.core.budgets import MICRO, budget_day
from dispatcher.dev.localredis import LocalRedis
from dispatcher.ops import audit
from dispatcher.store import Store
from tests.conftest import make_settings, provider_cfg
from tests.integration.test_console_http import (
    ACT,
    LOOK,
    fetch,
    log_in,
    running_console,
    token_file,
)

POOL = [{"id": "tel_pn_nyc", "number": "+12125550100"},
        {"id": "tel_pn_sf", "number": "+14155550101"}]


def settings(redis: LocalRedis, ns: str, **sections: dict[str, object]) -> Settings:
    prov = provider_cfg("telecho", "http://127.0.0.1:9", limits=["50/second"],
                        max_concurrent_calls=3, price_per_minute=1.0, max_call_s=120,
                        caller_ids={"numbers": POOL, "flag_answer_rate": 0.5,
                                    "flag_min_calls": 2})
    return make_settings(redis.url, ns, {"default": prov},
                         campaigns={"spring": {"budget": "5/day"}}, **sections)


@pytest.fixture
async def console(redis_server: LocalRedis, ns: str, tmp_path: Path) -> AsyncIterator[str]:
    cfg = ConsoleConfig(token_file=str(token_file(tmp_path)))
    async with running_console(settings(redis_server, ns), cfg) as url:
        yield url


def row(body: str, attr: str, value: str) -> str:
    found = re.search(rf'<tr {attr}="{re.escape(value)}".*?</tr>', body, re.S)
    assert found, f"no row {attr}={value}"
    return found.group(0)


async def test_limits_show_the_file_then_an_override_with_who_and_since(
        console: str, store: Store) -> None:
    _, body, _ = await fetch(console + "/limits")
    assert 'data-source="file"' in row(body, "data-limit", "limits")
    assert "50/second" in body and 'method="post"' not in body  # read-only: no forms
    me = await log_in(console, ACT)
    status, _, headers = await fetch(
        console + "/actions/limits/default/set", "POST", headers=me.headers,
        data={"csrf": me.csrf, "next": "/limits", "limits": "10/second, 500/hour",
              "max_concurrent": "2"})
    assert status == 303 and "msg=provider_limits_set" in headers["Location"]
    ov = await store.limits_get("default")
    assert ov.windows == ((10, 1000), (500, 3_600_000)) and ov.slots == 2
    _, body, _ = await fetch(console + "/limits")
    limits = row(body, "data-limit", "limits")
    assert 'data-source="override"' in limits and "10/second, 500/hour" in limits
    assert "console:" in limits and "the file says 50/second" in limits
    assert 'data-source="override"' in row(body, "data-limit", "max_concurrent")
    _, flash, _ = await fetch(console + headers["Location"])
    assert "provider default: new limits stored" in flash
    status, _, _ = await fetch(console + "/actions/limits/default/reset", "POST",
                               headers={"Authorization": f"Bearer {ACT}"})
    assert status == 303 and (await store.limits_get("default")).windows == ()
    trail = [(e.action, e.target, e.detail) for e in reversed(await audit.latest(store, 10))]
    assert trail == [("limits.set", "default", "10/second 500/hour max_concurrent=2"),
                     ("limits.reset", "default", "")]


async def test_a_limits_action_without_an_actions_token_is_refused(
        console: str, store: Store) -> None:
    look = await log_in(console, LOOK)  # numbers only, no actions
    form = {"csrf": look.csrf, "limits": "1/second"}
    for headers in ({}, look.headers, {"Authorization": f"Bearer {LOOK}"}):
        status, _, _ = await fetch(console + "/actions/limits/default/set", "POST",
                                   headers=headers, data=form)
        assert status == 403
    assert (await store.limits_get("default")).windows == ()
    status, _, _ = await fetch(console + "/actions/limits/nope/set", "POST",
                               headers={"Authorization": f"Bearer {ACT}"})
    assert status == 404


@pytest.mark.parametrize(("limits", "slots", "words"), [
    ("10/fortnight", "", "rate windows: "),
    ("<script>x</script>", "", "rate windows: "),
    ("10/second, 20/second", "", "two limits for the same window length"),
    ("", "0", "max concurrent calls: expected a whole number >= 1, got 0"),
    ("", "two", "max concurrent calls: expected a whole number >= 1, got 'two'"),
    ("", "", "nothing to set"),
])
async def test_a_bad_limit_is_refused_in_words_and_nothing_is_stored(
        console: str, store: Store, limits: str, slots: str, words: str) -> None:
    status, body, _ = await fetch(
        console + "/actions/limits/default/set", "POST",
        headers={"Authorization": f"Bearer {ACT}"},
        data={"limits": limits, "max_concurrent": slots})
    assert status == 400
    error = re.search(r'<div class="alert bad" data-error="limits">(.*?)</div>', body, re.S)
    assert error and words in html.unescape(error.group(1)), body
    assert "<script>" not in body  # what was typed comes back escaped
    assert await store.limits_get("default") == await store.limits_get("never-set")


async def test_caller_ids_show_health_and_rest_and_restore(console: str, store: Store) -> None:
    for i, answered in enumerate((False, False, True)):
        await store.caller_id_ended("default", "tel_pn_nyc", f"c{i}", answered=answered,
                                    keep=2, rate=0.5, rest=False)
    _, body, _ = await fetch(console + "/callerids")
    nyc = row(body, "data-caller-id", "tel_pn_nyc")
    assert "+12125550100" in nyc and "<td class=\"n\">3</td>" in nyc
    assert "50% <small>of the last 2</small>" in nyc and 'data-state="running"' in nyc
    assert "selection local, flagged below 50% answered over the last 2 calls" in body
    url = console + "/actions/callerid/default/tel_pn_sf/rest"
    assert (await fetch(url, "POST"))[0] == 403
    assert not (await store.caller_id_health("default", ["tel_pn_sf"]))[0].rested
    me = await log_in(console, ACT)
    status, _, headers = await fetch(url, "POST", headers=me.headers,
                                     data={"csrf": me.csrf, "next": "/callerids"})
    assert status == 303 and "msg=provider_caller_id_rested" in headers["Location"]
    assert (await store.caller_id_health("default", ["tel_pn_sf"]))[0].rested
    _, body, _ = await fetch(console + "/callerids", headers=me.headers)
    assert 'data-state="rested"' in row(body, "data-caller-id", "tel_pn_sf")
    assert "/actions/callerid/default/tel_pn_sf/restore" in body
    status, _, _ = await fetch(console + "/actions/callerid/default/tel_pn_sf/restore", "POST",
                               headers={"Authorization": f"Bearer {ACT}"})
    assert status == 303
    assert not (await store.caller_id_health("default", ["tel_pn_sf"]))[0].rested
    trail = [(e.action, e.target) for e in reversed(await audit.latest(store, 10))]
    assert trail == [("callerid.rest", "default tel_pn_sf"),
                     ("callerid.restore", "default tel_pn_sf")]  # the refused one: nothing
    status, _, _ = await fetch(console + "/actions/callerid/default/tel_pn_other/rest",
                               "POST", headers={"Authorization": f"Bearer {ACT}"})
    assert status == 404


async def test_budgets_show_todays_spend_and_what_is_left(
        console: str, store: Store) -> None:
    day, _ = budget_day(round(time.time() * 1000), "UTC")
    await store.bill("spring", day, "j1", 0, "call-1", 1_500_000)  # 1.5 billed
    await store.r.zadd(store.k.budget_holds("spring"),
                       {f"{2 * MICRO}|j2": round(time.time() * 1000) + 600_000})  # 2 live
    _, body, _ = await fetch(console + "/budgets")
    spring = row(body, "data-campaign", "spring")
    assert "1.5 billed + 2 live (worst case) of 5" in spring
    assert 'data-left="1.5"' in spring and day in spring


async def test_without_call_tracking_a_slot_cap_is_shown_unapplied_and_not_stored(
        redis_server: LocalRedis, ns: str, store: Store, tmp_path: Path) -> None:
    """A slot is freed when a worker sees its call end: with tracking.track_calls = false no
    worker does, so neither the file's max_concurrent_calls nor one set at runtime holds."""
    cfg = ConsoleConfig(token_file=str(token_file(tmp_path)))
    s = settings(redis_server, ns, tracking={"track_calls": False})
    async with running_console(s, cfg) as url:
        _, body, _ = await fetch(url + "/limits")
        assert "data-not-applied" in row(body, "data-limit", "max_concurrent")
        assert "data-not-applied" not in row(body, "data-limit", "limits")
        status, body, _ = await fetch(url + "/actions/limits/default/set", "POST",
                                      headers={"Authorization": f"Bearer {ACT}"},
                                      data={"limits": "10/second", "max_concurrent": "2"})
    assert status == 400 and "calls are not followed" in body
    assert await store.limits_get("default") == await store.limits_get("never-set")
