"""The console's history against real Redis: per-minute counts written by the scripts that
finish, defer, track and grant jobs (and by the worker for 429s), read back for 1 h, 24 h and
7 d, kept 7 days and no longer, at a stated cost per day."""

from __future__ import annotations

import json
from typing import Any

from dispatcher.store import Store
from dispatcher.store.history import (
    DAY_MS,
    EVERYWHERE,
    HOUR_MS,
    KEEP_MS,
    METRICS,
    MINUTE_MS,
    Span,
)
from dispatcher.store.keys import GROUP
from tests.integration.test_scripts import NOW, grant_args, ingested

# docs/redis.md states this bound: one scope (the namespace or a campaign) with every metric
# counted in every minute of a day, as measured by MEMORY USAGE.
DAY_BYTES_MAX = 300_000  # measured: 283,200 (Redis 7, 28 metrics, 700 keys)


async def _a_known_set(store: Store) -> None:
    """Six jobs of campaign c1: four granted; two calls started; results ended x2 and
    exhausted x1; one deferred (retry); two 429s."""
    await ingested(store, 6)
    grant = {**grant_args(k=4), "slot_cap": 4}
    res: dict[str, Any] = await store.s.call("grant", NOW, rid="g", grants=[grant])
    jobs = res["grants"][0]["jobs"]
    assert len(jobs) == 4
    await store.s.call("track", NOW, items=[
        {"id": j["id"], "dtok": j["tok"], "call_id": f"c-{i}", "first_ms": 0, "ttl": 600}
        for i, j in enumerate(jobs[:2])])
    items = [{"id": j["id"], "result": json.dumps({"job_id": j["id"]}), "outcome": o}
             for j, o in zip(jobs[:3], ("ended", "ended", "exhausted"), strict=True)]
    finish = {"group": GROUP, "ttl": 600, "maxlen": 1000, "items": items}
    await store.s.call("finish", NOW, **finish)
    await store.s.call("finish", NOW, **finish)  # a replay counts nothing
    defer = {"id": jobs[3]["id"], "dtok": jobs[3]["tok"], "to": "delayed", "reason": "retry",
             "until": NOW + 1000, "set": {}, "deadline": 0}
    await store.s.call("defer", NOW, **defer)
    await store.s.call("defer", NOW, **defer)  # nor does this one
    await store.count_rate_limited(now_ms=NOW)
    await store.count_rate_limited(now_ms=NOW)


EXPECTED = {"o:ended": 2, "o:exhausted": 1, "calls": 2, "w:retry": 1, "429": 2}


async def test_counts_after_a_known_set_of_results(store: Store) -> None:
    await _a_known_set(store)
    for span in Span:
        h = await store.history(span, NOW)
        assert {m: h.total(m) for m in h.series} == EXPECTED, span
        assert h.series["o:ended"][-1] == 2  # all in the bucket of now
    camp = await store.history(Span.HOUR, NOW, scope="c1")
    assert {m: camp.total(m) for m in camp.series} == {k: v for k, v in EXPECTED.items()
                                                       if k != "429"}  # 429s: namespace-wide


async def test_counts_land_in_the_minute_they_happen(store: Store) -> None:
    later = NOW + 5 * MINUTE_MS
    await store.count_rate_limited(now_ms=NOW)
    await store.count_rate_limited(now_ms=later)
    h = await store.history(Span.HOUR, later)
    assert h.series["429"][-1] == 1 and h.series["429"][-6] == 1 and h.total("429") == 2
    assert h.start_ms == (later // MINUTE_MS - 59) * MINUTE_MS


async def test_history_is_kept_seven_days_and_no_longer(store: Store) -> None:
    """Every key expires 7 days after the period it covers (an hour, a day), read with a fixed
    clock: nothing waits for a TTL."""
    await _a_known_set(store)
    keys = [k async for k in store.r.scan_iter(match=store.k.prefix + "hist*")]
    assert keys
    hour_end = (NOW // HOUR_MS + 1) * HOUR_MS
    day_end = (NOW // DAY_MS + 1) * DAY_MS
    for key in keys:
        ttl = await store.r.pttl(key)
        end = hour_end if ":histm:" in key else day_end
        assert end + KEEP_MS - NOW - 2000 <= ttl <= end + KEEP_MS - NOW, key
    # what is read never reaches past the 7 days kept: the week's first bucket starts after
    # the oldest hour still there
    for later in range(0, 7 * DAY_MS, HOUR_MS):  # the 7-d view never reads a gone hour
        assert (await store.history(Span.WEEK, NOW + later, metrics=())).start_ms >= \
            NOW + later - KEEP_MS
    week = await store.history(Span.WEEK, NOW + 6 * DAY_MS)
    assert week.total("o:ended") == 2  # still shown six days on
    gone = await store.history(Span.WEEK, NOW + 7 * DAY_MS + 6 * HOUR_MS)
    assert gone.total("o:ended") == 0  # out of the week's view once its keys may expire


async def test_a_full_day_of_history_costs_at_most_the_stated_bytes(store: Store) -> None:
    """Worst case for one scope: every metric counted in every minute of a day (counts in the
    thousands), measured with MEMORY USAGE on the day's keys."""
    day0 = NOW - NOW % DAY_MS
    await store.history_add([(EVERYWHERE, m, 1000) for m in METRICS], day0)  # the layout
    pipe = store.r.pipeline(transaction=False)  # then every other minute, written at once
    for metric in METRICS:
        for hour in range(24):
            pipe.hset(store.k.history_minutes(EVERYWHERE, metric, day0 // HOUR_MS + hour),
                      mapping={str(m): 1000 + m for m in range(60)})
        pipe.hset(store.k.history_hours(EVERYWHERE, metric, day0 // DAY_MS),
                  mapping={str(h): 60 * 1000 + 1770 for h in range(24)})
    await pipe.execute()
    day = await store.history(Span.DAY, day0 + DAY_MS - 1)
    assert day.total("calls") == 24 * (60 * 1000 + 1770)
    keys = [k async for k in store.r.scan_iter(match=store.k.prefix + "hist*", count=1000)]
    assert len(keys) == len(METRICS) * 25  # 24 hours and 1 day per metric
    used = sum([await store.r.memory_usage(k) or 0 for k in keys])
    print(f"history: {len(keys)} keys, {used} bytes for a full day of one scope")
    assert used <= DAY_BYTES_MAX
