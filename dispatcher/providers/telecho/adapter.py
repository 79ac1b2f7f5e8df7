"""TelEcho: Bearer key, ``{"error": {...}}`` envelope, no idempotency key, calls followed by
polling. The job id and the call's number within the job ride in the call's metadata, which
is how a lost create answer is found again.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from dispatcher.core.jobs import Job
from dispatcher.core.model import CallState
from dispatcher.core.timing import Timing
from dispatcher.providers.base import (
    BILLED_FIELD,
    StartResult,
    Transport,
    as_float,
    check,
    parse_time,
    started,
)
from dispatcher.providers.telecho.config import TelEchoConfig

TERMINAL = frozenset({"completed", "failed", "busy", "no_answer", "canceled", "cancelled"})
JOB_KEY = "dispatcher_job_id"
CALL_KEY = "dispatcher_call"


def caller(job: Job, cfg: TelEchoConfig, chosen: str | None) -> str | None:
    """The job's own ``from``, else the pool's choice for this call, else the default."""
    return job.from_ or chosen or cfg.phone_number_id


def build_start(job: Job, cfg: TelEchoConfig, call_n: int,
                chosen: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "phone_number_id": caller(job, cfg, chosen),
        "destination_number": job.to,
        "metadata": {**job.metadata, JOB_KEY: job.id, CALL_KEY: call_n},
    }
    if job.agent_id or (cfg.agent_id and not job.workflow_id):
        body["agent_id"] = job.agent_id or cfg.agent_id
    if job.workflow_id:
        body["workflow_id"] = job.workflow_id
    return body


def _answer(status: str, answered: Any) -> str:
    if answered in ("human", "machine"):
        return str(answered)
    return {"busy": "user_busy", "no_answer": "user_unavailable"}.get(status, "unknown")


def normalise(data: dict[str, Any]) -> CallState:
    status = str(data.get("status") or "unknown")
    reason = data.get("disconnection_reason") or data.get("end_reason") or data.get("ended_reason")
    meta: dict[str, Any] = data["metadata"] if isinstance(data.get("metadata"), dict) else {}
    call_n = meta.get(CALL_KEY)
    return CallState(
        call_id=str(data.get("call_id") or data.get("id") or ""), status=status,
        terminal=status in TERMINAL, answer_status=_answer(status, data.get("answered_by")),
        disconnection_reason=None if reason is None else str(reason),
        duration_seconds=as_float(data.get("duration_seconds")),
        billed_seconds=as_float(data.get(BILLED_FIELD)),
        correlation=None if meta.get(JOB_KEY) is None else str(meta[JOB_KEY]),
        created_at=parse_time(data.get("created_at")),
        call_n=call_n if isinstance(call_n, int) and not isinstance(call_n, bool) else 1)


class TelEcho:
    kind = "telecho"

    def __init__(self, name: str, cfg: TelEchoConfig, api_key: str, concurrency: int):
        self.name = name
        self.cfg = cfg
        self.http = Transport(cfg.base_url, {"Authorization": f"Bearer {api_key}"},
                              cfg.request_timeout_s, concurrency)

    def check(self, job: Job) -> str | None:
        if not (job.from_ or self.cfg.phone_number_id or self.cfg.caller_ids):
            return f"from: required, provider '{self.name}' has no phone_number_id configured"
        return None

    def caller(self, job: Job, chosen: str | None) -> str | None:
        return caller(job, self.cfg, chosen)

    def job_fields(self, job: Job) -> frozenset[str]:
        names = {"agent_id": job.agent_id, "workflow_id": job.workflow_id, "from": job.from_}
        return frozenset(k for k, v in names.items() if v)

    async def start_call(self, job: Job, call_n: int, chosen: str | None = None
                         ) -> StartResult:
        return started(await self.http.request("POST", "/calls/outbound",
                                               body=build_start(job, self.cfg, call_n, chosen)))

    async def get_call(self, call_id: str) -> CallState:
        return normalise(check(await self.http.request("GET", f"/calls/{call_id}")))

    async def find_calls(self, job_id: str, call_n: int, since: float, cursor: str | None
                         ) -> tuple[list[CallState], str | None]:
        """One page of calls created since ``since`` that are this job's call ``call_n``, and
        the next page's cursor (TelEcho cannot filter on metadata: every page must be read)."""
        calls, nxt = await self.list_calls(since, cursor)
        return [c for c in calls if c.correlation == job_id and c.call_n == call_n], nxt

    async def list_calls(self, since: float, cursor: str | None
                         ) -> tuple[list[CallState], str | None]:
        """One page of every call created since ``since``, and the next page's cursor."""
        after = datetime.fromtimestamp(since, UTC).isoformat().replace("+00:00", "Z")
        params = {"limit": "100", "created_after": after}
        if cursor:
            params["cursor"] = cursor
        body = check(await self.http.request("GET", "/calls", params=params))
        items: list[Any] = body["data"] if isinstance(body.get("data"), list) else []
        nxt = body.get("next_cursor")
        return [normalise(x) for x in items if isinstance(x, dict)], str(nxt) if nxt else None

    def poll_interval(self, visits: int, timing: Timing) -> float:
        return timing.poll(visits)  # no webhooks: polling is the only way to learn the end

    async def close(self) -> None:
        await self.http.close()
