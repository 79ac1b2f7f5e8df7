"""Limits changed at runtime (LIMITS): the grant script applies them at once, counts the
grants already given against a lower limit, and a reset finds the file's history intact."""

from __future__ import annotations

from typing import Any

from dispatcher.store import Store
from dispatcher.store.types import GrantReply
from tests.integration.test_scripts import NOW, grant_args, ingested


async def grant(store: Store, at: int, k: int, rid: str, **over: Any) -> GrantReply:
    args = {**grant_args(k=k, tok=rid), "caps": [], "slot_cap": 0, "tracked": True, **over}
    res = await store.s.call("grant", at, rid=rid, grants=[args])
    return GrantReply.decode(res["grants"][0])


async def backlog(store: Store, n: int) -> None:
    await ingested(store, n)


async def test_a_window_set_at_runtime_replaces_the_files_in_the_next_grant(
        store: Store) -> None:
    await backlog(store, 40)
    await store.limits_set("p", "cli@h", windows=((10, 1000),), margin_ms=5)
    r = await grant(store, NOW, 40, "g1", wins=[[50, 1000]])
    assert len(r.jobs) == 10
    assert r.windows_set is not None and r.windows_set.shortest_ms == 1000
    assert r.windows_set.margin_ms == 5


async def test_a_lower_limit_counts_the_grants_already_in_the_log(store: Store) -> None:
    await backlog(store, 40)
    first = await grant(store, NOW, 8, "g1", wins=[[50, 1000]])
    assert len(first.jobs) == 8 and first.windows_set is None
    await store.limits_set("p", "cli@h", windows=((10, 1000),), margin_ms=0)
    second = await grant(store, NOW + 100, 40, "g2", wins=[[50, 1000]])
    assert len(second.jobs) == 2  # 8 already granted this second: 10 in all
    await store.limits_reset("p")
    third = await grant(store, NOW + 200, 40, "g3", wins=[[50, 1000]])
    assert len(third.jobs) == 30 and third.windows_set is None  # the file's 50 again


async def test_a_reset_finds_the_files_longest_window_still_counted(store: Store) -> None:
    """The file allows 20 a minute; an override of 5 a second runs for 25 s. The log keeps
    the minute's history meanwhile, so the reset allows nothing more this minute."""
    await backlog(store, 40)
    await store.limits_set("p", "cli@h", windows=((5, 1000),), margin_ms=0)
    file_wins = [[20, 60_000]]
    given = 0
    for i, at in enumerate((0, 2000, 4000, 25_000)):
        given += len((await grant(store, NOW + at, 5, f"g{i}", wins=file_wins)).jobs)
    assert given == 20
    await store.limits_reset("p")
    after = await grant(store, NOW + 26_000, 5, "g9", wins=file_wins)
    assert after.jobs == () and after.why == "rate"


async def test_a_slot_cap_set_at_runtime_holds_only_where_calls_are_followed(
        store: Store) -> None:
    await backlog(store, 10)
    await store.limits_set("p", "cli@h", slots=2)
    r = await grant(store, NOW, 10, "g1", slot_cap=5)
    assert len(r.jobs) == 2
    untracked = await grant(store, NOW + 10, 10, "g2", slot_cap=0, tracked=False)
    assert len(untracked.jobs) == 8  # no slots kept without tracking: the cap cannot hold


async def test_show_names_each_part_with_its_time_and_label(store: Store) -> None:
    await store.limits_set("p", "cli@a", windows=((10, 1000),), margin_ms=5)
    ov = await store.limits_set("p", "cli@b", slots=3)
    assert ov.windows == ((10, 1000),) and ov.windows_set and ov.windows_set.by == "cli@a"
    assert ov.slots == 3 and ov.slots_set and ov.slots_set.by == "cli@b"
    assert (await store.limits_get("p")) == ov
    cleared = await store.limits_reset("p")
    assert cleared.windows == () and cleared.slots is None
