"""Results that are due without a dial: jobs cancelled, blocked, expired or past their max
age while waiting. A script queues such a job (finish queue, leased like tracking) and a
worker writes its result, so nothing is lost if that worker dies first.
"""

from __future__ import annotations

from dispatcher.core import decide
from dispatcher.core.decide import Finish
from dispatcher.core.jobs import InvalidJob, Job
from dispatcher.core.model import DueReason, Outcome
from dispatcher.engine.context import Runtime, now_ms
from dispatcher.logs import get_logger
from dispatcher.store.protocol import JobField
from dispatcher.store.types import JobView

LEASE_MS = 30_000


class Finisher:
    def __init__(self, rt: Runtime):
        self.rt = rt

    async def run_due(self, limit: int = 200, ids: list[str] | None = None) -> int:
        """Write the results that are due (or those of ``ids``, queued a moment ago)."""
        if ids is not None and not ids:
            return 0
        views = await self.rt.store.claim_finishing(LEASE_MS, limit, ids)
        for v in views:
            await self.finish(v)
        return len(views)

    async def finish(self, v: JobView) -> None:
        job = self.rt.parse(v.get(JobField.RAW))
        fin = self._decide(job, v)
        await self.rt.finish(job, fin, attempts=v.int(JobField.ATTEMPTS),
                             first_seen_ms=v.int(JobField.FIRST_SEEN) or None)

    def _decide(self, job: Job | InvalidJob, v: JobView) -> Finish:
        why = v.get(JobField.DUE_WHY)
        if isinstance(job, InvalidJob):
            return Finish(Outcome.INVALID, {"error_message": job.error,
                                            "entry_id": v.get(JobField.ENTRY) or None})
        if why == DueReason.INTAKE:  # decided when the job was read: decide the same way again
            step = self._intake(job)
            if isinstance(step, Finish):
                return step
            get_logger(job_id=job.id).warning("job.intake_changed", fin=why)
        status = v.get(JobField.LAST_STATUS)
        return decide.due_result(why, v.calls, v.get(JobField.WAIT_REASON),
                                 int(status) if status.isdigit() else None,
                                 v.get(JobField.LAST_CODE) or None)

    def _intake(self, job: Job) -> decide.Ready | decide.Wait | Finish:
        adapter = self.rt.adapters.get(job.provider)
        return decide.intake(job, self.rt.policies.for_job(job), now_ms(),
                             provider_known=adapter is not None,
                             problem=adapter.check(job) if adapter else None,
                             max_defer_ms=round(self.rt.timing.max_defer_s * 1000))
