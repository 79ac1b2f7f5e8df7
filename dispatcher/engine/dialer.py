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
from dispatcher.engine.lookup import SharedLookup, find_call
from dispatcher.engine.tracker import Tracker
from dispatcher.logs import get_logger, info_on
from dispatcher.metrics import DEFERRALS, REQUESTS, count, provider_label, status_label
from dispatcher.providers.base import ProviderFailure
from dispatcher.store.ports import DialerStore
from dispatcher.store.protocol import JobField, TrackItem, Why
from dispatcher.store.types import Granted, JobView, calls_to


def dial_fields(job: Job, grant: Granted) -> dict[str, Any]:
    """What a dial's lines add when it applies: the campaign, and ``probe`` on the one dial
    that tests a halted provider."""
    out: dict[str, Any] = {"campaign": job.campaign} if job.campaign else {}
    if grant.probe:
        out["probe"] = True
    return out


@dataclass
class InFlight:
    """A granted job this process is dialling."""

    grant: Granted
    granted_at: float = field(default_factory=time.monotonic)
    sending: bool = False
    log_tok: str = field(init=False)  # its place in the provider's log (a regrant: a new one)
    # told once the provider has answered the create (or it failed): the dial is over, what
    # is left is writing its outcome, and the process may start another dial meanwhile
    on_answer: Callable[[InFlight], None] | None = None
    answered: bool = False
    confirm: bool = False  # make sure the job is still ours right before sending
    place_spent: bool = False  # its place in the provider's log went to a look-up
    lookup: SharedLookup | None = None  # the listing it shares with its grant's unsure jobs

    def __post_init__(self) -> None:
        self.log_tok = self.grant.tok
        # granted without a place (its look-up shares another's): a dial takes one first
        self.place_spent = self.place_spent or not self.grant.placed

    def answer(self) -> None:
        if not self.answered:
            self.answered = True
            if self.on_answer is not None:
                self.on_answer(self)


class Dialer:
    def __init__(self, runtime: Runtime):
        self.runtime = runtime
        self.store: DialerStore = runtime.store

    async def run(self, flight: InFlight) -> None:
        grant = flight.grant
        job = self.runtime.parse_stored(grant.raw)
        if not isinstance(job, Job):  # valid at intake; only a changed rule gets here
            await self.runtime.finish(job, Finish(Outcome.INVALID, {"error_message": job.error}),
                                      attempts=grant.attempts, first_seen_ms=grant.first_seen_ms,
                                      grant_token=grant.tok)
            return
        pol = self.runtime.policies.for_job(job)
        step = decide.at_grant(job, pol, now_ms(), unsure=grant.unsure)
        if isinstance(step, Finish):
            await self.finish(job, grant, step)
        elif isinstance(step, Wait):
            await self.defer(job, grant, step, decide.refunded(grant.attempts), refund=True)
        elif isinstance(step, Reconcile):
            await self.reconcile(flight, job, settled=True)
        else:
            await self.dial(flight, job)

    # -- steps -----------------------------------------------------------------------------------
    async def finish(self, job: Job, grant: Granted, fin: Finish, attempts: int | None = None
                     ) -> None:
        await self.runtime.finish(job, fin,
                                  attempts=grant.attempts if attempts is None else attempts,
                                  first_seen_ms=grant.first_seen_ms, grant_token=grant.tok)

    async def defer(self, job: Job, grant: Granted, wait: Wait, attempts: int, *,
                    refund: bool = False,
                    created_nothing: bool = False, err: ProviderError | None = None,
                    unsure: bool = False, extra: dict[JobField, Any] | None = None) -> None:
        DEFERRALS.labels(provider_label(job.provider), wait.reason.value).inc()
        fields: dict[JobField, Any] = {JobField.ATTEMPTS: max(attempts, 0),
                                       JobField.UNSURE: "1" if unsure else ""}
        if refund:  # nothing was sent: the call number is free again
            fields[JobField.CALL_NUMBER] = max(grant.call_n - 1, 0)
        fields.update(extra or {})
        if err is not None:
            fields[JobField.LAST_STATUS] = "" if err.status is None else err.status
            fields[JobField.LAST_CODE] = err.code
        await self.store.defer(job.id, to=wait.place, reason=wait.reason.value,
                               until_ms=wait.until_ms,
                               grant_token=grant.tok, fields=fields, refund_rate=refund,
                               refund_number=refund or created_nothing, detail=wait.detail)
        get_logger(job_id=job.id, provider=job.provider, attempt=attempts).info(
            "job.parked" if wait.park else "job.deferred", reason=wait.reason.value,
            delay_s=round(max(0, wait.until_ms - now_ms()) / 1000, 3), detail=wait.detail or None,
            **({"http_status": err.status, "error_code": err.code} if err else {}))

    async def not_replicated(self, grant: Granted) -> None:
        """A grant that must not be dialled (too few replicas acknowledged it): the job waits
        a moment and is granted again; nothing is spent (an unsure job stays unsure)."""
        reason = WaitReason.REPLICAS.value
        DEFERRALS.labels(provider_label(grant.provider), reason).inc()
        fields = {} if grant.unsure else {JobField.ATTEMPTS: decide.refunded(grant.attempts),
                                          JobField.CALL_NUMBER: decide.refunded(grant.call_n)}
        await self.store.defer(grant.id, to=JobState.DELAYED, reason=reason, grant_token=grant.tok,
                               fields=fields,
                               until_ms=now_ms() + round(REPLICA_RETRY_S * 1000),
                               refund_rate=True, refund_number=True)

    async def dial(self, flight: InFlight, job: Job) -> None:
        grant = flight.grant
        if not await self._hook_allows(flight, job) or not await self._on_time(flight, job):
            return
        if info_on():
            get_logger(job_id=job.id, provider=job.provider, attempt=grant.attempts).info(
                "call.dialing", to=job.to, call=grant.call_n, **dial_fields(job, grant))
        flight.sending = True
        SENDING.set(self.runtime.pacer.clock(job.provider, flight.granted_at, flight.log_tok))
        try:
            started = await self.runtime.adapters[job.provider].start_call(job, grant.call_n,
                                                                           grant.caller_id)
        except ProviderFailure as failure:
            flight.answer()
            count(REQUESTS, provider_label(job.provider), "start", status_label(failure.error))
            if failure.error.status is not None:
                self.runtime.ops.reached(job.provider)
            await self.runtime.ops.observe(job.provider, failure.rate)
            await self.on_error(flight, job, failure.error)
            return
        flight.answer()
        count(REQUESTS, provider_label(job.provider), "start", "201")
        self.runtime.ops.reached(job.provider)
        await self.runtime.ops.observe(job.provider, started.rate)
        await self.started(job, grant, started.call_id)

    async def _hook_allows(self, flight: InFlight, job: Job) -> bool:
        """The pre-dial hook, when configured: fail-closed (no answer, no dial)."""
        grant = flight.grant
        pol = self.runtime.policies.for_job(job).pol
        if not pol.predial_url:
            return True
        try:
            answer = await predial.ask(self.runtime.http(), pol.predial_url, pol.predial_timeout_s,
                                       job)
        except predial.HookFailed as exc:
            get_logger(job_id=job.id, provider=job.provider).warning(
                "predial.failed", error=str(exc))
            wait = decide.predial_failed(grant.hook_failures + 1, self.runtime.timing, now_ms(),
                                         self.runtime.rng, str(exc))
            await self.defer(job, grant, wait, decide.refunded(grant.attempts), refund=True,
                             extra={JobField.HOOK_FAILURES: grant.hook_failures + 1})
            return False
        if not answer.allow:
            await self.finish(job, grant, Finish(Outcome.BLOCKED, {
                "reason": BlockReason.PREDIAL.value, "error_message": answer.reason}),
                decide.refunded(grant.attempts))
            return False
        return True

    async def _on_time(self, flight: InFlight, job: Job) -> bool:
        """A grant older than a quarter of the shortest window (a slow hook, a stalled
        process) is moved to now before sending, so the answer, which places the request in
        the provider's log for good, comes before its slot could be reused (see
        margins.py). One older than ``OWNED_FOR_S`` (a late grant reply) or one that had to
        be looked up first is confirmed too: another worker may have taken the job over
        meanwhile, and a takeover waits ``settle`` from the latest grant (which this one then
        is) before looking the call up."""
        grant = flight.grant
        pacer = self.runtime.pacer
        rules = pacer.rules[job.provider]
        limit = min(pacer.late_s(job.provider), OWNED_FOR_S)
        while flight.confirm or time.monotonic() - flight.granted_at > limit:
            asked, tok = time.monotonic(), pacer.token()
            res = await self.store.regrant(rules, job.id, grant.tok, tok, keep=flight.place_spent)
            if res.granted:
                flight.granted_at, flight.log_tok = asked, tok
                flight.confirm = flight.place_spent = False
                continue  # its answer may itself have been late
            if res.reason is Why.LOST:  # another worker owns it now
                get_logger(job_id=job.id).warning("job.grant_lost")
                return False
            if res.reason is Why.HALTED:
                await self.defer(job, grant, Wait(WaitReason.HALTED, now_ms(), park=True),
                                 decide.refunded(grant.attempts), refund=True)
                return False
            await asyncio.sleep(res.wait_ms / 1000)
        return True

    async def started(self, job: Job, grant: Granted, call_id: str, first_s: float | None = None
                      ) -> None:
        """The call exists: track it, first polled ``first_s`` from now (default: the
        schedule's first poll)."""
        if grant.probe:
            await self.runtime.ops.resume(job.provider, "probe succeeded")
        if info_on():
            get_logger(job_id=job.id, provider=job.provider, attempt=grant.attempts).info(
                "call.started", call_id=call_id, call=grant.call_n, **dial_fields(job, grant))
        if not self.runtime.settings.tracking.track_calls:
            await self.finish(job, grant, Finish(Outcome.STARTED, {"call_id": call_id}))
            return
        first = round((self.runtime.timing.poll(0) if first_s is None else first_s) * 1000)
        caller = self.runtime.adapters[job.provider].caller(job, grant.caller_id)
        item: TrackItem = {"id": job.id, "dtok": grant.tok, "call_id": call_id, "first_ms": first,
                           "ttl": self.runtime.timing.call_ttl_s(), "attempts": max(grant.attempts,
                                                                                    1)}
        if caller:
            item["from"] = caller
        conflict = await self.store.track_one(item)
        if conflict is not None:
            get_logger(job_id=job.id, provider=job.provider).error(
                "call.second_call_detected", call_id=conflict.get("call_id"),
                other=conflict.get("other"))

    async def on_error(self, flight: InFlight, job: Job, err: ProviderError) -> None:
        grant = flight.grant
        adapter = self.runtime.adapters[job.provider]
        table: Any = self.runtime.errors(job.provider)
        action = classify(table, err, adapter.job_fields(job), on_create=True)
        get_logger(job_id=job.id, provider=job.provider, attempt=grant.attempts).warning(
            "call.start_failed", http_status=err.status, error_code=err.code,
            error_message=err.message, action=action.value)
        if grant.probe and action is not Action.HALT:
            await self.runtime.ops.resume(job.provider, "probe got past the halt")
        step = decide.on_error(action, err, grant.attempts, job.max_attempts, self.runtime.timing,
                               now_ms(), self.runtime.rng)
        if step.effect is Effect.COOLDOWN and isinstance(step.next, Wait):
            await self.runtime.ops.cooldown(job.provider, err,
                                            max(0.001, (step.next.until_ms - now_ms()) / 1000))
        elif step.effect is Effect.HALT:
            await self.runtime.ops.halt(job.provider, err, probe=grant.probe)
        elif step.effect is Effect.SHRINK:
            await self.runtime.ops.shrink(job.provider)
        elif step.effect is Effect.UNREACHABLE:
            await self.runtime.ops.unreachable(job.provider, err)
        if isinstance(step.next, Finish):
            await self.finish(job, grant, step.next, step.attempts)
        elif isinstance(step.next, Wait):
            await self.defer(job, grant, step.next, step.attempts, err=err,
                             created_nothing=err.created_nothing)
        else:
            await self.reconcile(flight, job, settled=False, err=err)

    # -- a call that may exist ------------------------------------------------------------------
    async def reconcile(self, flight: InFlight, job: Job, *, settled: bool,
                        err: ProviderError | None = None) -> None:
        """Look the call up; adopt it, or dial (again) only when it surely does not exist.

        ``settled``: the lost dial can no longer be on its way (a reclaimed job waited for
        that), so "not found" means "never created" and the job dials at once with the same
        call number. Otherwise (an ambiguous answer just now) "not found" counts as a failed
        attempt and the job retries after backoff.
        """
        grant = flight.grant
        log = get_logger(job_id=job.id, provider=job.provider, attempt=grant.attempts)
        found = await self._look_up(flight, job, settled)
        if found is None:
            log.warning("call.reconcile_unknown")
            wait = Wait(WaitReason.RECONCILE,
                        now_ms() + round(self.runtime.timing.base_delay_s * 1000))
            await self.defer(job, grant, wait, grant.attempts,
                             err=ProviderError(None, "reconcile_failed",
                                               "could not look the call up"), unsure=True)
            return
        if found:
            log.warning("call.reconciled", found=True, call_id=found[0].call_id)
            await self._adopt(job, grant, found[0])
            return
        log.info("call.reconciled", found=False)
        if settled:  # dialling what another worker may have taken over during the look-up
            flight.grant, flight.confirm = _fresh_dial(grant), True
            await self.dial(flight, job)
            return
        failure = err or ProviderError(None, "unknown", "")
        step = decide.retry(failure, grant.attempts, job.max_attempts, self.runtime.timing,
                            now_ms(),
                            self.runtime.rng)
        if isinstance(step, Finish):
            await self.finish(job, grant, step)
        else:
            await self.defer(job, grant, step, grant.attempts, err=failure)

    async def _look_up(self, flight: InFlight, job: Job, settled: bool
                       ) -> list[CallState] | None:
        """This dial's call at the provider (None: the look-up itself failed)."""
        grant = flight.grant
        # from the lost dial itself, however long ago: a search that starts later cannot see
        # the call, and "not found" would dial a second time
        since = grant.dial_ms / 1000 - LOOKUP_SKEW_S if grant.dial_ms else \
            time.time() - self.runtime.settings.tracking.reconcile_window_s
        placed = None
        late_s = self.runtime.pacer.late_s(job.provider)
        if settled and grant.placed and time.monotonic() - flight.granted_at <= late_s:
            # nothing was sent on this grant: its place in the log serves the look-up, which
            # then waits for no new dial (a dial after it takes a place of its own)
            placed, flight.place_spent = (flight.granted_at, flight.log_tok), True
        if flight.lookup is not None:
            return await flight.lookup.find(job.id, grant.call_n, since, placed)
        return await find_call(self.runtime.pacer, self.runtime.adapters[job.provider],
                               self.runtime.timing,
                               job.id, grant.call_n, since, placed=placed)

    async def _adopt(self, job: Job, grant: Granted, call: CallState) -> None:
        """The looked-up call exists: follow it (an ended one gets its result at once)."""
        await self.started(job, grant, call.call_id, first_poll_s(call, self.runtime.timing))
        if call.terminal and self.runtime.settings.tracking.track_calls:
            # it has ended: its result needs no poll (the one due at once is the fallback)
            await Tracker(self.runtime).conclude(job, adopted(grant, call.call_id), call)

    async def crashed(self, flight: InFlight) -> None:
        """An unexpected error: back off; after a few, give the job a result."""
        grant = flight.grant
        job = self.runtime.parse_stored(grant.raw)
        if not isinstance(job, Job):
            return
        crashes = await self.store.bump(job.id, JobField.CRASHES)
        # a job granted unsure may have a call already (it is being looked up): like one that
        # was sending, it waits for a look-up, never a fresh dial
        step = decide.crashed(crashes, flight.sending or grant.unsure, grant.attempts,
                              self.runtime.timing,
                              now_ms())
        if isinstance(step.next, Finish):
            await self.finish(job, grant, step.next, step.attempts)
            return
        await self.defer(job, grant, step.next, step.attempts, err=decide.CRASH_ERROR,
                         unsure=step.unsure, refund=not step.unsure)

    async def hand_back(self, flight: InFlight) -> None:
        """Shutdown: a dial that never started goes back to its ready list, its attempt and
        call number given back (one that was sending is left to be reconciled)."""
        grant = flight.grant
        # an unsure job's grant counted no attempt and no call number: nothing to give back
        fields = {} if grant.unsure else {JobField.ATTEMPTS: decide.refunded(grant.attempts),
                                          JobField.CALL_NUMBER: decide.refunded(grant.call_n)}
        await self.store.defer(grant.id, to=JobState.QUEUED, reason="", until_ms=0,
                               grant_token=grant.tok,
                               refund_rate=True, refund_number=True, fields=fields)


def adopted(grant: Granted, call_id: str) -> JobView:
    """What tracking holds for a job that has just adopted ``call_id`` (see lua/track.lua)."""
    calls = (*grant.calls, CallRecord(call_id, now_ms()))
    return JobView(grant.id, {"calls": calls_to(calls), "call_id": call_id,
                              "attempts": str(max(grant.attempts, 1)), "rd": str(grant.redials),
                              "first_seen": str(grant.first_seen_ms)})


def first_poll_s(call: CallState, timing: Timing) -> float:
    """An adopted call is polled as if it had been followed since it was created: at once
    when it has ended (its result waits for no schedule), else at the first poll after its
    creation."""
    if call.terminal:
        return 0.0
    if call.created_at is None:
        return timing.poll(0)
    return min(timing.poll(0), max(0.0, call.created_at + timing.poll(0) - time.time()))


def _fresh_dial(grant: Granted) -> Granted:
    """The looked-up call was never created: dial it now as an attempt of its own."""
    from dataclasses import replace
    return replace(grant, attempts=grant.attempts + 1, unsure=False)
