"""Building the one result a job gets, from the decision that ended it."""

from __future__ import annotations

from typing import Any

from dispatcher.core.decide import Finish
from dispatcher.core.jobs import InvalidJob, Job
from dispatcher.core.model import CallRecord, Outcome, Result
from dispatcher.store.types import ResultItem


def build(job: Job | InvalidJob, fin: Finish, *, attempts: int, first_seen_ms: int | None,
          now_ms: int) -> Result:
    fields: dict[str, Any] = dict(fin.fields)
    calls = fields.pop("calls", None)
    job_id = job.id if isinstance(job, Job) else job.job_id
    campaign = job.campaign
    return Result(outcome=fin.outcome, job_id=job_id, attempts=attempts,
                  provider=job.provider, metadata=job.metadata, enqueued_ms=first_seen_ms,
                  finished_ms=now_ms, campaign=campaign,
                  calls=tuple(calls) if calls is not None else None, **fields)


def item(res: Result, *, entry_id: str | None = None, grant_token: str | None = None,
         wire: dict[str, Any] | None = None) -> ResultItem:
    """``wire``: the result's JSON form, when the caller has it already."""
    return ResultItem(job_id=res.job_id, entry_id=entry_id,
                      result=res.to_json() if wire is None else wire,
                      outcome=res.outcome.value, answer=res.answer_status or "",
                      grant_token=grant_token)


def last_call_fields(calls: tuple[CallRecord, ...]) -> dict[str, Any]:
    last = calls[-1]
    return {"call_id": last.call_id, "call_status": last.call_status,
            "answer_status": last.answer_status,
            "disconnection_reason": last.disconnection_reason,
            "duration_seconds": last.duration_seconds}


__all__ = ["Outcome", "build", "item", "last_call_fields"]
