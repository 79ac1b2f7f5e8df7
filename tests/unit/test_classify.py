"""Every status and code of both dialects (docs/providers.md), and what it means."""

import pytest

from dispatcher.core.classify import Action, ProviderError
from dispatcher.core.classify import classify as classify_with
from dispatcher.providers import DIALECTS


def classify(kind: str, err: ProviderError, fields: frozenset[str] = frozenset(), *,
             on_create: bool) -> Action:
    return classify_with(DIALECTS[kind].errors, err, fields, on_create=on_create)


A = Action
JOB = frozenset({"agent_id", "workflow_id", "from"})
NONE: frozenset[str] = frozenset()

TELECHO = [
    (401, "missing_api_key", NONE, A.HALT),
    (401, "invalid_api_key", NONE, A.HALT),
    (401, "revoked_api_key", NONE, A.HALT),
    (401, "expired_api_key", NONE, A.HALT),
    (400, "invalid_id", NONE, A.REJECT),
    (400, "invalid_target", NONE, A.REJECT),
    (400, "invalid_date", NONE, A.REJECT),
    (400, "invalid_filter", NONE, A.REJECT),
    (400, "invalid_cursor", NONE, A.REJECT),
    (404, "agent_not_found", JOB, A.REJECT),
    (404, "agent_not_found", NONE, A.HALT),
    (404, "workflow_not_found", JOB, A.REJECT),
    (404, "workflow_not_found", NONE, A.HALT),
    (404, "phone_number_not_found", JOB, A.REJECT),
    (404, "phone_number_not_found", NONE, A.HALT),
    (400, "agent_inactive", JOB, A.REJECT),
    (400, "agent_inactive", NONE, A.HALT),
    (400, "workflow_inactive", JOB, A.REJECT),
    (400, "workflow_inactive", NONE, A.HALT),
    (400, "phone_number_inactive", JOB, A.REJECT),
    (400, "phone_number_inactive", NONE, A.HALT),
    (400, "no_outbound_trunk", JOB, A.REJECT),
    (400, "no_outbound_trunk", NONE, A.HALT),
    (400, "no_routing_target", JOB, A.REJECT),
    (400, "no_routing_target", NONE, A.HALT),
    (402, "call_blocked", NONE, A.HALT),
    (502, "outbound_call_failed", NONE, A.RETRY),
    (429, "rate_limit_per_minute", NONE, A.RATE_LIMITED),
    (429, "rate_limit_per_hour", NONE, A.RATE_LIMITED),
    (429, "concurrency_limit", NONE, A.CONCURRENCY),
    (500, "internal_error", NONE, A.RECONCILE),
    (503, "service_unavailable", NONE, A.RECONCILE),
    (422, "validation_error", NONE, A.REJECT),
    (404, "http_404", NONE, A.REJECT),
]

ITELLICO = [
    (400, "bad_request", A.REJECT),
    (401, "unauthorized", A.HALT),
    (402, "payment_required", A.HALT),
    (403, "forbidden", A.HALT),
    (405, "method_not_allowed", A.REJECT),
    (409, "conflict", A.RECONCILE),
    (410, "gone", A.REJECT),
    (422, "validation_error", A.REJECT),
    (429, "rate_limit_exceeded", A.RATE_LIMITED),
    (500, "internal_error", A.RECONCILE),
    (502, "bad_gateway", A.RECONCILE),
    (504, "gateway_timeout", A.RECONCILE),
    (503, "service_unavailable", A.RETRY),
    (422, "some_more_specific_code", A.REJECT),
]


@pytest.mark.parametrize(("status", "code", "fields", "action"), TELECHO)
def test_telecho_table(status: int, code: str, fields: frozenset[str], action: Action) -> None:
    assert classify("telecho", ProviderError(status, code), fields, on_create=True) is action


@pytest.mark.parametrize(("status", "code", "action"), ITELLICO)
def test_itellico_table(status: int, code: str, action: Action) -> None:
    assert classify("itellico", ProviderError(status, code), NONE, on_create=True) is action


def test_itellico_404_rejects_a_job_agent_and_halts_a_configured_one() -> None:
    err = ProviderError(404, "not_found")
    assert classify("itellico", err, frozenset({"agent_id"}), on_create=True) is A.REJECT
    assert classify("itellico", err, NONE, on_create=True) is A.HALT


@pytest.mark.parametrize("kind", ["telecho", "itellico"])
def test_transport_failures(kind: str) -> None:
    never_sent = ProviderError(None, "connect_failed", sent=False)
    # not the job's fault: no attempt spent, and the provider's circuit counts it
    assert classify(kind, never_sent, on_create=True) is A.UNREACHABLE
    for code in ("timeout", "connection_reset"):
        assert classify(kind, ProviderError(None, code), on_create=True) is A.RECONCILE
        assert classify(kind, ProviderError(None, code), on_create=False) is A.RETRY
    garbled = ProviderError(201, "malformed_response")
    assert classify(kind, garbled, on_create=True) is A.RECONCILE


def test_reads_never_reconcile() -> None:
    assert classify("telecho", ProviderError(500, "x"), on_create=False) is A.RETRY
    assert classify("itellico", ProviderError(409, "conflict"), on_create=False) is A.REJECT


def test_every_documented_disconnection_reason_has_a_rule() -> None:
    import re
    from pathlib import Path

    from dispatcher.core.decide import RETRY_BEFORE_ANSWER
    from dispatcher.core.decide import SYSTEM_ERRORS as ERROR_REASONS
    from dispatcher.simulator import core
    docs = (Path(__file__).parents[2] / "docs" / "providers.md").read_text()
    table = docs.split("### Disconnection reasons")[1].split("\n## ")[0]
    rows = [ln.split("|")[1] for ln in table.splitlines() if ln.startswith("| `")]
    documented = {r for row in rows for r in re.findall(r"`([a-z_]+)`", row)}
    normal = {"user_hangup", "agent_hangup", "call_transfer", "max_duration", "inactivity",
              "voicemail", "dial_busy", "dial_no_answer", "dial_failed", "dial_rejected",
              "invalid_number", "concurrency_limit"}
    known = normal | ERROR_REASONS | RETRY_BEFORE_ANSWER
    assert documented == known
    simulated = {*core.HUMAN_REASONS, *core.ERROR_REASONS, *core.NOT_CONNECTED.values()}
    assert simulated <= known
