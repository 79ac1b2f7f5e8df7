"""itellicoAI: ``X-API-Key``, a flat error envelope, and ``external_id`` — an idempotency key
per call: ``<job id>`` for a job's first call, ``<job id>~<n>`` for its n-th (``~`` never
appears in a job id, so the two never collide).
"""

from __future__ import annotations

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
from dispatcher.providers.itellico.config import ItellicoConfig

TERMINAL = frozenset({"completed", "failed", "transferred"})


def external_id(job_id: str, call_n: int) -> str:
    return job_id if call_n <= 1 else f"{job_id}~{call_n}"


def split_external_id(value: str) -> tuple[str, int]:
    job_id, sep, call_n = value.rpartition("~")
    if sep and call_n.isdigit():
        return job_id, int(call_n)
    return value, 1


def caller(job: Job, cfg: ItellicoConfig, chosen: str | None) -> str | None:
    """The job's own ``from``, else the pool's choice for this call, else the default."""
    return job.from_ or chosen or cfg.from_number


def build_start(job: Job, cfg: ItellicoConfig, call_n: int,
                chosen: str | None = None) -> dict[str, Any]:
    return {"type": "phone", "agent_id": job.agent_id or cfg.agent_id,
            "from_number": caller(job, cfg, chosen), "to_number": job.to,
            "external_id": external_id(job.id, call_n)}


def normalise(data: dict[str, Any]) -> CallState:
    status = str(data.get("status") or "unknown")
    if status == "active":
        status = "in_progress"
    answer = str(data.get("answer_status") or "unknown")
    terminal = status in TERMINAL
    if terminal and answer == "waiting":
        answer = "unknown"
    reason = data.get("disconnection_reason") or data.get("end_reason") or data.get("ended_reason")
    ext = data.get("external_id")
    job_id, call_n = split_external_id(str(ext)) if ext is not None else (None, 1)
    return CallState(
        call_id=str(data.get("id") or data.get("call_id") or ""), status=status, terminal=terminal,
        answer_status=answer, disconnection_reason=None if reason is None else str(reason),
        duration_seconds=as_float(data.get("duration_seconds")),
        billed_seconds=as_float(data.get(BILLED_FIELD)), correlation=job_id,
        created_at=parse_time(data.get("created") or data.get("created_at")), call_n=call_n)


class Itellico:
    kind = "itellico"

    def __init__(self, name: str, cfg: ItellicoConfig, api_key: str, concurrency: int):
        self.name = name
        self.cfg = cfg
        self.prefix = f"/v1/accounts/{cfg.account_id}/calls"
        self.http = Transport(cfg.base_url, {"X-API-Key": api_key}, cfg.request_timeout_s,
                              concurrency)

    def check(self, job: Job) -> str | None:
        if job.workflow_id:
            return "workflow_id: not supported by itellicoAI providers (use agent_id)"
        if not (job.agent_id or self.cfg.agent_id):
            return f"agent_id: required, provider '{self.name}' has no agent_id configured"
        if not (job.from_ or self.cfg.from_number or self.cfg.caller_ids):
            return f"from: required, provider '{self.name}' has no from_number configured"
        return None

    def caller(self, job: Job, chosen: str | None) -> str | None:
        return caller(job, self.cfg, chosen)

    def job_fields(self, job: Job) -> frozenset[str]:
        names = {"agent_id": job.agent_id, "from": job.from_}
        return frozenset(k for k, v in names.items() if v)

    async def start_call(self, job: Job, call_n: int, chosen: str | None = None
                         ) -> StartResult:
        return started(await self.http.request("POST", self.prefix,
                                               body=build_start(job, self.cfg, call_n, chosen)))

    async def get_call(self, call_id: str) -> CallState:
        return normalise(check(await self.http.request("GET", f"{self.prefix}/{call_id}")))

    async def find_calls(self, job_id: str, call_n: int, since: float, cursor: str | None
                         ) -> tuple[list[CallState], str | None]:
        """The call with this call's ``external_id`` (the provider filters on it)."""
        ext = external_id(job_id, call_n)
        offset = int(cursor or 0)
        body = check(await self.http.request(
            "GET", self.prefix, params={"external_id": ext, "limit": "50",
                                        "offset": str(offset)}))
        items: list[Any] = body["items"] if isinstance(body.get("items"), list) else []
        calls = [normalise(x) for x in items
                 if isinstance(x, dict) and str(x.get("external_id")) == ext]
        count = body.get("count")
        more = isinstance(count, int) and offset + len(items) < count and items
        return calls, str(offset + len(items)) if more else None

    def poll_interval(self, visits: int, timing: Timing) -> float:
        """With webhooks on, polls only cover lost deliveries."""
        if self.cfg.webhooks_on:
            return timing.webhook_poll_s
        return timing.poll(visits)

    async def close(self) -> None:
        await self.http.close()
