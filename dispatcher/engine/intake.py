"""Intake: stream entries become jobs. Each payload is parsed on its own (one bad entry never
holds up the others), the decision core says where the job goes (ready, waiting, parked, or
straight to a result), and one INGEST call places a whole batch — taking the first grants for
ready jobs in the same round trip when this process has room to dial them.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager

from dispatcher.core import decide
from dispatcher.core.decide import Finish, Ready, Wait
from dispatcher.core.jobs import InvalidJob, Job
from dispatcher.core.model import DueReason, Outcome, Priority
from dispatcher.core.numbers import dnc_key
from dispatcher.engine.context import Runtime, now_ms
from dispatcher.engine.finisher import Finisher
from dispatcher.engine.results import build, item
from dispatcher.logs import get_logger
from dispatcher.store.ports import IntakeStore
from dispatcher.store.protocol import GrantArgs, Ingested, Place
from dispatcher.store.types import GrantReply, Placement, ResultItem

Entry = tuple[str, bytes | None]
YIELD_EVERY = 25


def _invalid(job: InvalidJob, entry_id: str) -> Finish:
    """An invalid result names the stream entry, so a producer can match it to what it sent."""
    return Finish(Outcome.INVALID, {"error_message": job.error, "entry_id": entry_id})


class Intake:
    def __init__(self, runtime: Runtime, finisher: Finisher, *, free_slots: Callable[[], int],
                 promise: Callable[[int], AbstractContextManager[None]],
                 on_grants: Callable[[list[GrantReply], float], None]):
        self.runtime = runtime
        self.store: IntakeStore = runtime.store
        self.finisher = finisher
        self.free_slots = free_slots
        self.promise = promise
        self.on_grants = on_grants

    async def process(self, entries: Sequence[Entry]) -> None:
        now = now_ms()
        placements: list[Placement] = []
        unreadable: list[ResultItem] = []
        decided: dict[str, tuple[Job | InvalidJob, Finish]] = {}
        ready = collections.Counter[str]()
        for position, (eid, raw) in enumerate(entries, 1):
            if position % YIELD_EVERY == 0:  # parsing must not hold up dials already granted
                await asyncio.sleep(0)
            parsed = self.runtime.parse(raw)
            if isinstance(parsed, InvalidJob) and parsed.job_id is None:
                res = build(parsed, _invalid(parsed, eid), attempts=0, first_seen_ms=None,
                            now_ms=now)
                unreadable.append(item(res, entry_id=eid))
                continue
            placement, known = self._place(eid, raw, parsed, now)
            placements.append(placement)
            if known is not None:
                decided[placement.job_id] = (parsed, known)
            if placement.place is Place.QUEUED:
                ready[placement.provider] += 1
        if unreadable:
            await self.store.finish(unreadable, self.runtime.ttl)
        if not placements:
            return
        asked = time.monotonic()
        wanted, promised = self._grants(ready)
        with self.promise(promised):
            done, grants = await self.store.ingest(placements, wanted)
        if grants:
            self.on_grants(grants, asked)
        await self._after(done, decided, placements)

    def _grants(self, ready: collections.Counter[str]) -> tuple[list[GrantArgs], int]:
        """The first grants to take with the batch, and how many that asks for at most."""
        out: list[GrantArgs] = []
        free_slots = total = self.free_slots()
        for prov, ready_count in ready.items():
            if free_slots <= 0:
                break
            asked = min(ready_count, free_slots)
            out.append(self.runtime.pacer.grant_args(prov, asked))
            free_slots -= asked
        return out, total - free_slots

    def _place(self, eid: str, raw: bytes | None, parsed: Job | InvalidJob, now: int
               ) -> tuple[Placement, Finish | None]:
        text = (raw or b"").decode("utf-8", "replace")
        if isinstance(parsed, InvalidJob):
            assert parsed.job_id is not None
            # kept while its id lives: an oversized payload only as far as it is still
            # oversized, which is all a second reading (after a crash) needs
            text = text[:self.runtime.rules.max_payload_bytes + 1]
            return Placement(entry_id=eid, job_id=parsed.job_id, raw=text,
                             provider=parsed.provider, priority=Priority.NORMAL,
                             campaign=parsed.campaign or "", to="", dnc_key="", expires_ms=0,
                             place=Place.FINISH, fin=DueReason.INVALID), _invalid(parsed, eid)
        job = parsed
        adapter = self.runtime.adapters.get(job.provider)
        jp = self.runtime.policies.for_job(job)
        step = decide.intake(job, jp, now,
                             provider_known=adapter is not None,
                             problem=adapter.check(job) if adapter else None,
                             max_defer_ms=round(self.runtime.timing.max_defer_s * 1000))
        due_fin: str = DueReason.INTAKE
        place, reason, due, deadline, detail = Place.FINISH, "", 0, 0, ""
        if isinstance(step, Ready):
            self.runtime.remember(text, job)
            place, due_fin, deadline = Place.QUEUED, "", step.deadline_ms
        elif isinstance(step, Wait):
            place, due_fin, reason, due = Place(step.place), "", step.reason.value, step.until_ms
            detail = step.detail
        placement = Placement(entry_id=eid, job_id=job.id, raw=text, provider=job.provider,
                      priority=job.priority, campaign=job.campaign or "", to=job.to,
                      dnc_key=dnc_key(job.to, self.runtime.policies.dnc_hashed),
                      expires_ms=round(job.expires_at * 1000) if job.expires_at else 0,
                      place=place, reason=reason, due_ms=due, deadline_ms=deadline, fin=due_fin,
                      detail=detail, subject=job.subject or "",
                      subject_caps=jp.own_subject_caps(job, now),
                      region=self.runtime.policies.registry_region(job))
        return placement, step if isinstance(step, Finish) else None

    async def _after(self, done: list[tuple[str, Ingested, str]],
                     decided: dict[str, tuple[Job | InvalidJob, Finish]],
                     placements: list[Placement]) -> None:
        entry_of = {p.job_id: p.entry_id for p in placements}
        for job_id, verdict, why in done:
            if verdict is Ingested.DUPLICATE:
                get_logger(job_id=job_id).info("job.duplicate", entry_id=entry_of.get(job_id))
            elif verdict is Ingested.FINISH:
                await self._finish_now(job_id, why, decided.get(job_id))

    async def _finish_now(self, job_id: str, why: str,
                          known: tuple[Job | InvalidJob, Finish] | None) -> None:
        if known is None or why == DueReason.CANCELLED:
            await self.finisher.run_due(ids=[job_id])
            return
        job, fin = known
        await self.runtime.finish(job, fin, attempts=0, first_seen_ms=now_ms())
