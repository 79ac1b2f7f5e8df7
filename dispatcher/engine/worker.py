"""The worker process: intake, one grant loop per provider, dials, tracking, results due
without a dial, upkeep (promotion, deadlines), heartbeats, and the HTTP side.

Shutdown (SIGTERM): stop reading and granting, let dials in flight finish within the grace
period; a dial that never started is handed back to its ready list, one that was sending is
left to be reconciled (the call may exist).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from typing import Any

import structlog
from aiohttp import web
from redis.exceptions import RedisError, ResponseError

from dispatcher.config.settings import Settings
from dispatcher.core.model import JobState, WaitReason
from dispatcher.core.policies import PolicyBook
from dispatcher.core.timing import REPLICA_RETRY_S, restart_delay
from dispatcher.engine.context import Runtime, build_adapters, consumer_name
from dispatcher.engine.dialer import Dialer, InFlight
from dispatcher.engine.finisher import Finisher
from dispatcher.engine.health import UNREACHABLE, Health
from dispatcher.engine.http import (
    healthz,
    metrics_handler,
    readyz_handler,
    serve,
    webhook_handler,
    webhook_secrets,
)
from dispatcher.engine.intake import Intake
from dispatcher.engine.lookup import SharedLookup, sharing_lookups
from dispatcher.engine.optout import optout_handler, optout_token
from dispatcher.engine.pacing import Pacer, all_grant_rules
from dispatcher.engine.tracker import Tracker
from dispatcher.logs import safe_url
from dispatcher.metrics import GROUP_RECREATED, INFLIGHT, set_known_providers
from dispatcher.providers import Adapter
from dispatcher.store import Store, WorkerInfo, connect
from dispatcher.store.protocol import Why
from dispatcher.store.types import GrantReply

log = structlog.get_logger("dispatcher")
LISTPACK_VALUE = 512  # hash-max-listpack-value that keeps a job hash compact

# entries read and placed per INGEST call: Redis runs one script at a time, so a longer call
# holds every grant and result write of the process behind it (benchmarks/README.md)
READ_BATCH = 100
GRANT_BATCH = 100
# grant calls per provider on their way at once, each asking for a share of the concurrency:
# while one waits for Redis, another asks for the room freed meanwhile, so dials never wait a
# whole round trip. The first loop leads; the others help only while it finds jobs to grant.
GRANT_LOOPS = 4
IDLE_POLL_S = 0.25
MAX_SLEEP_S = 2.0


class Worker:
    def __init__(self, settings: Settings, *, consumer: str | None = None,
                 adapters: dict[str, Adapter] | None = None, http_port: int | None = None):
        self.settings = settings
        self.consumer = consumer or consumer_name()
        conf = settings.worker
        client = connect(settings.redis, idempotent=True,
                         max_connections=conf.concurrency * 2 + 20)
        self.store = Store(client, settings.redis.namespace, settings.results.maxlen,
                           wait_replicas=settings.redis.wait_replicas,
                           wait_timeout_ms=settings.redis.wait_timeout_ms)
        self.adapters = adapters if adapters is not None else build_adapters(settings)
        set_known_providers(settings.providers)
        self.secrets = webhook_secrets(settings)
        self.optout_token = optout_token(settings)
        policies = PolicyBook(settings.policy, settings.campaigns)
        self.pacer = Pacer(self.store, sharing_lookups(all_grant_rules(settings, policies),
                                                       self.adapters), self.consumer)
        self.runtime = Runtime(settings, self.store, self.adapters, self.pacer, policies,
                               self.consumer)
        self.dialer = Dialer(self.runtime)
        self.tracker = Tracker(self.runtime)
        self.finisher = Finisher(self.runtime)
        self.intake = Intake(self.runtime, self.finisher, free_slots=self._free_slots,
                             promise=self._promise,
                             on_grants=self._on_grants)
        self.flights: dict[str, tuple[InFlight, asyncio.Task[None]]] = {}
        self.dialing = 0  # flights whose create has not been answered yet
        self.promised = 0  # slots promised to grant calls on their way
        self.grant_batch = min(GRANT_BATCH, -(-conf.concurrency // GRANT_LOOPS))
        self.visits: set[asyncio.Task[Any]] = set()
        self.visiting: set[str] = set()  # ids of the calls being visited (the heartbeat says)
        self.visited: set[str] = set()  # visits ended since the last heartbeat
        self.wake = {name: asyncio.Event() for name in settings.providers}
        self.helpers = {name: asyncio.Event() for name in settings.providers}
        self.slots_freed = asyncio.Event()
        self.stopping = asyncio.Event()
        self.read_own = True
        self.ready = False
        self.health = Health({"read": 3 * settings.redis.block_ms / 1000 + 10,
                              "upkeep": 30.0, "heartbeat": 30.0, "track": 30.0},
                             redis_url=safe_url(settings.redis.url))
        self.http_port = conf.http_port if http_port is None else http_port
        self.info = WorkerInfo.here(round(time.time() * 1000), conf.concurrency)  # Workers page
        self._runner: web.AppRunner | None = None

    # -- lifecycle ----------------------------------------------------------------------------
    async def run(self) -> None:
        await self._wait_for_redis()
        if self.stopping.is_set():
            return
        await self._warn_settings()
        try:
            await self._start_http()
        except BaseException:
            await self.store.close()  # nothing else is running yet
            raise
        self.ready = True
        log.info("worker.started", consumer=self.consumer, http=self._listening(),
                 providers=sorted(self.adapters), concurrency=self.settings.worker.concurrency)
        loops = [asyncio.create_task(c) for c in (
            self._loop("read", self._read_once, 0.0),
            self._loop("upkeep", self._upkeep_once, self.settings.worker.promote_interval_s),
            self._loop("heartbeat", self._heartbeat_once, self.settings.worker.heartbeat_s),
            self._loop("reclaim", self._reclaim_once, self.settings.worker.claim_idle_s / 3),
            self._loop("track", self._track_once, 0.25),
            *(self._loop(f"grant:{p}", self._grant_fn(p, lead=i == 0), 0.0)
              for p in self.adapters for i in range(GRANT_LOOPS)))]
        await self.stopping.wait()
        self.ready = False
        grace = self.settings.worker.shutdown_grace_s
        try:  # whatever Redis does, the process is gone within the grace period
            await asyncio.wait_for(self._shutdown(loops), grace + 1)
        except TimeoutError:
            log.error("worker.shutdown_timeout", grace_s=grace,
                      hint="what was not handed back is taken over by other workers")
        log.info("worker.stopped", consumer=self.consumer)

    async def _shutdown(self, loops: list[asyncio.Task[None]]) -> None:
        _, stuck = await asyncio.wait(loops, timeout=self.settings.redis.block_ms / 1000 + 1)
        for task in stuck:
            task.cancel()
        await asyncio.gather(*loops, return_exceptions=True)
        await self._drain()
        for adapter in self.adapters.values():
            await adapter.close()
        await self.pacer.drain()
        await self.runtime.close()
        if self._runner:
            await self._runner.cleanup()
        await self.store.close()

    def stop(self) -> None:
        self.stopping.set()
        for event in (self.slots_freed, *self.wake.values(), *self.helpers.values()):
            event.set()  # whatever pauses on them wakes now (see _pause)

    async def _ensure_group(self) -> None:
        if await self.store.ensure_group() and self.ready:
            GROUP_RECREATED.inc()
            log.error("redis.group_recreated", hint="the consumer group was missing: Redis lost "
                      "its data (a restart without persistence, FLUSHALL or eviction); jobs "
                      "pushed before are gone — use appendonly and maxmemory-policy noeviction")
        self.health.group_ok = True

    async def _warn_settings(self) -> None:
        policy = await self.store.maxmemory_policy()
        if policy not in (None, "noeviction"):
            log.warning("redis.eviction_policy", policy=policy,
                        hint="set maxmemory-policy noeviction: an evicted key is a lost job")
        listpack = await self.store.server_setting("hash-max-listpack-value")
        if listpack is not None and listpack.isdigit() and int(listpack) < LISTPACK_VALUE:
            log.warning("redis.memory_setting", setting="hash-max-listpack-value",
                        value=int(listpack), hint=f"set it to {LISTPACK_VALUE}: a job hash "
                        "then takes less than half the memory (docs/redis.md)")

    async def _wait_for_redis(self) -> None:
        """Redis may be down or full at start: wait for it with backoff (what Kubernetes
        expects of a pod), saying so at each try."""
        failures = 0
        while not self.stopping.is_set():
            try:
                await self.store.ping()
                await self._ensure_group()
                return
            except (RedisError, OSError) as exc:
                failures += 1
                delay = restart_delay(failures)
                log.error("redis.unreachable", url=safe_url(self.settings.redis.url),
                          error=str(exc), retry_in_s=delay)
                await self._pause(delay)

    async def _drain(self) -> None:
        grace = self.settings.worker.shutdown_grace_s
        tasks = [t for _, t in self.flights.values()] + list(self.visits)
        if tasks:
            await asyncio.wait(tasks, timeout=grace)
        for flight, task in list(self.flights.values()):
            if task.done():
                continue
            task.cancel()
            if not flight.sending:
                try:
                    await self.dialer.hand_back(flight)
                    log.info("job.handed_back", job_id=flight.grant.id)
                except RedisError:
                    pass  # another worker takes it over once this consumer is known dead
        for visit in self.visits:
            visit.cancel()

    # -- loop plumbing ------------------------------------------------------------------------
    def _loop(self, name: str, once: Callable[[], Awaitable[float | None]],
              every: float) -> Coroutine[Any, Any, None]:
        async def run() -> None:
            failures = 0
            while not self.stopping.is_set():
                try:
                    pause = await once()
                    failures = 0
                    self.health.progressed(name)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # a loop must never die: Redis may raise odd types
                    failures += 1
                    pause = restart_delay(failures)
                    self.health.failed(name, exc)
                wait = every if pause is None else pause
                if wait > 0:
                    await self._pause(wait)
        return run()

    async def _pause(self, seconds: float, event: asyncio.Event | None = None) -> None:
        """Sleep, but wake at once on shutdown (or on ``event``). ``stop`` sets every event a
        loop pauses on, so one wait covers both: a pause costs a timer, not two tasks (a
        grant loop pauses about once per dial at full load)."""
        if self.stopping.is_set():
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await (event or self.stopping).wait()

    def _free_slots(self) -> int:
        """Dials this process may start now. ``concurrency`` bounds the creates in flight; a
        job whose answer is in only has its outcome to write, and does not hold up the next
        dial (at full load that was two thirds of the flights). Twice ``concurrency`` bounds
        the jobs held, and so the Redis writes they can want at once."""
        limit = self.settings.worker.concurrency
        return min(limit - self.dialing, 2 * limit - len(self.flights)) - self.promised

    @contextlib.contextmanager
    def _promise(self, count: int) -> Iterator[None]:
        """Slots promised to a grant call on its way: no other call asks for it meanwhile."""
        self.promised += count
        try:
            yield
        finally:
            self.promised -= count

    # -- dialling -----------------------------------------------------------------------------
    def _on_grants(self, replies: list[GrantReply], asked_at: float) -> None:
        """``asked_at``: when the grant call left (each job's lag is measured from there)."""
        for reply in replies:
            self.pacer.follow(reply.provider, reply.windows_set)
            if not reply.replicated and reply.jobs:
                self._hand_back(reply)
                continue
            shared = SharedLookup.of(reply, self.pacer, self.adapters[reply.provider],
                                     self.runtime.timing)
            for grant in reply.jobs:
                self._spawn(InFlight(grant, asked_at, lookup=shared if grant.unsure else None))
            if reply.finish:
                task = asyncio.create_task(self.finisher.run_due(ids=list(reply.finish)))
                self.visits.add(task)
                task.add_done_callback(self.visits.discard)

    def _hand_back(self, reply: GrantReply) -> None:
        """Grants too few replicas acknowledged: a failover could forget them and grant the
        jobs again, so none is dialled; each goes back to wait a moment, nothing spent."""
        log.error("redis.replica_wait_failed", provider=reply.provider, jobs=len(reply.jobs),
                  wanted=self.settings.redis.wait_replicas,
                  timeout_ms=self.settings.redis.wait_timeout_ms,
                  hint="the grants are not dialled; check the replicas' link to the master")
        for grant in reply.jobs:
            task = asyncio.create_task(self.dialer.not_replicated(grant))
            self.visits.add(task)
            task.add_done_callback(self.visits.discard)

    def _spawn(self, flight: InFlight) -> None:
        if flight.grant.id in self.flights:
            return
        flight.on_answer = self._answered
        self.dialing += 1
        task = asyncio.create_task(self._dial(flight))
        self.flights[flight.grant.id] = (flight, task)
        task.add_done_callback(lambda _t: self._dial_done(flight))
        INFLIGHT.set(len(self.flights))

    def _answered(self, flight: InFlight) -> None:
        self.dialing -= 1
        self.slots_freed.set()

    def _dial_done(self, flight: InFlight) -> None:
        flight.answer()  # a flight that ended without a create (deferred, blocked, lost) too
        self.flights.pop(flight.grant.id, None)
        INFLIGHT.set(len(self.flights))
        self.slots_freed.set()

    async def _dial(self, flight: InFlight) -> None:
        try:
            await self.dialer.run(flight)
            self.health.progressed("dial")
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.health.failed("dial", exc)
            try:
                await self.dialer.crashed(flight)
            except Exception as again:  # Redis gone too: a heartbeat or the reaper takes it over
                self.health.failed("dial", again)

    def _grant_fn(self, provider: str, *, lead: bool) -> Callable[[], Awaitable[float | None]]:
        async def once() -> float | None:
            free = self._free_slots()
            if free <= 0:
                self.slots_freed.clear()
                await self._pause(1.0, self.slots_freed)
                return 0.0
            asked, ask = time.monotonic(), min(free, self.grant_batch)
            with self._promise(ask):
                [reply] = await self.store.grant([self.pacer.grant_args(provider, ask)])
            self._on_grants([reply], asked)
            if not reply.replicated:  # the replicas are behind or away: ask again later
                await self._pause(REPLICA_RETRY_S)
                return 0.0
            if reply.jobs and reply.why is Why.OK:
                if lead:
                    self.helpers[provider].set()
                return 0.0
            if not lead:  # back when the lead finds jobs again
                self.helpers[provider].clear()
                await self._pause(MAX_SLEEP_S, self.helpers[provider])
                return 0.0
            wait = {Why.EMPTY: IDLE_POLL_S, Why.SLOT: 0.25}.get(reply.why, reply.wait_ms / 1000)
            event = self.wake[provider]
            event.clear()
            await self._pause(min(max(wait, 0.001), MAX_SLEEP_S), event)
            return 0.0
        return once

    def _wake_all(self) -> None:
        for event in self.wake.values():
            event.set()

    # -- intake -------------------------------------------------------------------------------
    async def _read_once(self) -> float | None:
        try:
            return await self._read()
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            self.health.group_ok = False
            await self._ensure_group()
            self.read_own = True
            return 0.0

    async def _read(self) -> float | None:
        if self.read_own:
            self.read_own = False
            own = await self.store.read(self.consumer, READ_BATCH, 0, own=True)
            if own:
                await self.intake.process(own)
                self.read_own = len(own) == READ_BATCH
                self._wake_all()
                return 0.0
        queued = (await self.store.counts()).get(JobState.QUEUED, 0)
        if queued >= self.settings.worker.intake_max_ready:
            return 0.5
        entries = await self.store.read(self.consumer, READ_BATCH, self.settings.redis.block_ms)
        if entries:
            try:
                await self.intake.process(entries)
            except Exception:
                self.read_own = True  # they stay pending on this consumer: read them again
                raise
            self._wake_all()
        return 0.0

    async def _reclaim_once(self) -> float | None:
        idle = round(self.settings.worker.claim_idle_s * 1000)
        try:
            entries = await self.store.reclaim(self.consumer, idle, READ_BATCH)
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            await self._ensure_group()  # Redis lost its data: nothing to reclaim
            return None
        if entries:
            log.info("job.reclaimed", entries=len(entries))
            await self.intake.process(entries)
        return None

    # -- upkeep -------------------------------------------------------------------------------
    async def _upkeep_once(self) -> float | None:
        moved = await self.store.promote(round(self.runtime.timing.max_defer_s * 1000))
        if moved:
            self._wake_all()
        now = time.monotonic()
        if now - getattr(self, "_swept", 0.0) >= 1.0:
            self._swept = now
            due = await self.store.sweep()
            if due:
                await self.finisher.run_due(ids=due)
            await self.finisher.run_due()
        max_age = self.settings.results.max_age_s
        if max_age and now - getattr(self, "_trimmed", 0.0) >= 60.0:
            self._trimmed = now
            await self.store.trim_results(max_age)
        return None

    async def _heartbeat_once(self) -> float | None:
        settle = {name: round(self.runtime.timing.settle(cfg.request_timeout_s) * 1000)
                  for name, cfg in self.settings.providers.items()}
        conf = self.settings.worker
        visited, self.visited = self.visited, set()
        try:
            res = await self.store.heartbeat(
                self.consumer, list(self.flights), round(conf.dead_after_s * 1000),
                round(max(conf.dead_after_s, 5.0) * 1000), settle, self.pacer.margins_ms(),
                visiting=list(self.visiting), visited=list(visited - self.visiting),
                info=self.info)
        except BaseException:
            self.visited |= visited  # told next time
            raise
        for consumer in res.get("reaped") or []:
            log.warning("worker.taken_over", consumer=consumer)
        if res.get("claimed"):
            self.read_own = True
        if res.get("reconciled"):
            log.info("job.reclaimed", reconcile=res["reconciled"],
                     reason=WaitReason.RECONCILE.value)
        return None

    # -- tracking -----------------------------------------------------------------------------
    async def _track_once(self) -> float | None:
        free = self.settings.worker.concurrency - len(self.visits)
        if free <= 0:
            return None
        for view in await self.tracker.due(free):
            task = asyncio.create_task(self._visit(view))
            self.visits.add(task)
            task.add_done_callback(self.visits.discard)
        return None

    async def _visit(self, view: Any) -> None:
        self.visiting.add(view.id)
        try:
            await self.tracker.visit(view)
        except asyncio.CancelledError:
            raise
        except UNREACHABLE as exc:  # said once per interval, with the loops' failures
            self.health.failed("track", exc)
        except Exception:
            log.error("call.visit_failed", job_id=view.id, exc_info=True)
        finally:
            self.visiting.discard(view.id)
            self.visited.add(view.id)
        self._wake_all()  # a call that ended frees a slot

    # -- HTTP ---------------------------------------------------------------------------------
    async def _start_http(self) -> None:
        if self.http_port < 0:
            return
        app = web.Application()
        app.router.add_get("/healthz", healthz)
        app.router.add_get("/readyz", readyz_handler(
            self.store, self.health, lambda: (self.ready, len(self.flights))))
        app.router.add_get("/metrics", metrics_handler(self.settings, self.store))
        app.router.add_post("/webhooks/{provider}", webhook_handler(
            self.settings, self.store, self.secrets, self.runtime.timing))
        app.router.add_post("/v1/optout", optout_handler(self.settings, self.store,
                                                         self.optout_token))
        conf = self.settings.worker
        self._runner, self.http_port = await serve(
            app, conf.http_host, self.http_port, share=conf.http_share_port, key="worker.http_port",
            hint="give each worker its own port, or set worker.http_share_port = true to "
                 "share it")

    def _listening(self) -> str | None:
        """Where the HTTP side listens, for the start-up line (None: it does not)."""
        return f"{self.settings.worker.http_host}:{self.http_port}" if self._runner else None
