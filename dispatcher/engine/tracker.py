"""Following started calls to their end: polls (paced like any request) and webhook ends.

A tracked job sits in the ``tracking`` set scored by its next visit; a worker leases due
entries (VISIT), which also names them in its ``visiting`` set: when it dies, the worker that
reaps it makes them due at once, not when their lease ends.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from dispatcher.core import decide
from dispatcher.core.budgets import budget_day, call_cost_micro, worst_micro
from dispatcher.core.classify import Action, ProviderError, classify
from dispatcher.core.decide import Finish, Wait
from dispatcher.core.jobs import Job
from dispatcher.core.model import CallRecord, CallState, JobState
from dispatcher.engine.context import Runtime, now_ms
from dispatcher.logs import get_logger
from dispatcher.metrics import (
    CALL_ERRORS,
    DEFERRALS,
    REQUESTS,
    TRACKING_GAVE_UP,
    count,
    provider_label,
    status_label,
)
from dispatcher.providers import dialect
from dispatcher.providers.base import ProviderFailure
from dispatcher.store.ports import TrackerStore
from dispatcher.store.protocol import JobField, RevisitItem
from dispatcher.store.types import JobView, calls_to


class Tracker:
    def __init__(self, runtime: Runtime):
        self.runtime = runtime
        self.store: TrackerStore = runtime.store

    async def due(self, limit: int) -> list[JobView]:
        lease = round(self.runtime.settings.tracking.visit_lease_s * 1000)
        return await self.store.visit(list(self.runtime.adapters), lease, limit,
                                      self.runtime.consumer)

    async def visit(self, view: JobView) -> None:
        if view.get(JobField.STATE) != JobState.TRACKING or not view.get(JobField.RAW):
            return
        job = self.runtime.parse_stored(view.get(JobField.RAW))
        if not isinstance(job, Job) or job.provider not in self.runtime.adapters:
            get_logger(job_id=view.id, provider=view.get(JobField.PROVIDER)).error(
                "call.untrackable", reason="provider not configured",
                hint="configure it again; its live calls wait in tracking")
            await self.store.revisit([{"id": view.id, "prov": view.get(JobField.PROVIDER),
                                       "delay": 60_000}])
            return
        hook = {k[5:]: x for k, x in view.fields.items() if k.startswith("hook.")}
        if hook:
            spec = dialect(self.runtime.settings.providers[job.provider].kind).webhooks
            if spec is not None:
                await self.conclude(job, view, spec.normalise(hook))
                return
        tracked_s = time.time() - view.int(JobField.TRACK_MS) / 1000
        if tracked_s > self.runtime.settings.tracking.max_track_s:
            get_logger(job_id=view.id, provider=job.provider,
                       call_id=view.get(JobField.CALL_ID)).error(
                "call.tracking_gave_up", tracked_s=round(tracked_s))
            TRACKING_GAVE_UP.labels(provider_label(job.provider)).inc()
            await self.runtime.finish(job, decide.gave_up(view.get(JobField.CALL_ID), view.calls),
                                      attempts=view.int(JobField.ATTEMPTS, 1),
                                      first_seen_ms=view.int(JobField.FIRST_SEEN) or None)
            return
        await self.poll(job, view)

    async def poll(self, job: Job, view: JobView) -> None:
        adapter = self.runtime.adapters[job.provider]
        adm = await self.runtime.pacer.request(job.provider, deadline=time.time() + 60)
        if not adm.granted:
            await self.store.revisit([{"id": view.id, "prov": job.provider,
                                       "delay": max(adm.wait_ms, 1000)}])
            return
        try:
            call = await adapter.get_call(view.get(JobField.CALL_ID))
            count(REQUESTS, provider_label(job.provider), "poll", "200")
            self.runtime.ops.reached(job.provider)
        except ProviderFailure as failure:
            count(REQUESTS, provider_label(job.provider), "poll", status_label(failure.error))
            await self.poll_failed(job, view, failure.error)
            return
        if call.terminal:
            await self.conclude(job, view, call)
            return
        delay = adapter.poll_interval(view.int(JobField.VISITS), self.runtime.timing)
        await self.store.revisit([self._next(job, view, delay)])

    def _next(self, job: Job, view: JobView, delay_s: float) -> RevisitItem:
        return {"id": view.id, "delay": round(delay_s * 1000), "prov": job.provider,
                "camp": job.campaign or "",
                "lease": round(self.runtime.settings.tracking.slot_lease_s * 1000)}

    async def poll_failed(self, job: Job, view: JobView, err: ProviderError) -> None:
        table: Any = self.runtime.errors(job.provider)
        action = classify(table, err, on_create=False)
        get_logger(job_id=job.id, provider=job.provider).warning(
            "call.poll_failed", http_status=err.status, error_code=err.code, action=action.value)
        delay = self.runtime.adapters[job.provider].poll_interval(view.int(JobField.VISITS),
                                                                  self.runtime.timing)
        if action is Action.RATE_LIMITED:
            pause = self.runtime.timing.cooldown(err.retry_after_s, 1, self.runtime.rng)
            await self.runtime.ops.cooldown(job.provider, err, pause)
            delay = max(delay, pause)
        elif action is Action.HALT:
            await self.runtime.ops.halt(job.provider, err)
        elif action is Action.UNREACHABLE:
            await self.runtime.ops.unreachable(job.provider, err)
        await self.store.revisit([self._next(job, view, delay)])

    async def conclude(self, job: Job, view: JobView, call: CallState) -> None:
        """A terminal call: a result, a redial, or back to the queue."""
        calls = _with_end(view.calls, call)
        await self._caller_health(job, call, calls)
        await self._bill(job, call)
        pol = self.runtime.policies.for_job(job)
        end = decide.after_call(job, call, calls, view.int(JobField.ATTEMPTS, 1),
                                view.int(JobField.REDIALS), pol, self.runtime.timing, now_ms(),
                                self.runtime.rng)
        if end.system_error:
            CALL_ERRORS.labels(provider_label(job.provider),
                               call.disconnection_reason or "none").inc()
            get_logger(job_id=job.id, provider=job.provider, call_id=call.call_id).error(
                "call.system_error", disconnection_reason=call.disconnection_reason)
        if end.shrink:
            await self.runtime.ops.shrink(job.provider)
        if isinstance(end.next, Finish):
            await self.runtime.finish(job, end.next, attempts=end.attempts,
                                      first_seen_ms=view.int(JobField.FIRST_SEEN) or None)
            return
        await self._requeue(job, end.next, end.attempts, calls, end.redials)

    async def _caller_health(self, job: Job, call: CallState,
                             calls: tuple[CallRecord, ...]) -> None:
        """A pool caller ID's answer rate, and its flag logged once when it changes."""
        pool = self.runtime.settings.providers[job.provider].caller_ids
        caller = next((c.from_ for c in calls if c.call_id == call.call_id), None)
        if pool is None or caller is None or caller not in pool.keys():
            return
        res = await self.store.caller_id_ended(
            job.provider, caller, call.call_id, answered=call.answer_status == "human",
            keep=pool.flag_min_calls, rate=pool.flag_answer_rate, rest=pool.rest_flagged)
        if res.changed:
            log = get_logger(provider=job.provider)
            fields = {"from": caller, "answered": res.answered, "calls": res.recent,
                      "threshold": pool.flag_answer_rate}
            if res.flagged:
                log.warning("caller_id.flagged", rested=res.rested, **fields)
            else:
                log.info("caller_id.unflagged", **fields)

    async def _bill(self, job: Job, call: CallState) -> None:
        """A campaign with a budget: the call's billed cost (as the provider reported it, when
        it did) replaces its worst case."""
        cfg = self.runtime.settings.providers[job.provider]
        camp = self.runtime.settings.campaigns.get(job.campaign or "")
        if camp is None or camp.budget is None or cfg.price_per_minute is None:
            return
        worst = worst_micro(cfg.price_per_minute, cfg.max_call_s, cfg.billing_increment_s)
        cost = call_cost_micro(call.duration_seconds, call.billed_seconds,
                               cfg.price_per_minute, cfg.billing_increment_s)
        day, _ = budget_day(now_ms(), camp.budget_timezone)
        await self.store.bill(job.campaign or "", day, job.id, worst, call.call_id, cost)

    async def _requeue(self, job: Job, wait: Wait, attempts: int, calls: tuple[CallRecord, ...],
                       redials: int) -> None:
        DEFERRALS.labels(provider_label(job.provider), wait.reason.value).inc()
        deadline = now_ms() + round(self.runtime.timing.max_defer_s * 1000)
        await self.store.defer(job.id, to=JobState.DELAYED, reason=wait.reason.value,
                               until_ms=wait.until_ms,
                               fields={JobField.ATTEMPTS: max(attempts, 0),
                                       JobField.CALLS: calls_to(calls),
                                       JobField.REDIALS: redials,
                                       JobField.READY_SINCE: now_ms()},
                               deadline_ms=deadline, detail=wait.detail)
        get_logger(job_id=job.id, provider=job.provider, attempt=attempts).info(
            "job.deferred", reason=wait.reason.value, detail=wait.detail or None,
            delay_s=round(max(0, wait.until_ms - now_ms()) / 1000, 3))


def _with_end(calls: tuple[CallRecord, ...], call: CallState) -> tuple[CallRecord, ...]:
    """The job's calls with this call's end filled in (added when it is missing)."""
    ended = decide.record(call, None)
    out = []
    seen = False
    for record in calls:
        if record.call_id == call.call_id:
            out.append(replace(ended, started_ms=record.started_ms, from_=record.from_))
            seen = True
        else:
            out.append(record)
    if not seen:
        out.append(ended)
    return tuple(out)
