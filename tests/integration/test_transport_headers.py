"""A provider's answer headers read case-insensitively, as HTTP defines them (real HTTP)."""

from aiohttp import web

from dispatcher.engine.http import serve
from dispatcher.providers.base import Transport, parse_error, parse_rate_headers


async def test_a_lowercase_retry_after_is_still_read() -> None:
    """Proxies and HTTP/2 gateways send header names in lower case."""
    async def limited(_: web.Request) -> web.Response:
        return web.json_response({"error": {"code": "rate_limited", "message": "slow down"}},
                                 status=429, headers={"retry-after": "7",
                                                      "x-ratelimit-limit-minute": "60",
                                                      "x-ratelimit-remaining-minute": "0"})
    app = web.Application()
    app.router.add_post("/calls", limited)
    runner, port = await serve(app, "127.0.0.1", 0)
    transport = Transport(f"http://127.0.0.1:{port}", {}, 5.0, 4)
    try:
        resp = await transport.request("POST", "/calls", body={})
    finally:
        await transport.close()
        await runner.cleanup()
    err = parse_error(resp)
    assert (err.status, err.code, err.retry_after_s) == (429, "rate_limited", 7.0)
    assert [(o.seconds, o.limit, o.remaining) for o in parse_rate_headers(resp.headers)] == [
        (60.0, 60, 0)]
