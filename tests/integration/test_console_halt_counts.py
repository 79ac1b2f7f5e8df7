"""A provider halted while dials are in flight and jobs are queued: the overview's halt banner
and its waiting table must give the same number of parked jobs."""

from __future__ import annotations

import re
from typing import Any

from dispatcher.store import Store
from tests.integration.test_console_http import console, fetch, place  # noqa: F401


def grant_args(k: int) -> dict[str, Any]:
    return {"prov": "default", "wins": [[1000, 1000]], "margin": 0, "slot_cap": 10,
            "lease": 60_000, "caps": [], "caps_keep": 0, "camps": {"spring": {"share": 1}},
            "dnc": False, "k": k, "consumer": "w1", "tok": "t1"}


def banner_count(body: str) -> int:
    found = re.search(r'data-alert="halted".*?([\d,]+) jobs parked', body, re.S)
    assert found, "no halt banner"
    return int(found.group(1).replace(",", ""))


def table_count(body: str, reason: str) -> int:
    found = re.search(rf'<tr data-reason="{reason}">.*?<td class="n">([\d,]+)</td>', body,
                      re.S)
    assert found, f"no {reason} row"
    return int(found.group(1).replace(",", ""))


async def test_the_halt_banner_and_the_waiting_table_agree(console: str,  # noqa: F811
                                                           store: Store) -> None:
    for i in range(30):
        await place(store, f"q{i}", "queued", campaign="spring", to=f"+1415555{i:04d}")
    res = await store.s.call("grant", rid="g1", grants=[grant_args(6)])
    flying = res["grants"][0]["jobs"]
    assert len(flying) == 6  # dials in flight when the provider halts
    await store.halt("default", "API key revoked", "revoked_api_key", 30_000, 60_000)
    for j in flying[:4]:  # four meet the halt and park, as the dialer does; two still fly
        assert await store.defer(j["id"], to="parked", reason="halted", until_ms=0,
                                 grant_token=j["tok"])
    _, body, _ = await fetch(console + "/")
    parked = await store.r.zcard(store.k.parked("default"))
    assert parked == 28
    assert banner_count(body) == parked
    assert table_count(body, "halted") == parked
