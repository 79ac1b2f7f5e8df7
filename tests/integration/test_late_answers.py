"""A request answered late moves its own place in the provider's log (real Redis)."""

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from dispatcher.core.margins import SENDING, LagMeter, SendClock
from dispatcher.engine.http import serve
from dispatcher.engine.pacing import Pacer
from dispatcher.providers.base import ProviderFailure, Transport
from dispatcher.store import Store
from dispatcher.store.types import GrantRules

RULES = GrantRules(provider="p", windows=((10, 1000),), margin_ms=20, slot_cap=0,
                   lease_ms=60_000)


async def _until(check: Callable[[], Awaitable[bool]], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check() and time.monotonic() < deadline:
        await asyncio.sleep(0.01)


async def provider_at(handler: Any, timeout_s: float, limit: int
                      ) -> tuple[web.AppRunner, Transport]:
    """A provider stub over real HTTP answering GET /x, and a transport to it."""
    app = web.Application()
    app.router.add_get("/x", handler)
    runner, port = await serve(app, "127.0.0.1", 0)
    return runner, Transport(f"http://127.0.0.1:{port}", {}, timeout_s, limit)


async def test_a_late_answer_moves_its_place_by_its_lag(store: Store) -> None:
    pacer = Pacer(store, {"p": RULES}, "c")
    assert (await store.admit(RULES, "c.a")).granted
    log = store.k.rate_log("p")
    before = await store.r.zscore(log, "c.a")
    assert before is not None
    pacer.clock("p", time.monotonic() - 0.2, "c.a").answered(time.monotonic())

    async def moved() -> bool:
        return await store.r.zscore(log, "c.a") != before
    await _until(moved)
    after = await store.r.zscore(log, "c.a")
    assert after is not None and 200 <= after - before <= 260
    assert pacer.meters["p"].margin_s(time.monotonic()) == 0.0  # no one else's margin grows


async def test_a_late_answer_without_a_place_widens_the_margin(store: Store) -> None:
    """Its place is gone (given back by a regrant): the lag reaches the measured margin,
    which the heartbeat publishes to every worker."""
    pacer = Pacer(store, {"p": RULES}, "c")
    pacer.clock("p", time.monotonic() - 0.2, "c.gone").answered(time.monotonic())

    async def widened() -> bool:
        return pacer.meters["p"].margin_s(time.monotonic()) > 0.15
    await _until(widened)
    assert await widened()
    assert await store.r.zscore(store.k.rate_log("p"), "c.gone") is None  # nothing added


async def test_the_late_answers_of_one_moment_each_move_their_own_place(store: Store) -> None:
    """Sent to Redis together; a place that is gone widens the margin by its own lag only."""
    pacer = Pacer(store, {"p": RULES}, "c")
    log = store.k.rate_log("p")
    for tok in ("c.a", "c.b"):
        assert (await store.admit(RULES, tok)).granted
    before = {"c.a": await store.r.zscore(log, "c.a") or 0.0,
              "c.b": await store.r.zscore(log, "c.b") or 0.0}
    now = time.monotonic()
    for tok, lag in (("c.a", 0.2), ("c.b", 0.3), ("c.gone", 0.25)):
        pacer.clock("p", now - lag, tok).answered(now)

    async def moved() -> bool:
        return [await store.r.zscore(log, t) for t in before] != list(before.values())
    await _until(moved)
    after = {"c.a": (await store.r.zscore(log, "c.a") or 0.0) - before["c.a"],
             "c.b": (await store.r.zscore(log, "c.b") or 0.0) - before["c.b"]}
    assert 200 <= after["c.a"] <= 260 and 300 <= after["c.b"] <= 360, after
    assert 0.25 <= pacer.meters["p"].margin_s(time.monotonic()) < 0.3


async def test_the_transport_tells_the_grant_when_its_request_was_answered() -> None:
    """Over real HTTP: the lag from the grant to the answer reaches the request's clock, for
    a new connection and for a kept-alive one."""

    async def ok(_: web.Request) -> web.Response:
        return web.json_response({})

    runner, transport = await provider_at(ok, 5.0, 4)
    try:
        for late in (0.3, 0.15):
            meter = LagMeter()
            SENDING.set(SendClock(time.monotonic() - late, meter))
            assert (await transport.request("GET", "/x")).status == 200
            assert late <= meter.margin_s(time.monotonic()) < late + 0.1
    finally:
        await transport.close()
        await runner.cleanup()


async def burst_counted_late(store: Store, hold_s: float) -> int:
    """30 requests through a 10 per 300 ms window (margin 20 ms) to a provider that holds the
    first burst ``hold_s`` before counting and answering it; the most it counted in any
    300 ms."""

    rules = GrantRules(provider="p", windows=((10, 300),), margin_ms=20, slot_cap=0,
                       lease_ms=60_000)
    counted: list[float] = []
    began = time.monotonic()

    async def slow_at_first(_: web.Request) -> web.Response:
        if time.monotonic() - began < 0.15:  # the first burst waits in the provider's queue
            await asyncio.sleep(hold_s)
        counted.append(time.monotonic())
        return web.json_response({})

    runner, transport = await provider_at(slow_at_first, 5.0, 40)
    pacer = Pacer(store, {"p": rules}, "c")

    async def send() -> None:
        assert (await pacer.request("p", deadline=time.time() + 30)).granted
        assert (await transport.request("GET", "/x")).status == 200

    try:
        await asyncio.gather(*(send() for _ in range(30)))
    finally:
        await transport.close()
        await runner.cleanup()
        await pacer.drain()
    counted.sort()
    assert len(counted) == 30
    return max(sum(1 for t in counted if s <= t < s + 0.3) for s in counted)


async def test_a_provider_that_counts_a_burst_late_is_never_over_its_window(
        store: Store) -> None:
    """The provider counts a request when it gets to it, not when it was sent: a burst that
    queues there is counted up to tens of milliseconds late, and requests sent into the freed
    slots one window later are counted at once. Every request's place in the log is moved to
    when its answer came back (the provider counted it before that), so the refill waits for
    the burst's real count to leave the provider's window."""
    assert await burst_counted_late(store, 0.06) <= 10


async def test_a_burst_counted_after_its_whole_window_is_still_never_over(
        store: Store) -> None:
    """Held 350 ms, longer than the window and margin (320 ms): the answers come too late to
    move the places in time, so the places of unanswered requests are kept moving while they
    wait (every half window)."""
    assert await burst_counted_late(store, 0.35) <= 10


async def test_a_request_that_times_out_moves_its_place_to_the_timeout(store: Store) -> None:
    """The provider may have counted it any time until then."""

    async def stuck(_: web.Request) -> web.Response:
        await asyncio.sleep(2)
        return web.json_response({})

    runner, transport = await provider_at(stuck, 0.3, 4)
    pacer = Pacer(store, {"p": RULES}, "c")
    log = store.k.rate_log("p")
    try:
        assert (await pacer.request("p", deadline=time.time() + 30)).granted
        [(tok, before)] = await store.r.zrange(log, 0, -1, withscores=True)
        try:
            await transport.request("GET", "/x")
        except ProviderFailure as failure:
            assert failure.error.code == "timeout"
        await pacer.drain()
        after = await store.r.zscore(log, tok)
        assert after is not None and 300 <= after - before <= 400
    finally:
        await transport.close()
        await runner.cleanup()


def test_a_dial_is_granted_again_only_when_its_answer_could_miss_its_window(
        store: Store) -> None:
    """A quarter of the shortest window (the answer then has three quarters of it to move
    the dial's place), at most 5 s: not the margin, which only covers quick answers."""
    rules = {name: GrantRules(provider=name, windows=wins, margin_ms=10, slot_cap=0,
                              lease_ms=60_000)
             for name, wins in (("second", ((100, 1000),)), ("minute", ((60, 60_000), (5, 1000))),
                                ("hour", ((600, 3_600_000),)), ("none", ()))}
    pacer = Pacer(store, rules, "c")
    assert [pacer.late_s(n) for n in rules] == [0.25, 0.25, 5.0, 5.0]
