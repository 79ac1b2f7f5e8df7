"""The console's history over HTTP: the overview's charts and a campaign's History page show
what the scripts counted, for 1 h, 24 h and 7 d."""

from __future__ import annotations

import re

from dispatcher.store import Store
from dispatcher.store.history import EVERYWHERE, HOUR_MS
from tests.integration.test_console_http import console, fetch, place  # noqa: F401


def _total(body: str, chart: str) -> str:
    found = re.search(rf'data-chart="{chart}".*?data-total>([\d,]+)<', body, re.S)
    return found.group(1) if found else "none"


async def test_the_overview_and_a_campaign_show_their_history(console: str,  # noqa: F811
                                                              store: Store) -> None:
    await place(store, "j1", "delayed", "window", campaign="spring", due_ms=2**41)
    now = await store.server_ms()
    await store.history_add([(EVERYWHERE, "o:ended", 1200), (EVERYWHERE, "calls", 7),
                             (EVERYWHERE, "429", 3), ("spring", "calls", 5)], now)
    await store.history_add([(EVERYWHERE, "o:ended", 30)], now - 3 * HOUR_MS)
    _, hour, _ = await fetch(console + "/")
    assert _total(hour, "results") == "1,200" and _total(hour, "429") == "3"
    charts = hour.split('<section class="history"')[1]
    assert _total(charts, "calls") == "7" and '<tr data-reason="window">' in charts  # INGEST
    _, day, _ = await fetch(console + "/?span=24h")
    assert _total(day, "results") == "1,230" and 'data-span="24h"' in day
    status, camp, _ = await fetch(console + "/history?campaign=spring&span=7d")
    assert status == 200 and _total(camp, "calls") == "5" and 'data-chart="429"' not in camp
    assert '<tr data-reason="window">' in camp
    status, _, _ = await fetch(console + "/history?campaign=nobody")
    assert status == 404
    _, campaigns, _ = await fetch(console + "/campaigns")
    assert 'href="/history?campaign=spring"' in campaigns
