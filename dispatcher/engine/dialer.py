"""Dialling a granted job: the decision at the moment of dialling, the request, and acting
on its answer. Every exit is one atomic Redis step (track, finish or defer) made by the grant
that owns the job, so a worker presumed dead can never overwrite its successor.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dispatcher.core import decide
from dispatcher.core.classify import Action, ProviderError, classify
from dispatcher.core.decide import Effect, Finish, Reconcile, Wait
from dispatcher.core.jobs import Job
from dispatcher.core.margins import SENDING
from dispatcher.core.model import BlockReason, Outcome, WaitReason
from dispatcher.core.timing import LOOKUP_SKEW_S
from dispatcher.engine import predial
from dispatcher.engine.context import Runtime, now_ms
from dispatcher.engine.lookup import find_call
from dispatcher.logs import get_logger, info_on
from dispatcher.metrics import DEFERRALS, REQUESTS, count, provider_label, status_label
from dispatcher.providers.base import ProviderFailure
from dispatcher.store.types import Granted

MAX_CRASHES = 3


@dataclass
class Flight:
    """A granted job this process is dialling."""

    g: Granted
    granted_at: float = field(default_factory=time.monotonic)
    sending: bool = False
    log_tok: str = field(init=False)  # its place in the provider's log (a regrant: a new one)
    # told once the provider has answered the create (or it failed): the dial is over, what
    # is left is writing its outcome, and the process may start another dial meanwhile
    on_answer: Callable[[Flight], None] | None = None
    answered: bool = False

    def __post_init__(self) -> None:
        self.log_tok = self.g.tok

    def answer(self) -> None:
        if not self.answered:
            self.answered = True
            if self.on_answer is not None:
                self.on_answer(self)


class Dialer:
    def __init__(self, rt: Runtime):
        self.rt = rt
        self.store = rt.store

    async def run(self, fl: Flight) -> None:
        g = fl.g
        job = self.rt.parse_stored(g.raw)
        if not isinstance(job, Job):  # valid at intake; only a changed rule gets here
            await self.rt.finish(job, Finish(Outcome.INVALID, {"error_message": job.error}),
                                 attempts=g.attempts, first_seen_ms=g.first_seen_ms,
                                 dtok=g.tok)
            return
        pol = self.rt.policies.for_job(job)
        step = decide.at_grant(job, pol, now_ms(), unsure=g.unsure)
        if isinstance(step, Finish):
            await self.finish(job, g, step)
        elif isinstance(step, Wait):
            await self.defer(job, g, step, g.attempts - 1, refund=True)
        elif isinstance(step, Reconcile):
            await self.reconcile(fl, job, settled=True)
        else:
            await self.dial(fl, job)

    # -- steps -----------------------------------------------------------------------------------
    async def finish(self, job: Job, g: Granted, fin: Finish, attempts: int | None = None
                     ) -> None:
        await self.rt.finish(job, fin, attempts=g.attempts if attempts is None else attempts,
                             first_seen_ms=g.first_seen_ms, dtok=g.tok)

    async def defer(self, job: Job, g: Granted, w: Wait, attempts: int, *, refund: bool = False,
                    created_nothing: bool = False, err: ProviderError | None = None,
                    unsure: bool = False, extra: dict[str, Any] | None = None) -> None:
        DEFERRALS.labels(provider_label(job.provider), w.reason.value).inc()
        fields: dict[str, Any] = {"attempts": max(attempts, 0), "unsure": "1" if unsure else ""}
        if refund:  # nothing was sent: the call number is free again
            fields["cn"] = max(g.call_n - 1, 0)
        fields.update(extra or {})
        if err is not None:
            fields.update(last_status="" if err.status is None else err.status,
                          last_code=err.code)
        await self.store.defer(job.id, to=w.place, reason=w.reason.value, until_ms=w.until_ms,
                               dtok=g.tok, fields=fields, refund_rate=refund,
                               refund_number=refund or created_nothing, detail=w.detail)
        get_logger(job_id=job.id, provider=job.provider, attempt=attempts).info(
            "job.parked" if w.park else "job.deferred", reason=w.reason.value,
            delay_s=round(max(0, w.until_ms - now_ms()) / 1000, 3), detail=w.detail or None,
            **({"http_status": err.status, "error_code": err.code} if err else {}))

    async def dial(self, fl: Flight, job: Job) -> None:
        g = fl.g
        if not await self._hook_allows(fl, job) or not await self._on_time(fl, job):
            return
        if info_on():
            get_logger(job_id=job.id, provider=job.provider, attempt=g.attempts).info(
                "call.dialing", to=job.to, call=g.call_n, canary=g.canary)
        fl.sending = True
        SENDING.set(self.rt.pacer.clock(job.provider, fl.granted_at, fl.log_tok))
        try:
            started = await self.rt.adapters[job.provider].start_call(job, g.call_n,
                                                                      g.caller_id)
        except ProviderFailure as failure:
            fl.answer()
            count(REQUESTS, provider_label(job.provider), "start", status_label(failure.error))
            if failure.error.status is not None:
                self.rt.ops.reached(job.provider)
            await self.rt.ops.observe(job.provider, failure.rate)
            await self.on_error(fl, job, failure.error)
            return
        fl.answer()
        count(REQUESTS, provider_label(job.provider), "start", "201")
        self.rt.ops.reached(job.provider)
        await self.rt.ops.observe(job.provider, started.rate)
        await self.started(job, g, started.call_id)

    async def _hook_allows(self, fl: Flight, job: Job) -> bool:
        """The pre-dial hook, when configured: fail-closed (no answer, no dial)."""
        g = fl.g
        pol = self.rt.policies.for_job(job).pol
        if not pol.predial_url:
            return True
        try:
            answer = await predial.ask(self.rt.http(), pol.predial_url, pol.predial_timeout_s,
                                       job)
        except predial.HookFailed as exc:
            get_logger(job_id=job.id, provider=job.provider).warning(
                "predial.failed", error=str(exc))
            delay = self.rt.timing.retry(g.hook_failures + 1, "predial", None, self.rt.rng)
            wait = Wait(WaitReason.PREDIAL, now_ms() + round(delay * 1000), str(exc))
            await self.defer(job, g, wait, g.attempts - 1, refund=True,
                             extra={"pf": g.hook_failures + 1})
            return False
        if not answer.allow:
            await self.finish(job, g, Finish(Outcome.BLOCKED, {
                "reason": BlockReason.PREDIAL.value, "error_message": answer.reason}),
                g.attempts - 1)
            return False
        return True

    async def _on_time(self, fl: Flight, job: Job) -> bool:
        """A grant older than a quarter of the shortest window (a slow hook, a stalled
        process) is moved to now before sending, so the answer, which places the request in
        the provider's log for good, comes before its slot could be reused (see
        margins.py)."""
        g = fl.g
        pacer = self.rt.pacer
        rules = pacer.rules[job.provider]
        while time.monotonic() - fl.granted_at > pacer.late_s(job.provider):
            asked, tok = time.monotonic(), pacer.token()
            res = await self.store.regrant(rules, job.id, g.tok, tok)
            if res.granted:
                fl.granted_at, fl.log_tok = asked, tok
                return True
            if res.reason == "lost":  # another worker owns it now
                get_logger(job_id=job.id).warning("job.grant_lost")
                return False
            if res.reason == "halted":
                await self.defer(job, g, Wait(WaitReason.HALTED, now_ms(), park=True),
                                 g.attempts - 1, refund=True)
                return False
            await asyncio.sleep(res.wait_ms / 1000)
        return True

    async def started(self, job: Job, g: Granted, call_id: str) -> None:
        if g.canary:
            await self.rt.ops.resume(job.provider, "probe succeeded")
        if info_on():
            get_logger(job_id=job.id, provider=job.provider, attempt=g.attempts).info(
                "call.started", call_id=call_id, call=g.call_n)
        if not self.rt.settings.tracking.track_calls:
            await self.finish(job, g, Finish(Outcome.STARTED, {"call_id": call_id}))
            return
        first = round(self.rt.timing.poll(0) * 1000)
        caller = self.rt.adapters[job.provider].caller(job, g.caller_id)
        c = await self.store.track_one({"id": job.id, "dtok": g.tok, "call_id": call_id,
                                        "first_ms": first, "ttl": self.rt.timing.call_ttl_s(),
                                        "attempts": max(g.attempts, 1), "from": caller})
        if c is not None:
            get_logger(job_id=job.id, provider=job.provider).error(
                "call.second_call_detected", call_id=c.get("call_id"), other=c.get("other"))

    async def on_error(self, fl: Flight, job: Job, err: ProviderError) -> None:
        g = fl.g
        adapter = self.rt.adapters[job.provider]
        table: Any = self.rt.errors(job.provider)
        action = classify(table, err, adapter.job_fields(job), on_create=True)
        get_logger(job_id=job.id, provider=job.provider, attempt=g.attempts).warning(
            "call.start_failed", http_status=err.status, error_code=err.code,
            error_message=err.message, action=action.value)
        if g.canary and action is not Action.HALT:
            await self.rt.ops.resume(job.provider, "probe got past the halt")
        step = decide.on_error(action, err, g.attempts, job.max_attempts, self.rt.timing,
                               now_ms(), self.rt.rng)
        if step.effect is Effect.COOLDOWN and isinstance(step.next, Wait):
            await self.rt.ops.cooldown(job.provider, err,
                                       max(0.001, (step.next.until_ms - now_ms()) / 1000))
        elif step.effect is Effect.HALT:
            await self.rt.ops.halt(job.provider, err)
        elif step.effect is Effect.SHRINK:
            await self.rt.ops.shrink(job.provider)
        elif step.effect is Effect.UNREACHABLE:
            await self.rt.ops.unreachable(job.provider, err)
        if isinstance(step.next, Finish):
            await self.finish(job, g, step.next, step.attempts)
        elif isinstance(step.next, Wait):
            await self.defer(job, g, step.next, step.attempts, err=err,
                             created_nothing=err.created_nothing)
        else:
            await self.reconcile(fl, job, settled=False, err=err)

    # -- a call that may exist ------------------------------------------------------------------
    async def reconcile(self, fl: Flight, job: Job, *, settled: bool,
                        err: ProviderError | None = None) -> None:
        """Look the call up; adopt it, or dial (again) only when it surely does not exist.

        ``settled``: the lost dial can no longer be on its way (a reclaimed job waited for
        that), so "not found" means "never created" and the job dials at once with the same
        call number. Otherwise (an ambiguous answer just now) "not found" counts as a failed
        attempt and the job retries after backoff.
        """
        g = fl.g
        adapter = self.rt.adapters[job.provider]
        log = get_logger(job_id=job.id, provider=job.provider, attempt=g.attempts)
        # from the lost dial itself, however long ago: a search that starts later cannot see
        # the call, and "not found" would dial a second time
        since = g.dial_ms / 1000 - LOOKUP_SKEW_S if g.dial_ms else \
            time.time() - self.rt.settings.tracking.reconcile_window_s
        found = await find_call(self.rt.pacer, adapter, self.rt.timing, job.id, g.call_n, since)
        if found is None:
            log.warning("call.reconcile_unknown")
            wait = Wait(WaitReason.RECONCILE,
                        now_ms() + round(self.rt.timing.base_delay_s * 1000))
            await self.defer(job, g, wait, g.attempts,
                             err=ProviderError(None, "reconcile_failed",
                                               "could not look the call up"), unsure=True)
            return
        if found:
            log.warning("call.reconciled", found=True, call_id=found[0].call_id)
            await self.started(job, g, found[0].call_id)
            return
        log.info("call.reconciled", found=False)
        if settled:
            fl.g = _fresh_dial(g)
            await self.dial(fl, job)
            return
        failure = err or ProviderError(None, "unknown", "")
        step = decide.retry(failure, g.attempts, job.max_attempts, self.rt.timing, now_ms(),
                            self.rt.rng)
        if isinstance(step, Finish):
            await self.finish(job, g, step)
        else:
            await self.defer(job, g, step, g.attempts, err=failure)

    async def crashed(self, fl: Flight) -> None:
        """An unexpected error: back off; after a few, give the job a result."""
        g = fl.g
        job = self.rt.parse_stored(g.raw)
        if not isinstance(job, Job):
            return
        crashes = await self.store.bump(job.id, "crashes")
        err = ProviderError(None, "internal_error", "the worker failed on this job")
        if crashes >= MAX_CRASHES and not fl.sending:
            await self.finish(job, g, Finish(Outcome.EXHAUSTED, decide.error_fields(err)))
            return
        wait = Wait(WaitReason.CRASH, now_ms() + round(self.rt.timing.max_delay_s * 1000))
        await self.defer(job, g, wait, g.attempts - (0 if fl.sending else 1), err=err,
                         unsure=fl.sending, refund=not fl.sending)


def _fresh_dial(g: Granted) -> Granted:
    """The looked-up call was never created: dial it now as an attempt of its own."""
    from dataclasses import replace
    return replace(g, attempts=g.attempts + 1, unsure=False)
