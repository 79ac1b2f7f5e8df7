"""Provider errors, normalised, and the one table that decides what each of them means.

Pure: (provider kind, HTTP status, error code, where the offending id came from) -> Action.
Switch on status first, then on code, as itellicoAI advises.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Action(enum.Enum):
    REJECT = "reject"            # permanent for this job: result "rejected"
    RETRY = "retry"              # transient: backoff, counts as an attempt
    RATE_LIMITED = "rate_limited"  # cooldown for every worker; not an attempt
    CONCURRENCY = "concurrency"  # wait for a call slot; not an attempt
    HALT = "halt"                # account-level: stop the provider, keep the jobs
    RECONCILE = "reconcile"      # the call may exist: look it up before dialling again


@dataclass(frozen=True)
class ProviderError:
    """One normalised error from either dialect (or from the transport)."""

    status: int | None            # HTTP status; None for transport failures
    code: str                     # provider code, or ours: timeout, connection_reset, …
    message: str = ""
    retry_after_s: float | None = None
    fields: tuple[str, ...] = field(default_factory=tuple)  # 422 field names
    sent: bool = True             # False only when the request surely never left


class IdSource(enum.Enum):
    JOB = "job"
    CONFIG = "config"


TELECHO_AUTH = {"missing_api_key", "invalid_api_key", "revoked_api_key", "expired_api_key"}
TELECHO_BAD_REQUEST = {"invalid_id", "invalid_target", "invalid_date", "invalid_filter",
                       "invalid_cursor"}
# resource codes -> the job field whose id they are about
TELECHO_RESOURCE = {
    "agent_not_found": "agent_id", "agent_inactive": "agent_id",
    "workflow_not_found": "workflow_id", "workflow_inactive": "workflow_id",
    "phone_number_not_found": "from", "phone_number_inactive": "from",
    "no_outbound_trunk": "from", "no_routing_target": "from",
}
RATE_CODES = {"rate_limit_per_minute", "rate_limit_per_hour", "rate_limit_exceeded"}
TRANSPORT_AMBIGUOUS = {"timeout", "connection_reset", "malformed_response"}


def classify(
    kind: str, err: ProviderError, job_fields: frozenset[str] = frozenset(), *, on_create: bool
) -> Action:
    """Decide what an error means for the job (``job_fields``: ids the job itself supplied)."""
    if err.status is None and not err.sent:
        return Action.RETRY
    if err.status is None or err.code in TRANSPORT_AMBIGUOUS:
        return Action.RECONCILE if on_create else Action.RETRY
    if err.code == "concurrency_limit":
        return Action.CONCURRENCY
    if err.status == 429 or err.code in RATE_CODES:
        return Action.RATE_LIMITED
    if kind == "telecho":
        return _telecho(err, job_fields, on_create)
    return _itellico(err, job_fields, on_create)


def _resource(field_name: str, job_fields: frozenset[str]) -> Action:
    return Action.REJECT if field_name in job_fields else Action.HALT


def _telecho(err: ProviderError, job_fields: frozenset[str], on_create: bool) -> Action:
    s, code = err.status, err.code
    if s == 401 or code in TELECHO_AUTH:
        return Action.HALT
    if s == 402 or code == "call_blocked":
        return Action.HALT
    if code in TELECHO_RESOURCE:
        return _resource(TELECHO_RESOURCE[code], job_fields)
    if code == "outbound_call_failed":
        return Action.RETRY
    assert s is not None
    if s >= 500:
        return Action.RECONCILE if on_create else Action.RETRY
    if s == 403:
        return Action.HALT
    return Action.REJECT


def _itellico(err: ProviderError, job_fields: frozenset[str], on_create: bool) -> Action:
    s = err.status
    assert s is not None
    if s in (401, 402, 403):
        return Action.HALT
    if s == 404:
        return _resource("agent_id", job_fields) if on_create else Action.REJECT
    if s == 409:
        return Action.RECONCILE if on_create else Action.REJECT
    if s == 503:
        return Action.RETRY
    if s >= 500:
        return Action.RECONCILE if on_create else Action.RETRY
    return Action.REJECT
