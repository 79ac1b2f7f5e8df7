"""What the browser asked for: the scheme and host it used, behind a trusted proxy too.

A TLS-terminating proxy talks plain HTTP to the console, so the console's own view of a
request says ``http`` and the proxy's upstream address. The proxy says what the browser used
in ``X-Forwarded-Proto`` / ``X-Forwarded-Host`` or ``Forwarded`` (RFC 7239); those headers
are believed only from ``console.trusted_proxies``, since anyone else could claim https or
any host with them. Each header's last value is the one the nearest proxy wrote.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware
from yarl import URL

from dispatcher.config.console import HOST

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
ALWAYS = ("/healthz", "/metrics")  # probes and scrapers ask by the pod's address


def _trusted(remote: str | None, proxies: list[Network]) -> bool:
    try:
        peer = ipaddress.ip_address(remote or "")
    except ValueError:
        return False  # a Unix socket or no peer at all
    return any(peer in net for net in proxies)


def _last(value: str | None) -> str:
    return (value or "").rsplit(",", 1)[-1].strip()


def claimed(req: web.Request) -> tuple[str, str]:
    """(scheme, host) the proxy says the browser used; "" for what it does not say or says
    in a form no browser sends."""
    if req.headers.get("Forwarded") and req.forwarded:
        last = req.forwarded[-1]
        proto, host = last.get("proto", ""), last.get("host", "")
    else:
        proto = _last(req.headers.get("X-Forwarded-Proto"))
        host = _last(req.headers.get("X-Forwarded-Host"))
    proto = proto.lower() if proto.lower() in ("http", "https") else ""
    return proto, host if HOST.fullmatch(host) else ""


def forwarded(proxies: list[Network]) -> Middleware:
    """Middleware: a trusted proxy's request seen with the browser's scheme and host."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if proxies and _trusted(request.remote, proxies):
            scheme, host = claimed(request)
            if scheme or host:
                request = request.clone(scheme=scheme or request.scheme,
                                        host=host or request.host)
        return await handler(request)

    return middleware


def same_origin(req: web.Request) -> bool:
    """False when the browser says the request came from another site."""
    if req.headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none"):
        return False
    origin = req.headers.get("Origin")
    if origin is None:
        return True
    try:
        theirs, ours = URL(origin), URL(f"{req.scheme}://{req.host}")
    except ValueError:
        return False
    # compared as URLs, so https://h and https://h:443 are one origin
    return theirs.is_absolute() and (theirs.scheme, theirs.host, theirs.port) == \
        (ours.scheme, ours.host, ours.port)


def _name_port(host: str) -> tuple[str, str]:
    name, sep, port = host.lower().rpartition(":")
    return (name, port) if sep and port.isdigit() else (host.lower(), "")  # "[::1]": no port


def host_allowed(host: str, allowed: list[str]) -> bool:
    """An entry with a port allows that port only; without one, any port."""
    if "*" in allowed:
        return True
    if not HOST.fullmatch(host):
        return False
    name, port = _name_port(host)
    for entry in allowed:
        want, want_port = _name_port(entry)
        if name == want and (not want_port or want_port == port):
            return True
    return False


def host_check(allowed: list[str]) -> Middleware:
    """Middleware: 400 for a Host (as the browser sent it) the console does not answer to."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path not in ALWAYS and not host_allowed(request.host, allowed):
            return web.Response(status=400, text=(
                f"refused: this console does not answer to the host {request.host[:100]!r}; "
                "if that is its name, add it to console.allowed_hosts"))
        return await handler(request)

    return middleware
