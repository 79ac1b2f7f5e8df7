"""Simulator configuration, from TOML (``dispatcher simulate --config sim.toml``) or code.

Every key, with its default (a table given in the file, such as ``[keys]`` or ``[resources]``,
replaces that whole default table)::

    seed = 1                      # seeds every random choice (ids, answers, faults)
    # audit_file = "audit.jsonl"  # unset: also append each audit entry to this JSON-lines file

    [keys."tel_live_demo_key_0001"]           # one table per API key
    dialect = "telecho"           # telecho | itellico (required)
    status = "valid"              # valid | revoked | expired (401 unless valid)
    account = "acme"              # the account the key belongs to
    limits = ["60/minute", "1000/hour"]       # exact sliding windows; 429 past any of them

    [accounts.acme]
    max_concurrent_calls = 10     # live calls; TelEcho answers 429 concurrency_limit, itellicoAI
                                  # creates a call that ends with reason concurrency_limit
    blocked = false               # unpaid account: 402 call_blocked on every create
    # webhook_url = "http://127.0.0.1:8080/hook"   # unset: no itellicoAI webhooks; set: POST
                                  # each call's conversation.ended here, signed
    webhook_secret = "whsec_demo" # HMAC-SHA256 secret of those webhooks
    uuid = "00000000-0000-4000-8000-000000000001"  # itellicoAI account id (``me`` also works)
    billing_increment_s = 60      # the step calls are billed in: talk time rounded up to it
                                  # (``/_sim/calls`` shows each call's billed_seconds)
    report_billed = false         # neither provider's documented call object carries a billed
                                  # duration; true: calls (and webhooks) also carry
                                  # billed_duration_seconds, as a provider that adds one would

    [accounts.acme.caller_ids]    # the numbers the account calls from: TelEcho
                                  # phone_number_id -> number (one not listed: 404
                                  # phone_number_not_found; listed and not in [resources]:
                                  # active), itellicoAI number -> itself (one not listed:
                                  # 422 naming from_number)
    "tel_pn_main" = "+14155550199"
    "tel_pn_inactive" = "+14155550198"
    "tel_pn_notrunk" = "+14155550197"
    "tel_pn_notarget" = "+14155550196"
    "+43720123456" = "+43720123456"

    [resources]                   # id -> active | inactive | no_trunk | other_org | no_target;
    "tel_pn_main" = "active"      # an absent id is missing (404); the defaults name one id
                                  # per state (tel_pn_*, tel_agt_*, tel_wf_*, agent UUIDs)

    [calls]                       # how calls unfold once created
    ring_s = [1.0, 3.0]           # seconds until answered or given up (uniform)
    talk_s = [3.0, 20.0]          # seconds of talk after answer (uniform)
    error_reason_p = 0.0          # share of answered calls that end with a system error reason
    outcome_by_number = {}        # number -> "answer" or "answer:reason", scripted outcome

    [calls.answer_mix]            # answer status -> weight (replaces the whole default mix)
    human = 0.55
    machine = 0.15
    user_busy = 0.1
    user_unavailable = 0.1
    user_rejected = 0.05
    unknown = 0.05

    [faults]                      # failures of the create request
    probability = {}              # fault kind -> probability per create
    by_number = {}                # destination number -> "kind" (always) or "kind*N" (first N)
    retry_after_s = 3.0           # Retry-After of the rate_limit fault
    slow_s = 1.5                  # delay of the slow fault (then the call is created)
    hang_s = 30.0                 # delay of hang (then 504) and timeout_after_create
    webhook_duplicates = 0        # extra deliveries of each itellicoAI webhook
    webhook_drop_p = 0.0          # probability that a call's webhook is never sent
    itellico_retry_after_p = 1.0  # probability that an itellicoAI 429 carries Retry-After

    [predial]                     # the pre-dial hook served at POST /_sim/predial
    default_allow = true          # the answer for numbers not in deny
    deny = {}                     # number -> reason: answered {"allow": false, "reason": ...}
    by_number = {}                # number -> "kind" or "kind*N", kinds in PREDIAL_FAULTS
    latency_s = 0.0               # added to every hook answer
    slow_s = 5.0                  # delay of the slow fault (then the normal answer)

Fault kinds (``FAULTS``) of a create: ``http_500``, ``http_502``, ``http_503``, ``http_504``
(enveloped 5xx, no call), ``outbound_call_failed`` (502), ``call_blocked`` (402),
``rate_limit`` (429), ``validation`` (422), ``slow`` and ``hang`` (delays),
``timeout_after_create`` (the call exists, the answer never comes), ``reset_after_create`` (the
call exists, the connection is cut), ``malformed_json`` (the call exists, the 201 body is cut
short), ``conflict`` (the call exists, the answer is 409). Apart from faults, an itellicoAI
create whose ``external_id`` already created a call on the account answers 409 ``conflict``
and creates nothing, however long ago that call ended.

Pre-dial fault kinds (``PREDIAL_FAULTS``): ``slow``, ``http_500``, ``http_503`` (a 5xx whose
body still says ``allow: true``, so only the status tells the failure), ``garbage`` (200, a body
that is not JSON although labelled so), ``wrong_shape`` (200, JSON without ``allow``),
``wrong_type`` (200, ``allow`` is a string).
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from dispatcher.core.limits import LimitList

ANSWERS = ("human", "machine", "user_rejected", "user_unavailable", "user_busy", "unknown")
FAULTS = ("http_500", "http_502", "http_503", "http_504", "outbound_call_failed",
          "call_blocked", "rate_limit", "slow", "hang", "timeout_after_create",
          "reset_after_create", "malformed_json", "conflict", "validation")
PREDIAL_FAULTS = ("slow", "http_500", "http_503", "garbage", "wrong_shape", "wrong_type")


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid")


def check_counted(rules: dict[str, str], kinds: tuple[str, ...]) -> dict[str, str]:
    """Validate ``number -> "kind"`` or ``"kind*N"`` (N >= 1) against the known kinds."""
    for number, text in rules.items():
        kind, star, count = text.partition("*")
        if kind not in kinds:
            raise ValueError(f"{number}: unknown fault {kind!r}; expected one of {kinds}")
        if star and (not count.isdigit() or int(count) < 1):
            raise ValueError(f"{number}: {text!r} must be 'kind' or 'kind*N' with N >= 1")
    return rules


class KeySpec(_M):
    dialect: Literal["telecho", "itellico"]
    status: Literal["valid", "revoked", "expired"] = "valid"
    account: str = "acme"
    limits: LimitList = Field(default_factory=lambda: ["60/minute", "1000/hour"])


class AccountSpec(_M):
    max_concurrent_calls: int = 10
    blocked: bool = False  # unpaid: TelEcho 402 call_blocked, itellicoAI 402
    webhook_url: str | None = None
    webhook_secret: str = "whsec_demo"
    uuid: str = "00000000-0000-4000-8000-000000000001"
    billing_increment_s: int = Field(default=60, ge=1)
    report_billed: bool = False  # not in either documented API: opt in to a billed field
    # the caller IDs the account owns: TelEcho phone_number_id -> its number, itellicoAI
    # number -> itself; a create from any other is refused as the real API refuses it
    caller_ids: dict[str, str] = Field(default_factory=lambda: {
        "tel_pn_main": "+14155550199", "tel_pn_inactive": "+14155550198",
        "tel_pn_notrunk": "+14155550197", "tel_pn_notarget": "+14155550196",
        "+43720123456": "+43720123456"})


class CallSpec(_M):
    ring_s: tuple[float, float] = (1.0, 3.0)
    talk_s: tuple[float, float] = (3.0, 20.0)
    answer_mix: dict[str, float] = Field(default_factory=lambda: {
        "human": 0.55, "machine": 0.15, "user_busy": 0.1, "user_unavailable": 0.1,
        "user_rejected": 0.05, "unknown": 0.05})
    # probability that a connected call ends with a system error reason instead
    error_reason_p: float = 0.0
    outcome_by_number: dict[str, str] = Field(default_factory=dict)

    @field_validator("answer_mix")
    @classmethod
    def _answers(cls, value: dict[str, float]) -> dict[str, float]:
        bad = set(value) - set(ANSWERS)
        if bad:
            raise ValueError(f"unknown answer statuses {sorted(bad)}; expected {ANSWERS}")
        return value


class FaultSpec(_M):
    probability: dict[str, float] = Field(default_factory=dict)
    by_number: dict[str, str] = Field(default_factory=dict)  # "kind" or "kind*N" (first N)
    retry_after_s: float = 3.0
    slow_s: float = 1.5
    hang_s: float = 30.0
    webhook_duplicates: int = 0
    webhook_drop_p: float = 0.0
    itellico_retry_after_p: float = 1.0

    @field_validator("probability")
    @classmethod
    def _known(cls, value: dict[str, float]) -> dict[str, float]:
        bad = set(value) - set(FAULTS)
        if bad:
            raise ValueError(f"unknown faults {sorted(bad)}; expected one of {FAULTS}")
        return value

    @field_validator("by_number")
    @classmethod
    def _counted(cls, value: dict[str, str]) -> dict[str, str]:
        return check_counted(value, FAULTS)


class PredialSpec(_M):
    """The pre-dial hook: deny list, per-number faults, and the answer for everyone else."""

    default_allow: bool = True
    deny: dict[str, str] = Field(default_factory=dict)
    by_number: dict[str, str] = Field(default_factory=dict)
    latency_s: float = Field(default=0.0, ge=0)
    slow_s: float = Field(default=5.0, ge=0)

    @field_validator("by_number")
    @classmethod
    def _counted(cls, value: dict[str, str]) -> dict[str, str]:
        return check_counted(value, PREDIAL_FAULTS)


def _default_keys() -> dict[str, KeySpec]:
    return {
        "tel_live_demo_key_0001": KeySpec(dialect="telecho"),
        "tel_live_revoked_0001": KeySpec(dialect="telecho", status="revoked"),
        "tel_live_expired_0001": KeySpec(dialect="telecho", status="expired"),
        "sk-demo-itellico-0001": KeySpec(dialect="itellico", limits=["120/minute"]),
        "sk-revoked-itellico-01": KeySpec(dialect="itellico", status="revoked"),
    }


def _default_resources() -> dict[str, str]:
    return {
        "tel_pn_main": "active", "tel_pn_inactive": "inactive", "tel_pn_notrunk": "no_trunk",
        "tel_pn_other": "other_org", "tel_pn_notarget": "no_target",
        "tel_agt_sales": "active", "tel_agt_inactive": "inactive", "tel_agt_other": "other_org",
        "tel_wf_survey": "active", "tel_wf_inactive": "inactive",
        "7f3c0c1e-0000-4000-8000-00000000a001": "active",
        "7f3c0c1e-0000-4000-8000-00000000a002": "inactive",
    }


class SimConfig(_M):
    seed: int = 1
    keys: dict[str, KeySpec] = Field(default_factory=_default_keys)
    accounts: dict[str, AccountSpec] = Field(default_factory=lambda: {"acme": AccountSpec()})
    resources: dict[str, str] = Field(default_factory=_default_resources)
    calls: CallSpec = Field(default_factory=CallSpec)
    faults: FaultSpec = Field(default_factory=FaultSpec)
    predial: PredialSpec = Field(default_factory=PredialSpec)
    audit_file: str | None = None

    def account(self, name: str) -> AccountSpec:
        return self.accounts.setdefault(name, AccountSpec())


def load_sim_config(path: str | None) -> SimConfig:
    if not path:
        return SimConfig()
    data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    return SimConfig.model_validate(data)
