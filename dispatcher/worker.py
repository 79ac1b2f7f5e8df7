"""The worker process: read, reclaim, promote, heartbeat, track, serve health and metrics.

Shutdown (SIGTERM): stop reading, let in-flight jobs finish within the grace period, hand the
ones that have not dialled back to the queue, and leave dialling ones to be reconciled.
"""

from __future__ import annotations

import asyncio
import os
import random
import socket
import time
from typing import Any

import structlog
from aiohttp import web
from prometheus_client import generate_latest
from redis.exceptions import RedisError

from dispatcher.config import Settings
from dispatcher.dialer import Dialer, Flight, Runtime
from dispatcher.metrics import INFLIGHT, REGISTRY
from dispatcher.pacing import Pacer
from dispatcher.providers import build_adapter
from dispatcher.providers.base import Adapter
from dispatcher.store import Store, connect
from dispatcher.tracker import Tracker, webhook_handler

log = structlog.get_logger("dispatcher")


def consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{random.randrange(16**4):04x}"


class Worker:
    def __init__(self, settings: Settings, *, consumer: str | None = None,
                 adapters: dict[str, Adapter] | None = None, http_port: int | None = None):
        self.settings = settings
        self.consumer = consumer or consumer_name()
        client = connect(settings.redis.url, settings.redis.socket_timeout_s, idempotent=True)
        self.store = Store(client, settings.redis.namespace)
        conc = settings.worker.concurrency
        self.adapters = adapters if adapters is not None else {
            name: build_adapter(name, p, conc) for name, p in settings.providers.items()}
        pacer = Pacer(self.store, settings.providers, settings.tracking, self.consumer)
        self.rt = Runtime(settings, self.store, self.adapters, pacer, self.consumer)
        self.dialer = Dialer(self.rt)
        self.tracker = Tracker(self.dialer)
        self.flights: dict[str, tuple[Flight, asyncio.Task[None]]] = {}
        self.visits: set[asyncio.Task[None]] = set()
        self.room = asyncio.Event()
        self.stopping = asyncio.Event()
        self.ready = False
        self.http_port = settings.worker.http_port if http_port is None else http_port
        self._runner: web.AppRunner | None = None

    # -- lifecycle ----------------------------------------------------------------------------
    async def run(self) -> None:
        await self._wait_for_redis()
        await self.store.ensure_group()
        await self._start_http()
        self.ready = True
        log.info("worker.started", consumer=self.consumer,
                 providers=sorted(self.adapters), concurrency=self.settings.worker.concurrency)
        loops = [asyncio.create_task(c) for c in (
            self._read_loop(), self._promote_loop(), self._reclaim_loop(),
            self._heartbeat_loop(), self._track_loop())]
        await self.stopping.wait()
        self.ready = False
        # loops exit on their own at the next check; cancel only what is stuck
        _, stuck = await asyncio.wait(loops, timeout=self.settings.redis.block_ms / 1000 + 1)
        for t in stuck:
            t.cancel()
        await asyncio.gather(*loops, return_exceptions=True)
        await self._drain()
        for a in self.adapters.values():
            await a.close()
        if self._runner:
            await self._runner.cleanup()
        await self.store.close()
        log.info("worker.stopped", consumer=self.consumer)

    def stop(self) -> None:
        self.stopping.set()

    async def _wait_for_redis(self) -> None:
        delay = 0.5
        while not self.stopping.is_set():
            try:
                await self.store.r.ping()
                return
            except (RedisError, OSError) as exc:
                log.error("redis.unreachable", url=_safe_url(self.settings.redis.url),
                          error=str(exc), retry_in_s=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10)

    async def _drain(self) -> None:
        grace = self.settings.worker.shutdown_grace_s
        tasks = [t for _, t in self.flights.values()] + list(self.visits)
        if tasks:
            await asyncio.wait(tasks, timeout=grace)
        for fl, task in list(self.flights.values()):
            if task.done():
                continue
            task.cancel()
            if fl.phase in ("new", "waiting") and fl.job_id:
                try:
                    await self.store.defer(fl.job_id, fl.entry_id, fl.provider, 0,
                                           fl.attempts, last_code="handed_back")
                    log.info("job.handed_back", job_id=fl.job_id)
                except RedisError:
                    pass  # left pending: another worker reclaims it after claim_idle_s
        for t in self.visits:
            t.cancel()

    # -- loops --------------------------------------------------------------------------------
    async def _guard(self, name: str, delay: float) -> None:
        log.error("loop.error", loop=name, exc_info=True)
        await self._pause(delay)

    async def _pause(self, seconds: float) -> None:
        """Sleep, but wake at once on shutdown (cancellation alone can be lost in I/O)."""
        try:
            await asyncio.wait_for(self.stopping.wait(), seconds)
        except TimeoutError:
            pass

    def _spawn(self, entry_id: str, raw: str | None) -> None:
        """Start a job; ``flights`` alone says how many are held (no counter to leak)."""
        if entry_id in self.flights:
            return
        fl = Flight(entry_id)
        task = asyncio.create_task(self._run_flight(fl, raw))
        self.flights[entry_id] = (fl, task)
        task.add_done_callback(lambda _t: self._landed(entry_id))
        INFLIGHT.set(len(self.flights))

    def _landed(self, entry_id: str) -> None:
        self.flights.pop(entry_id, None)
        INFLIGHT.set(len(self.flights))
        self.room.set()

    def _free(self) -> int:
        return self.settings.worker.concurrency - len(self.flights)

    async def _run_flight(self, fl: Flight, raw: str | None) -> None:
        try:
            await self.dialer.handle(fl, raw)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.error("job.crashed", job_id=fl.job_id, entry_id=fl.entry_id, exc_info=True)
            try:
                await self.dialer.crashed(fl, raw)
            except Exception:  # Redis gone too: the entry stays pending and is reclaimed
                log.error("job.crash_not_recorded", entry_id=fl.entry_id, exc_info=True)

    async def _read_loop(self) -> None:
        block = self.settings.redis.block_ms
        while not self.stopping.is_set():
            try:
                free = self._free()
                if free <= 0:
                    self.room.clear()
                    try:
                        await asyncio.wait_for(self.room.wait(), 1.0)
                    except TimeoutError:
                        pass
                    continue
                for eid, raw in await self.store.read(self.consumer, min(free, 100), block):
                    self._spawn(eid, raw)
            except asyncio.CancelledError:
                raise
            except Exception:  # a loop must never die: Redis may raise odd types
                await self._guard("read", 1.0)

    async def _reclaim_loop(self) -> None:
        idle_ms = round(self.settings.worker.claim_idle_s * 1000)
        while not self.stopping.is_set():
            await self._pause(self.settings.worker.claim_idle_s / 3)
            try:
                free = self._free()
                if free <= 0:
                    continue
                for eid, raw in await self.store.reclaim(self.consumer, idle_ms, free):
                    if eid not in self.flights:
                        log.info("job.reclaimed", entry_id=eid)
                        self._spawn(eid, raw)
            except asyncio.CancelledError:
                raise
            except Exception:  # a loop must never die: Redis may raise odd types
                await self._guard("reclaim", 1.0)

    async def _promote_loop(self) -> None:
        every = self.settings.worker.promote_interval_s
        probe_at: dict[str, float] = {}
        while not self.stopping.is_set():
            await self._pause(every)
            try:
                await self.store.promote()
                await self._probe_halted(probe_at)
            except asyncio.CancelledError:
                raise
            except Exception:  # a loop must never die: Redis may raise odd types
                await self._guard("promote", 1.0)

    async def _probe_halted(self, last: dict[str, float]) -> None:
        """When a halted provider's probe is due, send one parked job through as the probe."""
        now = time.time()
        for name in self.adapters:
            if now - last.get(name, 0) < 1.0:
                continue
            last[name] = now
            info = await self.store.halt_info(name)
            if not info:
                continue
            due = float(info.get("probe_at", 0)) / 1000
            busy = float(info.get("canary_until", 0)) / 1000
            if now >= due and now >= busy:
                await self.store.release_one_parked(name)

    async def _heartbeat_loop(self) -> None:
        while not self.stopping.is_set():
            await self._pause(self.settings.worker.heartbeat_s)
            try:
                held = [eid for eid, (fl, _) in self.flights.items() if fl.phase != "done"]
                lost = await self.store.heartbeat(self.consumer, held)
                for eid in lost:
                    item = self.flights.get(eid)
                    if item and item[0].phase in ("new", "waiting"):
                        log.warning("job.lost_to_other_worker", entry_id=eid)
                        item[1].cancel()
            except asyncio.CancelledError:
                raise
            except Exception:  # a loop must never die: Redis may raise odd types
                await self._guard("heartbeat", 1.0)

    async def _track_loop(self) -> None:
        limit = max(1, self.settings.worker.concurrency)
        while not self.stopping.is_set():
            await self._pause(0.25)
            try:
                room = limit - len(self.visits)
                if room <= 0:
                    continue
                for job_id in await self.tracker.due(room):
                    task = asyncio.create_task(self._visit(job_id))
                    self.visits.add(task)
                    task.add_done_callback(self.visits.discard)
            except asyncio.CancelledError:
                raise
            except Exception:  # a loop must never die: Redis may raise odd types
                await self._guard("track", 1.0)

    async def _visit(self, job_id: str) -> None:
        try:
            await self.tracker.visit(job_id)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.error("call.visit_failed", job_id=job_id, exc_info=True)

    # -- HTTP: health, metrics, webhooks ------------------------------------------------------
    async def _start_http(self) -> None:
        if self.http_port < 0:
            return
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._metrics)
        app.router.add_post("/webhooks/{provider}", webhook_handler(self.dialer))
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.settings.worker.http_host, self.http_port,
                           reuse_port=True)
        await site.start()
        server: Any = site._server
        if server is not None and server.sockets:
            self.http_port = server.sockets[0].getsockname()[1]

    async def _healthz(self, _: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def _readyz(self, _: web.Request) -> web.Response:
        try:
            await self.store.r.ping()
        except (RedisError, OSError) as exc:
            return web.json_response({"ready": False, "redis": str(exc)}, status=503)
        status = 200 if self.ready else 503
        return web.json_response({"ready": self.ready, "inflight": len(self.flights)},
                                 status=status)

    async def _metrics(self, _: web.Request) -> web.Response:
        return web.Response(body=generate_latest(REGISTRY),
                            content_type="text/plain", charset="utf-8")


def _safe_url(url: str) -> str:
    """redis://user:pass@host → redis://***@host"""
    if "@" in url:
        scheme, _, rest = url.partition("://")
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url
