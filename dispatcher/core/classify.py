"""What a provider's error means for a job: the rules every dialect shares, then the dialect's
own table (``providers/<kind>/errors.py``). Pure: an error in, an Action out.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field


class Action(enum.Enum):
    REJECT = "reject"              # permanent for this job: result "rejected"
    RETRY = "retry"                # transient: backoff, counts as an attempt
    RATE_LIMITED = "rate_limited"  # cooldown for every worker; not an attempt
    CONCURRENCY = "concurrency"    # wait for a call slot; not an attempt
    HALT = "halt"                  # account or configuration: stop the provider, keep the jobs
    UNREACHABLE = "unreachable"    # the request never left (refused, DNS): not the job's fault
    RECONCILE = "reconcile"        # the call may exist: look it up before dialling again


@dataclass(frozen=True)
class ProviderError:
    """One normalised error from either dialect (or from the transport)."""

    status: int | None            # HTTP status; None for transport failures
    code: str                     # provider code, or ours: timeout, connection_reset, ...
    message: str = ""
    retry_after_s: float | None = None
    fields: tuple[str, ...] = field(default_factory=tuple)  # 422 field names
    sent: bool = True             # False only when the request surely never left
    enveloped: bool = True        # False: the body was not the dialect's error envelope

    @property
    def created_nothing(self) -> bool:
        """The provider surely started no call (an answer that is not ambiguous)."""
        return not self.sent or (self.status is not None and 400 <= self.status < 500
                                 and self.status != 409)


DialectTable = Callable[[ProviderError, frozenset[str], bool], Action]

RATE_CODES = frozenset({"rate_limit_per_minute", "rate_limit_per_hour", "rate_limit_exceeded"})
TRANSPORT_AMBIGUOUS = frozenset({"timeout", "connection_reset", "malformed_response"})


def classify(table: DialectTable, err: ProviderError, job_fields: frozenset[str] = frozenset(),
             *, on_create: bool) -> Action:
    """``job_fields``: the ids the job itself supplied (their errors reject, not halt)."""
    if err.status is None and not err.sent:
        return Action.UNREACHABLE
    if err.status is None or err.code in TRANSPORT_AMBIGUOUS:
        return Action.RECONCILE if on_create else Action.RETRY
    if err.code == "concurrency_limit":
        return Action.CONCURRENCY
    if err.status == 429 or err.code in RATE_CODES:
        return Action.RATE_LIMITED
    if err.status == 404 and not err.enveloped:
        return Action.HALT  # the route itself is missing: a wrong base_url, not a job error
    return table(err, job_fields, on_create)


def resource(field_name: str, job_fields: frozenset[str]) -> Action:
    """A named resource is missing or unusable: the job's fault if the job named it."""
    return Action.REJECT if field_name in job_fields else Action.HALT
