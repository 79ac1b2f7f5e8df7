"""The result contract (DESIGN §3.2), built by pure functions: one shape per outcome."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from dispatcher.providers.base import CallState

OUTCOMES = ("ended", "started", "rejected", "exhausted", "expired", "invalid", "cancelled")


def iso(ms: int | float | None) -> str | None:
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


def result(outcome: str, *, job_id: str | None, attempts: int, provider: str,
           metadata: dict[str, Any], enqueued_ms: int | None, finished_ms: int,
           **extra: Any) -> dict[str, Any]:
    assert outcome in OUTCOMES, outcome
    return {"job_id": job_id, "outcome": outcome, "attempts": attempts, "provider": provider,
            "metadata": metadata, "enqueued_at": iso(enqueued_ms),
            "finished_at": iso(finished_ms), **extra}


def ended_fields(call: CallState) -> dict[str, Any]:
    return {"call_id": call.call_id, "call_status": call.status,
            "answer_status": call.answer_status,
            "disconnection_reason": call.disconnection_reason,
            "duration_seconds": call.duration_seconds}


def error_fields(status: int | None, code: str, message: str = "") -> dict[str, Any]:
    return {"http_status": status, "error_code": code, "error_message": message}
