"""itellicoAI dialect (PROVIDERS §2): ``X-API-Key``, flat error envelope, ``external_id``."""

from __future__ import annotations

from typing import Any

from dispatcher.config import ProviderConfig
from dispatcher.jobs import Job
from dispatcher.providers.base import (
    CallState,
    StartResult,
    Transport,
    as_float,
    check,
    parse_time,
    started,
)

TERMINAL = {"completed", "failed", "transferred"}


def build_start(job: Job, cfg: ProviderConfig) -> dict[str, Any]:
    return {
        "type": "phone",
        "agent_id": job.agent_id or cfg.agent_id,
        "from_number": job.from_ or cfg.from_number,
        "to_number": job.to,
        "external_id": job.id,
    }


def normalise(d: dict[str, Any]) -> CallState:
    status = str(d.get("status") or "unknown")
    if status == "active":
        status = "in_progress"
    answer = str(d.get("answer_status") or "unknown")
    terminal = status in TERMINAL
    if terminal and answer == "waiting":
        answer = "unknown"
    reason = d.get("disconnection_reason") or d.get("end_reason") or d.get("ended_reason")
    return CallState(
        call_id=str(d.get("id") or d.get("call_id") or ""), status=status, terminal=terminal,
        answer_status=answer, disconnection_reason=None if reason is None else str(reason),
        duration_seconds=as_float(d.get("duration_seconds")),
        correlation=None if d.get("external_id") is None else str(d["external_id"]),
        created_at=parse_time(d.get("created") or d.get("created_at")))


class Itellico:
    kind = "itellico"

    def __init__(self, name: str, cfg: ProviderConfig, api_key: str, concurrency: int):
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
        if not (job.from_ or self.cfg.from_number):
            return f"from: required, provider '{self.name}' has no from_number configured"
        return None

    def job_fields(self, job: Job) -> frozenset[str]:
        names = {"agent_id": job.agent_id, "from": job.from_}
        return frozenset(k for k, v in names.items() if v)

    async def start_call(self, job: Job) -> StartResult:
        return started(await self.http.request("POST", self.prefix,
                                               body=build_start(job, self.cfg)))

    async def get_call(self, call_id: str) -> CallState:
        return normalise(check(await self.http.request("GET", f"{self.prefix}/{call_id}")))

    async def find_calls(self, job_id: str, since: float, cursor: str | None
                         ) -> tuple[list[CallState], str | None]:
        """Calls with this ``external_id`` (filtered by the provider), newest first."""
        offset = int(cursor or 0)
        body = check(await self.http.request(
            "GET", self.prefix, params={"external_id": job_id, "limit": "50",
                                        "offset": str(offset)}))
        items: list[Any] = body["items"] if isinstance(body.get("items"), list) else []
        calls = [normalise(x) for x in items if isinstance(x, dict)
                 and str(x.get("external_id")) == job_id]
        count = body.get("count")
        more = isinstance(count, int) and offset + len(items) < count and items
        return calls, str(offset + len(items)) if more else None


    async def close(self) -> None:
        await self.http.close()
