"""A request that left late moves its own place in the provider's log (real Redis)."""

import asyncio
import time
from collections.abc import Awaitable, Callable

from dispatcher.pacing import Pacer
from dispatcher.store import Store
from dispatcher.store.types import GrantRules

RULES = GrantRules(provider="p", windows=((10, 1000),), margin_ms=20, slot_cap=0,
                   lease_ms=60_000)


async def _until(check: Callable[[], Awaitable[bool]], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check() and time.monotonic() < deadline:
        await asyncio.sleep(0.01)


async def test_a_late_request_moves_its_place_by_its_lag(store: Store) -> None:
    pacer = Pacer(store, {"p": RULES}, "c")
    assert (await store.admit(RULES, "c.a")).granted
    log = store.k.rate_log("p")
    before = await store.r.zscore(log, "c.a")
    assert before is not None
    pacer.clock("p", time.monotonic() - 0.2, "c.a").sent(time.monotonic())

    async def moved() -> bool:
        return await store.r.zscore(log, "c.a") != before
    await _until(moved)
    after = await store.r.zscore(log, "c.a")
    assert after is not None and 200 <= after - before <= 260
    assert pacer.meters["p"].margin_s(time.monotonic()) == 0.0  # no one else's margin grows


async def test_a_late_request_without_a_place_widens_the_margin(store: Store) -> None:
    """Its place is gone (given back by a regrant): the lag reaches the measured margin,
    which the heartbeat publishes to every worker."""
    pacer = Pacer(store, {"p": RULES}, "c")
    pacer.clock("p", time.monotonic() - 0.2, "c.gone").sent(time.monotonic())

    async def widened() -> bool:
        return pacer.meters["p"].margin_s(time.monotonic()) > 0.15
    await _until(widened)
    assert await widened()
    assert await store.r.zscore(store.k.rate_log("p"), "c.gone") is None  # nothing added


async def test_the_transport_tells_the_grant_when_its_request_left() -> None:
    """Over real HTTP: the lag from the grant to the moment the request has its connection
    reaches the request's clock, for a new connection and for a kept-alive one."""
    from aiohttp import web

    from dispatcher.http import serve
    from dispatcher.margins import SENDING, LagMeter, SendClock
    from dispatcher.providers.base import Transport

    async def ok(_: web.Request) -> web.Response:
        return web.json_response({})

    app = web.Application()
    app.router.add_get("/x", ok)
    runner, port = await serve(app, "127.0.0.1", 0)
    transport = Transport(f"http://127.0.0.1:{port}", {}, 5.0, 4)
    try:
        for late in (0.3, 0.15):
            meter = LagMeter()
            SENDING.set(SendClock(time.monotonic() - late, meter))
            assert (await transport.request("GET", "/x")).status == 200
            assert late <= meter.margin_s(time.monotonic()) < late + 0.1
    finally:
        await transport.close()
        await runner.cleanup()
