"""Simulator configuration: keys, accounts, resources, call lifecycle and faults (TOML or code)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from dispatcher.limits import LimitList

ANSWERS = ("human", "machine", "user_rejected", "user_unavailable", "user_busy", "unknown")
FAULTS = ("http_500", "http_502", "http_503", "http_504", "outbound_call_failed",
          "call_blocked", "rate_limit", "slow", "hang", "timeout_after_create",
          "reset_after_create", "malformed_json", "conflict", "validation")


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid")


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
    def _answers(cls, v: dict[str, float]) -> dict[str, float]:
        bad = set(v) - set(ANSWERS)
        if bad:
            raise ValueError(f"unknown answer statuses {sorted(bad)}; expected {ANSWERS}")
        return v


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
    def _known(cls, v: dict[str, float]) -> dict[str, float]:
        bad = set(v) - set(FAULTS)
        if bad:
            raise ValueError(f"unknown faults {sorted(bad)}; expected one of {FAULTS}")
        return v


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
    audit_file: str | None = None

    def account(self, name: str) -> AccountSpec:
        return self.accounts.setdefault(name, AccountSpec())


def load_sim_config(path: str | None) -> SimConfig:
    if not path:
        return SimConfig()
    data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    return SimConfig.model_validate(data)
