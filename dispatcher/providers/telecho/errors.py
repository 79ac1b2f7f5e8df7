"""TelEcho's error codes and what each means (switch on code, then status)."""

from __future__ import annotations

from dispatcher.core.classify import Action, ProviderError, resource

AUTH = frozenset({"missing_api_key", "invalid_api_key", "revoked_api_key", "expired_api_key"})
# resource codes -> the job field whose id they are about
RESOURCE = {
    "agent_not_found": "agent_id", "agent_inactive": "agent_id",
    "workflow_not_found": "workflow_id", "workflow_inactive": "workflow_id",
    "phone_number_not_found": "from", "phone_number_inactive": "from",
    "no_outbound_trunk": "from", "no_routing_target": "from",
}


def classify(err: ProviderError, job_fields: frozenset[str], on_create: bool) -> Action:
    status, code = err.status, err.code
    if status == 401 or code in AUTH or status == 402 or code == "call_blocked" or status == 403:
        return Action.HALT
    if code in RESOURCE:
        return resource(RESOURCE[code], job_fields)
    if code == "outbound_call_failed":
        return Action.RETRY
    if status is not None and status >= 500:
        return Action.RECONCILE if on_create else Action.RETRY
    return Action.REJECT
