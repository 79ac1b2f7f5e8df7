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
    def __init__(self, runtime: Runtime):
        self.runtime = runtime

    async def run_due(self, limit: int = 200, ids: list[str] | None = None) -> int:
        """Write the results that are due (or those of ``ids``, queued a moment ago)."""
        if ids is not None and not ids:
            return 0
        views = await self.runtime.store.claim_finishing(LEASE_MS, limit, ids)
        for view in views:
            await self.finish(view)
        return len(views)

    async def finish(self, view: JobView) -> None:
        job = self.runtime.parse(view.get(JobField.RAW))
        fin = self._decide(job, view)
        await self.runtime.finish(job, fin, attempts=view.int(JobField.ATTEMPTS),
                                  first_seen_ms=view.int(JobField.FIRST_SEEN) or None)

    def _decide(self, job: Job | InvalidJob, view: JobView) -> Finish:
        why = view.get(JobField.DUE_WHY)
        if isinstance(job, InvalidJob):
            return Finish(Outcome.INVALID, {"error_message": job.error,
                                            "entry_id": view.get(JobField.ENTRY) or None})
        if why == DueReason.INTAKE:  # decided when the job was read: decide the same way again
            step = self._intake(job)
            if isinstance(step, Finish):
                return step
            get_logger(job_id=job.id).warning("job.intake_changed", fin=why)
        status = view.get(JobField.LAST_STATUS)
        return decide.due_result(why, view.calls, view.get(JobField.WAIT_REASON),
                                 int(status) if status.isdigit() else None,
                                 view.get(JobField.LAST_CODE) or None)

    def _intake(self, job: Job) -> decide.Ready | decide.Wait | Finish:
        adapter = self.runtime.adapters.get(job.provider)
        return decide.intake(job, self.runtime.policies.for_job(job), now_ms(),
                             provider_known=adapter is not None,
                             problem=adapter.check(job) if adapter else None,
                             max_defer_ms=round(self.runtime.timing.max_defer_s * 1000))
