"""One job from stream entry to its next state: validate, pace, dial, and act on the answer.

Every exit writes exactly one atomic Redis step (finish, defer, park or track). The decisions
themselves come from pure code: ``parse_job``, ``classify``, ``backoff_delay``.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from typing import Any

from dispatcher import results
from dispatcher.backoff import backoff_delay
from dispatcher.classify import Action, ProviderError, classify
from dispatcher.config import Settings
from dispatcher.jobs import InvalidJob, Job, parse_job
from dispatcher.logs import get_logger
from dispatcher.lookup import find_job_calls
from dispatcher.metrics import DEFERRALS, HALTED, HALTS, RATE_LIMITED, REQUESTS, RESULTS
from dispatcher.pacing import Pacer
from dispatcher.providers.base import (
    Adapter,
    ProviderFailure,
    RateObservation,
)
from dispatcher.store import Admit, Begin, Store

COOLDOWN_JITTER_S = 0.25
CONCURRENCY_WAIT_S = 2.0
MAX_CRASHES = 3
LOOKUP_SKEW_S = 60.0


@dataclass
class Flight:
    """A job this process holds; ``phase`` tells shutdown whether it can be handed back."""

    entry_id: str
    job_id: str | None = None
    provider: str = "default"
    attempts: int = 0
    phase: str = "new"  # new | waiting | dialing | done


@dataclass
class Runtime:
    settings: Settings
    store: Store
    adapters: dict[str, Adapter]
    pacer: Pacer
    consumer: str
    rng: random.Random = field(default_factory=random.Random)

    def ttl(self) -> int:
        return self.settings.worker.dedupe_ttl_s


class Dialer:
    def __init__(self, rt: Runtime):
        self.rt = rt
        self.store = rt.store
        self.cfg = rt.settings

    # -- results ------------------------------------------------------------------------------
    async def finish(self, job: Job | InvalidJob, entry_id: str, outcome: str, attempts: int,
                     first_seen_ms: int | None, **extra: Any) -> None:
        job_id = job.id if isinstance(job, Job) else job.job_id
        res = results.result(outcome, job_id=job_id, attempts=attempts, provider=job.provider,
                             metadata=job.metadata, enqueued_ms=first_seen_ms,
                             finished_ms=int(time.time() * 1000), **extra)
        written = await self.store.finish(job_id, entry_id, job.provider, res, self.rt.ttl())
        if written:
            RESULTS.labels(job.provider, outcome).inc()
            get_logger(job_id=job_id, provider=job.provider, attempt=attempts).info(
                "job.result", outcome=outcome, **{k: v for k, v in extra.items()
                                                  if k != "error_message" or v})

    async def defer(self, fl: Flight, job: Job, delay_s: float, attempts: int, reason: str,
                    err: ProviderError | None = None, *, park: bool = False,
                    unsure: bool = False, raw: str = "") -> None:
        DEFERRALS.labels(job.provider, reason).inc()
        await self.store.defer(job.id, fl.entry_id, job.provider, round(delay_s * 1000), attempts,
                               last_status=err.status if err else None,
                               last_code=err.code if err else "", park=park, unsure=unsure,
                               raw=raw)
        get_logger(job_id=job.id, provider=job.provider, attempt=attempts).info(
            "job.parked" if park else "job.deferred", reason=reason, delay_s=round(delay_s, 3),
            **({"http_status": err.status, "error_code": err.code} if err else {}))

    async def crashed(self, fl: Flight, raw: str | None) -> None:
        """An unexpected error: back off, and after a few of them give the job a result."""
        parsed = parse_job(raw)
        if not isinstance(parsed, Job):
            await self.store.ack(fl.entry_id)
            return
        crashes = await self.store.bump(parsed.id, "crashes")
        err = ProviderError(None, "internal_error", "the worker failed on this job")
        if crashes >= MAX_CRASHES and fl.phase != "dialing":
            await self.finish(parsed, fl.entry_id, "exhausted", fl.attempts, None,
                              **results.error_fields(None, err.code, err.message))
            return
        await self.defer(fl, parsed, self.cfg.retry.max_delay_s, fl.attempts, "crash", err,
                         unsure=fl.phase == "dialing", raw=raw or "")

    # -- entry point --------------------------------------------------------------------------
    async def handle(self, fl: Flight, raw: str | None) -> None:
        parsed = parse_job(raw)
        if isinstance(parsed, InvalidJob):
            fl.job_id = parsed.job_id
            if parsed.job_id is not None and raw is not None:
                # the id is readable: it may belong to a job already under way
                seen = await self.store.begin(parsed.job_id, fl.entry_id, raw)
                if seen.status != "ok":
                    if seen.status == "duplicate":
                        get_logger(job_id=parsed.job_id).info("job.duplicate",
                                                              entry_id=fl.entry_id)
                    return
            await self.finish(parsed, fl.entry_id, "invalid", 0, None,
                              error_message=parsed.error)
            return
        job = parsed
        fl.job_id, fl.provider = job.id, job.provider
        assert raw is not None
        adapter = self.rt.adapters.get(job.provider)
        got = None
        if adapter is not None and self._ready(job, adapter):
            got = await self.rt.pacer.begin_admit(
                job.provider, job_id=job.id, raw=raw, entry_id=fl.entry_id,
                max_age_ms=round(self.cfg.retry.max_defer_s * 1000))
        b, pre = got if got is not None else (
            await self.store.begin(job.id, fl.entry_id, raw), None)
        if b.status != "ok":
            if b.status == "duplicate":
                get_logger(job_id=job.id).info("job.duplicate", entry_id=fl.entry_id)
            return
        fl.attempts = b.attempts
        if pre is not None and pre.granted:
            fl.phase = "dialing"  # the grant marked the job as dialling in Redis
        await self._route(fl, job, b, pre)

    @staticmethod
    def _ready(job: Job, adapter: Adapter) -> bool:
        """Nothing but a grant stands between this job and its dial (fast-path test)."""
        now = time.time()
        return (adapter.check(job) is None
                and (job.expires_at is None or now < job.expires_at)
                and (job.not_before is None or now >= job.not_before))

    async def _route(self, fl: Flight, job: Job, b: Begin, pre: Admit | None = None) -> None:
        adapter = self.rt.adapters.get(job.provider)
        now = time.time()
        if adapter is None:
            bad = InvalidJob(job.id, f"provider: no provider named '{job.provider}' is "
                             f"configured ({', '.join(sorted(self.rt.adapters)) or 'none'})",
                             job.metadata, job.provider)
            await self.finish(bad, fl.entry_id, "invalid", b.attempts, b.first_seen_ms,
                              error_message=bad.error)
            return
        problem = adapter.check(job)
        if problem:
            await self.finish(job, fl.entry_id, "invalid", b.attempts, b.first_seen_ms,
                              error_message=problem)
            return
        if b.cancelled and b.state not in ("dialing",) and not b.unsure:
            await self.finish(job, fl.entry_id, "cancelled", b.attempts, b.first_seen_ms)
            return
        if b.state == "dialing" or b.unsure:
            if await self._reconcile(fl, job, adapter, b):
                return
            if b.cancelled:
                await self.finish(job, fl.entry_id, "cancelled", b.attempts, b.first_seen_ms)
                return
        if job.expires_at is not None and now >= job.expires_at:
            await self.finish(job, fl.entry_id, "expired", b.attempts, b.first_seen_ms)
            return
        if job.not_before is not None and now < job.not_before:
            await self.defer(fl, job, job.not_before - now, b.attempts, "not_before")
            return
        await self._dial(fl, job, adapter, b, pre)

    def _deadline(self, job: Job, b: Begin) -> float:
        age_limit = b.first_seen_ms / 1000 + self.cfg.retry.max_defer_s
        return min(age_limit, job.expires_at) if job.expires_at else age_limit

    async def _out_of_time(self, fl: Flight, job: Job, b: Begin, attempts: int,
                           err: ProviderError | None, reason: str) -> None:
        if job.expires_at is not None and time.time() >= job.expires_at - 0.001:
            await self.finish(job, fl.entry_id, "expired", attempts, b.first_seen_ms)
            return
        await self.finish(job, fl.entry_id, "exhausted", attempts, b.first_seen_ms,
                          http_status=err.status if err else None,
                          error_code=err.code if err else None,
                          reason=f"max_defer_s exceeded while waiting ({reason})")

    # -- dialing ------------------------------------------------------------------------------
    async def _dial(self, fl: Flight, job: Job, adapter: Adapter, b: Begin,
                    pre: Admit | None = None) -> None:
        attempts = b.attempts + 1
        deadline = self._deadline(job, b)
        if pre is not None and pre.granted:
            adm = pre  # granted together with the claim (Pacer.begin_admit)
        else:
            if time.time() >= deadline:
                await self._out_of_time(fl, job, b, b.attempts, None, "age")
                return
            fl.phase = "waiting"
            adm = await self.rt.pacer.acquire(job.provider, job_id=job.id, deadline=deadline,
                                              dial_attempts=attempts, entry_id=fl.entry_id)
        if not adm.granted:
            if adm.reason == "lost":
                return
            if adm.reason == "cancelled":
                await self.finish(job, fl.entry_id, "cancelled", b.attempts, b.first_seen_ms)
                return
            if adm.reason == "halted":
                await self.defer(fl, job, 0, b.attempts, "halted", park=True)
                return
            if time.time() + adm.wait_ms / 1000 >= deadline:
                await self._out_of_time(fl, job, b, b.attempts, None, adm.reason)
                return
            await self.defer(fl, job, adm.wait_ms / 1000, b.attempts, adm.reason)
            return
        fl.phase, fl.attempts = "dialing", attempts
        log = get_logger(job_id=job.id, provider=job.provider, attempt=attempts)
        log.info("call.dialing", to=job.to, canary=adm.canary)
        try:
            started = await adapter.start_call(job)
        except ProviderFailure as failure:
            REQUESTS.labels(job.provider, "start", str(failure.error.status or
                                                       failure.error.code)).inc()
            await self._observe(job.provider, failure.rate)
            await self._on_error(fl, job, adapter, b, attempts, failure.error, adm.canary)
            return
        REQUESTS.labels(job.provider, "start", "201").inc()
        await self._observe(job.provider, started.rate)
        await self._on_started(fl, job, started.call_id, attempts, b, adm.canary)

    async def _on_started(self, fl: Flight, job: Job, call_id: str, attempts: int, b: Begin,
                          canary: bool) -> None:
        if canary:
            await self.resume(job.provider, "probe succeeded")
        log = get_logger(job_id=job.id, provider=job.provider, attempt=attempts)
        log.info("call.started", call_id=call_id)
        if self.cfg.tracking.track_calls:
            first = self.cfg.tracking.poll_schedule_s[0]
            await self.store.track(job.id, fl.entry_id, call_id, round(first * 1000),
                                   int(self.cfg.tracking.max_track_s) + 86400)
        else:
            await self.finish(job, fl.entry_id, "started", attempts, b.first_seen_ms,
                              call_id=call_id)
        fl.phase = "done"

    async def _on_error(self, fl: Flight, job: Job, adapter: Adapter, b: Begin, attempts: int,
                        err: ProviderError, canary: bool) -> None:
        action = classify(adapter.kind, err, adapter.job_fields(job), on_create=True)
        log = get_logger(job_id=job.id, provider=job.provider, attempt=attempts)
        log.warning("call.start_failed", http_status=err.status, error_code=err.code,
                    error_message=err.message, action=action.value)
        if canary and action is not Action.HALT:
            await self.resume(job.provider, "probe got past the halt")
        if action is Action.REJECT:
            await self.finish(job, fl.entry_id, "rejected", attempts, b.first_seen_ms,
                              **results.error_fields(err.status, err.code, err.message))
        elif action is Action.RETRY:
            await self.retry_or_exhaust(fl, job, b, attempts, err)
        elif action is Action.RATE_LIMITED:
            delay = await self.cooldown(job.provider, err, attempts)
            await self.defer(fl, job, delay, attempts - 1, "rate_limited", err)
        elif action is Action.CONCURRENCY:
            await self.store.shrink_slots(job.provider, 60_000)
            delay = max(err.retry_after_s or 0.0, CONCURRENCY_WAIT_S)
            await self.defer(fl, job, delay, attempts - 1, "concurrency_limit", err)
        elif action is Action.HALT:
            await self.halt(job.provider, err)
            await self.defer(fl, job, 0, attempts - 1, "halted", err, park=True)
        else:  # RECONCILE
            b2 = Begin("ok", attempts, b.first_seen_ms, "dialing", b.cancelled, "", b.prior_calls,
                       int(time.time() * 1000))
            if await self._reconcile(fl, job, adapter, b2, wait=False):
                return
            await self.retry_or_exhaust(fl, job, b, attempts, err)

    async def retry_or_exhaust(self, fl: Flight, job: Job, b: Begin, attempts: int,
                               err: ProviderError, *, unsure: bool = False) -> None:
        cap = job.max_attempts or self.cfg.retry.max_attempts
        if attempts >= cap:
            await self.finish(job, fl.entry_id, "exhausted", attempts, b.first_seen_ms,
                              http_status=err.status, error_code=err.code,
                              error_message=err.message)
            return
        r = self.cfg.retry
        delay = backoff_delay(attempts, r.base_delay_s, r.max_delay_s, self.rt.rng)
        delay = max(delay, err.retry_after_s or 0.0)
        await self.defer(fl, job, delay, attempts, "retry", err, unsure=unsure)

    # -- provider-wide state ------------------------------------------------------------------
    async def cooldown(self, provider: str, err: ProviderError, attempts: int) -> float:
        """Pause every worker: Retry-After, else backoff, plus a little jitter."""
        RATE_LIMITED.labels(provider, err.code).inc()
        r = self.cfg.retry
        base = err.retry_after_s
        if base is None:
            base = backoff_delay(max(attempts, 1), r.base_delay_s, r.max_delay_s, self.rt.rng)
        delay = base + self.rt.rng.uniform(0, COOLDOWN_JITTER_S)
        await self.store.set_cooldown(provider, round(delay * 1000))
        get_logger(provider=provider).warning("provider.cooldown", seconds=round(delay, 3),
                                              error_code=err.code)
        return delay

    async def halt(self, provider: str, err: ProviderError) -> None:
        r = self.cfg.retry
        backoff = await self.store.halt(provider, err.message or err.code, err.code,
                                        round(r.halt_probe_s * 1000),
                                        round(r.halt_probe_max_s * 1000))
        HALTS.labels(provider, err.code).inc()
        HALTED.labels(provider).set(1)
        get_logger(provider=provider).error(
            "provider.halted", http_status=err.status, error_code=err.code,
            error_message=err.message, next_probe_s=backoff / 1000,
            hint=f"fix the account, then run: dispatcher resume {provider}")

    async def resume(self, provider: str, why: str) -> None:
        moved = await self.store.unpark(provider)
        HALTED.labels(provider).set(0)
        get_logger(provider=provider).warning("provider.resumed", reason=why, requeued=moved)

    async def _observe(self, provider: str, rate: tuple[RateObservation, ...]) -> None:
        """Yield to the provider's count when it runs low (the key may be shared)."""
        windows = {w.seconds: w for w in self.cfg.providers[provider].windows}
        for obs in rate:
            w = windows.get(obs.seconds)
            if w is None:
                if obs.remaining <= 0 and obs.reset_s > 0:
                    # a window we were not told about is full: wait for its reset, not a 429
                    await self.store.set_cooldown(provider, round(obs.reset_s * 1000))
                    get_logger(provider=provider).warning(
                        "pacing.provider_window_full", window_s=obs.seconds,
                        reset_s=obs.reset_s, hint="add this window to the provider's limits")
                continue
            if obs.remaining > w.limit // 4:
                continue
            if await self.store.observe(provider, w, obs.remaining, round(obs.reset_s * 1000)):
                get_logger(provider=provider).info("pacing.provider_count_lower",
                                                   window=w.label(), remaining=obs.remaining)

    # -- reconciliation -----------------------------------------------------------------------
    async def _reconcile(self, fl: Flight, job: Job, adapter: Adapter, b: Begin,
                         wait: bool = True) -> bool:
        """The call may exist: look it up. True when the job was settled (adopted or deferred)."""
        log = get_logger(job_id=job.id, provider=job.provider, attempt=b.attempts)
        if wait and b.dial_ms:
            # a dial by a stalled worker may still be on its way: let it land or time out
            settle = b.dial_ms / 1000 + adapter_timeout(self.cfg, job.provider) + 1 - time.time()
            if settle > 0:
                await asyncio.sleep(settle)
        # our call cannot be older than our latest dial (60 s of clock skew allowed)
        horizon = time.time() - self.cfg.tracking.reconcile_window_s
        since = max(horizon, b.dial_ms / 1000 - LOOKUP_SKEW_S) if b.dial_ms else horizon
        fresh = await find_job_calls(self.rt.pacer, adapter, job.provider, job.id, since,
                                     b.prior_calls)
        if fresh is None:
            log.warning("call.reconcile_unknown")
            err = ProviderError(None, "reconcile_failed", "could not look the call up")
            await self.defer(fl, job, self.cfg.retry.base_delay_s, b.attempts, "reconcile", err,
                             unsure=True)
            return True
        if not fresh:
            log.info("call.reconciled", found=False)
            return False
        call = fresh[0]
        log.warning("call.reconciled", found=True, call_id=call.call_id)
        await self._on_started(fl, job, call.call_id, max(b.attempts, 1), b, canary=False)
        return True


def adapter_timeout(cfg: Settings, provider: str) -> float:
    return cfg.providers[provider].request_timeout_s

