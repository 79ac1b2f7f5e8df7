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
from dispatcher.core.model import BlockReason, CallRecord, CallState, JobState, Outcome, WaitReason
from dispatcher.core.timing import LOOKUP_SKEW_S, OWNED_FOR_S, REPLICA_RETRY_S, Timing
from dispatcher.engine import predial
from dispatcher.engine.context import Runtime, now_ms
from dispatcher.engine.lookup import find_call
from dispatcher.engine.tracker import Tracker
from dispatcher.logs import get_logger, info_on
from dispatcher.metrics import DEFERRALS, REQUESTS, count, provider_label, status_label
from dispatcher.providers.base import ProviderFailure
from dispatcher.store.ports import DialerStore
from dispatcher.store.protocol import JobField, TrackItem, Why
from dispatcher.store.types import Granted, JobView, calls_to


def dial_fields(job: Job, g: Granted) -> dict[str, Any]:
    """What a dial's lines add when it applies: the campaign, and ``probe`` on the one dial
    that tests a halted provider."""
    out: dict[str, Any] = {"campaign": job.campaign} if job.campaign else {}
    if g.canary:
        out["probe"] = True
    return out


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
    confirm: bool = False  # make sure the job is still ours right before sending
    place_spent: bool = False  # its place in the provider's log went to a look-up


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
        self.store: DialerStore = rt.store

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
            await self.defer(job, g, step, decide.refunded(g.attempts), refund=True)
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
                    unsure: bool = False, extra: dict[JobField, Any] | None = None) -> None:
        DEFERRALS.labels(provider_label(job.provider), w.reason.value).inc()
        fields: dict[JobField, Any] = {JobField.ATTEMPTS: max(attempts, 0),
                                       JobField.UNSURE: "1" if unsure else ""}
        if refund:  # nothing was sent: the call number is free again
            fields[JobField.CALL_NUMBER] = max(g.call_n - 1, 0)
        fields.update(extra or {})
        if err is not None:
            fields[JobField.LAST_STATUS] = "" if err.status is None else err.status
            fields[JobField.LAST_CODE] = err.code
        await self.store.defer(job.id, to=w.place, reason=w.reason.value, until_ms=w.until_ms,
                               dtok=g.tok, fields=fields, refund_rate=refund,
                               refund_number=refund or created_nothing, detail=w.detail)
        get_logger(job_id=job.id, provider=job.provider, attempt=attempts).info(
            "job.parked" if w.park else "job.deferred", reason=w.reason.value,
            delay_s=round(max(0, w.until_ms - now_ms()) / 1000, 3), detail=w.detail or None,
            **({"http_status": err.status, "error_code": err.code} if err else {}))

    async def not_replicated(self, g: Granted) -> None:
        """A grant that must not be dialled (too few replicas acknowledged it): the job waits
        a moment and is granted again; nothing is spent (an unsure job stays unsure)."""
        reason = WaitReason.REPLICAS.value
        DEFERRALS.labels(provider_label(g.provider), reason).inc()
        fields = {} if g.unsure else {JobField.ATTEMPTS: decide.refunded(g.attempts),
                                      JobField.CALL_NUMBER: decide.refunded(g.call_n)}
        await self.store.defer(g.id, to=JobState.DELAYED, reason=reason, dtok=g.tok, fields=fields,
                               until_ms=now_ms() + round(REPLICA_RETRY_S * 1000),
                               refund_rate=True, refund_number=True)

    async def dial(self, fl: Flight, job: Job) -> None:
        g = fl.g
        if not await self._hook_allows(fl, job) or not await self._on_time(fl, job):
            return
        if info_on():
            get_logger(job_id=job.id, provider=job.provider, attempt=g.attempts).info(
                "call.dialing", to=job.to, call=g.call_n, **dial_fields(job, g))
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
            wait = decide.predial_failed(g.hook_failures + 1, self.rt.timing, now_ms(),
                                         self.rt.rng, str(exc))
            await self.defer(job, g, wait, decide.refunded(g.attempts), refund=True,
                             extra={JobField.HOOK_FAILURES: g.hook_failures + 1})
            return False
        if not answer.allow:
            await self.finish(job, g, Finish(Outcome.BLOCKED, {
                "reason": BlockReason.PREDIAL.value, "error_message": answer.reason}),
                decide.refunded(g.attempts))
            return False
        return True

    async def _on_time(self, fl: Flight, job: Job) -> bool:
        """A grant older than a quarter of the shortest window (a slow hook, a stalled
        process) is moved to now before sending, so the answer, which places the request in
        the provider's log for good, comes before its slot could be reused (see
        margins.py). One older than ``OWNED_FOR_S`` (a late grant reply) or one that had to
        be looked up first is confirmed too: another worker may have taken the job over
        meanwhile, and a takeover waits ``settle`` from the latest grant (which this one then
        is) before looking the call up."""
        g = fl.g
        pacer = self.rt.pacer
        rules = pacer.rules[job.provider]
        limit = min(pacer.late_s(job.provider), OWNED_FOR_S)
        while fl.confirm or time.monotonic() - fl.granted_at > limit:
            asked, tok = time.monotonic(), pacer.token()
            res = await self.store.regrant(rules, job.id, g.tok, tok, keep=fl.place_spent)
            if res.granted:
                fl.granted_at, fl.log_tok, fl.confirm, fl.place_spent = asked, tok, False, False
                continue  # its answer may itself have been late
            if res.reason is Why.LOST:  # another worker owns it now
                get_logger(job_id=job.id).warning("job.grant_lost")
                return False
            if res.reason is Why.HALTED:
                await self.defer(job, g, Wait(WaitReason.HALTED, now_ms(), park=True),
                                 decide.refunded(g.attempts), refund=True)
                return False
            await asyncio.sleep(res.wait_ms / 1000)
        return True

    async def started(self, job: Job, g: Granted, call_id: str, first_s: float | None = None
                      ) -> None:
        """The call exists: track it, first polled ``first_s`` from now (default: the
        schedule's first poll)."""
        if g.canary:
            await self.rt.ops.resume(job.provider, "probe succeeded")
        if info_on():
            get_logger(job_id=job.id, provider=job.provider, attempt=g.attempts).info(
                "call.started", call_id=call_id, call=g.call_n, **dial_fields(job, g))
        if not self.rt.settings.tracking.track_calls:
            await self.finish(job, g, Finish(Outcome.STARTED, {"call_id": call_id}))
            return
        first = round((self.rt.timing.poll(0) if first_s is None else first_s) * 1000)
        caller = self.rt.adapters[job.provider].caller(job, g.caller_id)
        item: TrackItem = {"id": job.id, "dtok": g.tok, "call_id": call_id, "first_ms": first,
                           "ttl": self.rt.timing.call_ttl_s(), "attempts": max(g.attempts, 1)}
        if caller:
            item["from"] = caller
        c = await self.store.track_one(item)
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
            await self.rt.ops.halt(job.provider, err, probe=g.canary)
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
        log = get_logger(job_id=job.id, provider=job.provider, attempt=g.attempts)
        found = await self._look_up(fl, job, settled)
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
            await self._adopt(job, g, found[0])
            return
        log.info("call.reconciled", found=False)
        if settled:  # dialling what another worker may have taken over during the look-up
            fl.g, fl.confirm = _fresh_dial(g), True
            await self.dial(fl, job)
            return
        failure = err or ProviderError(None, "unknown", "")
        step = decide.retry(failure, g.attempts, job.max_attempts, self.rt.timing, now_ms(),
                            self.rt.rng)
        if isinstance(step, Finish):
            await self.finish(job, g, step)
        else:
            await self.defer(job, g, step, g.attempts, err=failure)

    async def _look_up(self, fl: Flight, job: Job, settled: bool
                       ) -> list[CallState] | None:
        """This dial's call at the provider (None: the look-up itself failed)."""
        g = fl.g
        # from the lost dial itself, however long ago: a search that starts later cannot see
        # the call, and "not found" would dial a second time
        since = g.dial_ms / 1000 - LOOKUP_SKEW_S if g.dial_ms else \
            time.time() - self.rt.settings.tracking.reconcile_window_s
        placed = None
        if settled and time.monotonic() - fl.granted_at <= self.rt.pacer.late_s(job.provider):
            # nothing was sent on this grant: its place in the log serves the look-up, which
            # then waits for no new dial (a dial after it takes a place of its own)
            placed, fl.place_spent = (fl.granted_at, fl.log_tok), True
        return await find_call(self.rt.pacer, self.rt.adapters[job.provider], self.rt.timing,
                               job.id, g.call_n, since, placed=placed)

    async def _adopt(self, job: Job, g: Granted, call: CallState) -> None:
        """The looked-up call exists: follow it (an ended one gets its result at once)."""
        await self.started(job, g, call.call_id, first_poll_s(call, self.rt.timing))
        if call.terminal and self.rt.settings.tracking.track_calls:
            # it has ended: its result needs no poll (the one due at once is the fallback)
            await Tracker(self.rt).conclude(job, adopted(g, call.call_id), call)

    async def crashed(self, fl: Flight) -> None:
        """An unexpected error: back off; after a few, give the job a result."""
        g = fl.g
        job = self.rt.parse_stored(g.raw)
        if not isinstance(job, Job):
            return
        crashes = await self.store.bump(job.id, JobField.CRASHES)
        # a job granted unsure may have a call already (it is being looked up): like one that
        # was sending, it waits for a look-up, never a fresh dial
        step = decide.crashed(crashes, fl.sending or g.unsure, g.attempts, self.rt.timing,
                              now_ms())
        if isinstance(step.next, Finish):
            await self.finish(job, g, step.next, step.attempts)
            return
        await self.defer(job, g, step.next, step.attempts, err=decide.CRASH_ERROR,
                         unsure=step.unsure, refund=not step.unsure)

    async def hand_back(self, fl: Flight) -> None:
        """Shutdown: a dial that never started goes back to its ready list, its attempt and
        call number given back (one that was sending is left to be reconciled)."""
        g = fl.g
        # an unsure job's grant counted no attempt and no call number: nothing to give back
        fields = {} if g.unsure else {JobField.ATTEMPTS: decide.refunded(g.attempts),
                                      JobField.CALL_NUMBER: decide.refunded(g.call_n)}
        await self.store.defer(g.id, to=JobState.QUEUED, reason="", until_ms=0, dtok=g.tok,
                               refund_rate=True, refund_number=True, fields=fields)


def adopted(g: Granted, call_id: str) -> JobView:
    """What tracking holds for a job that has just adopted ``call_id`` (see lua/track.lua)."""
    calls = (*g.calls, CallRecord(call_id, now_ms()))
    return JobView(g.id, {"calls": calls_to(calls), "call_id": call_id,
                          "attempts": str(max(g.attempts, 1)), "rd": str(g.redials),
                          "first_seen": str(g.first_seen_ms)})


def first_poll_s(call: CallState, timing: Timing) -> float:
    """An adopted call is polled as if it had been followed since it was created: at once
    when it has ended (its result waits for no schedule), else at the first poll after its
    creation."""
    if call.terminal:
        return 0.0
    if call.created_at is None:
        return timing.poll(0)
    return min(timing.poll(0), max(0.0, call.created_at + timing.poll(0) - time.time()))


def _fresh_dial(g: Granted) -> Granted:
    """The looked-up call was never created: dial it now as an attempt of its own."""
    from dataclasses import replace
    return replace(g, attempts=g.attempts + 1, unsure=False)
