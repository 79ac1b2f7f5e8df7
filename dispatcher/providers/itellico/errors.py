"""itellicoAI's statuses and what each means (switch on status first, then code)."""

from __future__ import annotations

from dispatcher.core.classify import Action, ProviderError, resource


def classify(err: ProviderError, job_fields: frozenset[str], on_create: bool) -> Action:
    status = err.status or 0
    if status in (401, 402, 403):
        return Action.HALT
    if status == 404:
        return resource("agent_id", job_fields) if on_create else Action.REJECT
    if status == 422 and "from_number" in err.fields:  # a caller ID the account does not own
        return resource("from", job_fields) if on_create else Action.REJECT
    if status == 409:
        return Action.RECONCILE if on_create else Action.REJECT
    if status == 503:
        return Action.RETRY
    if status >= 500:
        return Action.RECONCILE if on_create else Action.RETRY
    return Action.REJECT
