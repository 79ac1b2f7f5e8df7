"""The worker's HTTP side: health, readiness, metrics and provider webhooks."""

from __future__ import annotations

import asyncio
import errno
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from redis.exceptions import RedisError

from dispatcher.config.settings import ConfigError, Settings, read_secret
from dispatcher.core.timing import Timing
from dispatcher.engine.collector import DeploymentCollector
from dispatcher.engine.health import Health, describe
from dispatcher.logs import get_logger
from dispatcher.metrics import REGISTRY
from dispatcher.providers import dialect
from dispatcher.store import Store

Handler = Callable[[web.Request], Awaitable[web.Response]]


def webhook_secrets(settings: Settings) -> dict[str, str]:
    """Every configured webhook secret, read once at start-up (a missing one stops it)."""
    out: dict[str, str] = {}
    for name, cfg in settings.providers.items():
        env, path = cfg.secrets().get("webhook_secret", (None, None))
        if env or path:
            value = read_secret(env, path, f"providers.{name}.webhook_secret")
            if not value:
                raise ConfigError(f"providers.{name}.webhook_secret: empty")
            out[name] = value
    return out


def webhook_handler(settings: Settings, store: Store, secrets: dict[str, str],
                    timing: Timing) -> Handler:
    """``POST /webhooks/{provider}``: a genuine call-end event wakes the call's tracker."""

    async def handle(req: web.Request) -> web.Response:
        name = req.match_info["provider"]
        cfg = settings.providers.get(name)
        spec = dialect(cfg.kind).webhooks if cfg is not None else None
        if cfg is None or spec is None or name not in secrets:
            return web.json_response({"error": "no webhooks for this provider"}, status=404)
        body = await req.read()
        headers = {k.lower(): v for k, v in req.headers.items()}
        log = get_logger(provider=name)
        why = spec.verify(cfg, secrets[name], body, headers, time.time())
        if why:
            log.warning("webhook.rejected", reason=why)
            return web.json_response({"error": why}, status=401)
        try:
            end = spec.parse(body)
        except ValueError as exc:
            log.warning("webhook.rejected", reason=str(exc))
            return web.json_response({"error": str(exc)}, status=400)
        if end is None:
            return web.json_response({"ok": True, "ignored": True})
        res = await store.webhook(end.event_id, end.call_id, end.fields, timing.call_ttl_s())
        log.info("webhook.received", event_id=end.event_id, call_id=end.call_id,
                 duplicate=res == -1)
        return web.json_response({"ok": True})

    return handle


async def healthz(_: web.Request) -> web.Response:
    return web.json_response({"ok": True})


async def metrics(_: web.Request) -> web.Response:
    """This process's own metrics only (what it did); see ``metrics_handler``."""
    return web.Response(body=generate_latest(REGISTRY), content_type="text/plain",
                        charset="utf-8")


def metrics_handler(settings: Settings, store: Store, min_interval_s: float = 1.0) -> Handler:
    """``GET /metrics``: this process's counters plus the deployment read from Redis now, so
    every pod answers the same queues, waits, windows and halts (read at most once per
    ``min_interval_s``, however many scrapers ask)."""
    deployment = DeploymentCollector(settings, store, min_interval_s)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(deployment)

    async def handle(_: web.Request) -> web.Response:
        await deployment.refresh()
        body = generate_latest(REGISTRY) + generate_latest(registry)
        return web.Response(body=body, content_type="text/plain", charset="utf-8")

    return handle


class PortInUse(ConfigError):
    """Another process listens on the port: one line naming it, exit code 2."""


async def serve(app: web.Application, host: str, port: int, *, share: bool = False,
                key: str = "port", hint: str = "") -> tuple[web.AppRunner, int]:
    """Listen on ``host:port`` (0: any free port). ``share``: other processes may listen on
    the same port (SO_REUSEPORT); otherwise a taken port is ``PortInUse``, naming the
    setting ``key``."""
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_port=share or None)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        if exc.errno != errno.EADDRINUSE:
            raise
        raise PortInUse(f"{key}: {host}:{port} is already in use by another process"
                        + (f"; {hint}" if hint else "")) from None
    server: Any = site._server
    actual = server.sockets[0].getsockname()[1] if server is not None and server.sockets \
        else port
    return runner, int(actual)


READY_PING_S = 2.0


def readyz_handler(store: Store, health: Health,
                   state: Callable[[], tuple[bool, int]]) -> Handler:
    """Ready while the worker can make progress: Redis answers, the group exists, no loop is
    stuck or failing (out of memory, ...). ``state``: whether the worker is running, and its
    dials in flight."""
    async def readyz(_: web.Request) -> web.Response:
        running, inflight = state()
        problems = [] if running else ["starting or stopping"]
        try:
            await asyncio.wait_for(store.ping(), READY_PING_S)
        except TimeoutError:
            problems.append(f"redis: no answer within {READY_PING_S:g} s")
        except (RedisError, OSError) as exc:
            problems.append(f"redis: {describe(exc)}")
        problems += health.problems()
        body = {"ready": not problems, "problems": problems, "inflight": inflight}
        return web.json_response(body, status=503 if problems else 200)
    return readyz
