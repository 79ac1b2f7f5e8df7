"""What the store's calls return: small typed values decoded from the scripts' JSON."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from dispatcher.core import codec
from dispatcher.core.budgets import budget_day
from dispatcher.core.model import CallRecord
from dispatcher.store.scripts import Why, as_list


def calls_from(raw: str | None) -> tuple[CallRecord, ...]:
    """The ``calls`` history a job hash keeps (JSON written by the scripts)."""
    if not raw or raw == "[]":
        return ()
    try:
        items = codec.loads(raw)
    except ValueError:
        return ()
    out = []
    for c in as_list(items):
        if isinstance(c, dict) and c.get("call_id"):
            started = c.get("started_ms")
            out.append(CallRecord(
                call_id=str(c["call_id"]),
                started_ms=int(started) if isinstance(started, int | float) else None,
                call_status=c.get("call_status"), answer_status=c.get("answer_status"),
                disconnection_reason=c.get("disconnection_reason"),
                duration_seconds=c.get("duration_seconds"),
                from_=str(c["from"]) if c.get("from") else None))
    return tuple(out)


def calls_to(calls: tuple[CallRecord, ...]) -> str:
    return codec.dumps([c.stored() for c in calls])


@dataclass(slots=True)  # built per job: a frozen __init__ costs 5x
class Granted:
    """A job this worker may dial now (its grant is taken)."""

    id: str
    raw: str
    attempts: int
    call_n: int
    unsure: bool
    tok: str
    campaign: str
    priority: str
    first_seen_ms: int
    ready_since_ms: int
    redials: int
    calls: tuple[CallRecord, ...]
    canary: bool
    provider: str
    dial_ms: int
    hook_failures: int = 0  # pre-dial hook failures in a row
    caller_id: str | None = None  # chosen from the provider's caller-ID pool

    @classmethod
    def decode(cls, d: dict[str, Any], provider: str) -> Granted:
        return cls(id=str(d["id"]), raw=str(d.get("raw") or ""),
                   attempts=int(d.get("attempts") or 0), call_n=int(d.get("cn") or 1),
                   unsure=bool(d.get("unsure")), tok=str(d["tok"]),
                   campaign=str(d.get("camp") or ""), priority=str(d.get("prio") or "normal"),
                   first_seen_ms=int(d.get("first_seen") or 0),
                   ready_since_ms=int(d.get("ready_since") or 0),
                   redials=int(d.get("rd") or 0), calls=calls_from(d.get("calls")),
                   canary=bool(d.get("canary")), provider=provider,
                   dial_ms=int(d.get("dial_ms") or 0),
                   hook_failures=int(d.get("pf") or 0),
                   caller_id=str(d["cid"]) if d.get("cid") else None)


@dataclass(frozen=True)
class GrantReply:
    provider: str
    jobs: tuple[Granted, ...]
    finish: tuple[str, ...]  # ids routed to the finish queue (cancelled, do-not-call)
    wait_ms: int
    why: Why
    windows_set: WindowsSet | None = None  # limits set at runtime, when there are

    @classmethod
    def decode(cls, d: dict[str, Any]) -> GrantReply:
        prov = str(d["prov"])
        ov = d.get("ov")
        return cls(prov, tuple(Granted.decode(j, prov) for j in as_list(d.get("jobs"))),
                   tuple(str(x) for x in as_list(d.get("fin"))), int(d.get("wait") or 0),
                   Why(str(d.get("why") or "ok")),
                   WindowsSet(int(ov["short"]), int(ov["margin"]))
                   if isinstance(ov, dict) else None)


@dataclass(frozen=True)
class WindowsSet:
    """What a worker's timing needs of windows set at runtime (the grant applies them)."""

    shortest_ms: int
    margin_ms: int


@dataclass(frozen=True)
class Admit:
    granted: bool
    wait_ms: int = 0
    reason: str = "ok"  # ok | cooldown | rate | halted


@dataclass(frozen=True)
class JobView:
    """A job's stored fields, as a visit or the finish queue reads them."""

    id: str
    fields: dict[str, str] = field(default_factory=dict)

    def get(self, name: str, default: str = "") -> str:
        value = self.fields.get(name)
        return default if value is None else str(value)

    def int(self, name: str, default: int = 0) -> int:
        try:
            return int(float(self.get(name) or default))
        except ValueError:
            return default

    @property
    def calls(self) -> tuple[CallRecord, ...]:
        return calls_from(self.fields.get("calls"))


@dataclass(frozen=True)
class GrantRules:
    """What a grant must respect for one provider (built from configuration)."""

    provider: str
    windows: tuple[tuple[int, int], ...]   # (limit, window ms)
    margin_ms: int
    slot_cap: int                          # 0: no call slots (tracking off or no cap)
    lease_ms: int
    caps: tuple[tuple[int, int], ...] = () # per-number (limit, window ms), default policy
    caps_keep_ms: int = 0
    campaigns: dict[str, dict[str, Any]] = field(default_factory=dict)
    dnc: bool = False
    pace: tuple[tuple[int, int], ...] = ()  # (limit, ms) without the margin (limits.py)
    tracked: bool = False                   # calls are followed: a runtime slot cap holds
    reserve: float = 0.0                    # share of each window kept for high priority
    caller_ids: dict[str, Any] | None = None  # the pool as the script takes it (callerids.py)
    worst_micro: int | None = None          # a live call's worst cost (None: no price)
    hold_ms: int = 0                        # how long a live call's worst case is held

    def rate_args(self) -> dict[str, Any]:
        """What every script that takes a place in the provider's log needs."""
        return {"prov": self.provider, "wins": [list(w) for w in self.windows],
                "pace": [list(p) for p in self.pace], "margin": self.margin_ms,
                "tracked": self.tracked}

    def _camps(self) -> dict[str, Any]:
        """Campaigns with a budget learn their budget day now (it turns at their midnight)."""
        if self.worst_micro is None or not any("budget" in c for c in self.campaigns.values()):
            return self.campaigns or {"~": {}}
        now = round(time.time() * 1000)
        out = dict(self.campaigns)
        for name, c in self.campaigns.items():
            if "budget" in c:
                day, nxt = budget_day(now, c["budget_tz"])
                out[name] = {**c, "bday": day, "bnext": nxt}
        return out

    def args(self, k: int, consumer: str, tok: str) -> dict[str, Any]:
        return {**self.rate_args(), "slot_cap": self.slot_cap, "lease": self.lease_ms,
                "caps": [list(c) for c in self.caps], "caps_keep": self.caps_keep_ms,
                "camps": self._camps(), "dnc": self.dnc, "k": k,
                **({"worst": self.worst_micro, "hold_ms": self.hold_ms}
                   if self.worst_micro is not None else {}),
                "reserve": self.reserve,
                **({"cid": self.caller_ids} if self.caller_ids else {}),
                "consumer": consumer, "tok": tok}


@dataclass(slots=True)  # built per job: a frozen __init__ costs 5x
class Placement:
    """Where INGEST puts one claimed entry (decided by the pure core)."""

    entry_id: str
    job_id: str
    raw: str
    provider: str
    priority: str
    campaign: str
    to: str
    dnc_key: str
    expires_ms: int
    place: str                 # queued | delayed | parked | finish
    reason: str = ""
    due_ms: int = 0
    deadline_ms: int = 0
    fin: str = ""
    detail: str = ""

    def args(self) -> dict[str, Any]:
        return {"e": self.entry_id, "id": self.job_id, "raw": self.raw, "prov": self.provider,
                "prio": self.priority, "camp": self.campaign, "to": self.to,
                "dk": self.dnc_key, "exp": self.expires_ms, "place": self.place,
                "reason": self.reason, "due": self.due_ms, "deadline": self.deadline_ms,
                "fin": self.fin, "detail": self.detail}


@dataclass(slots=True)  # built per job: a frozen __init__ costs 5x
class ResultItem:
    """One result for FINISH."""

    job_id: str | None
    entry_id: str | None
    result: dict[str, Any]
    outcome: str
    answer: str = ""
    dtok: str | None = None

    def args(self) -> dict[str, Any]:
        d: dict[str, Any] = {"result": codec.dumps(self.result),
                             "outcome": self.outcome, "answer": self.answer}
        if self.job_id:
            d["id"] = self.job_id
        if self.entry_id:
            d["e"] = self.entry_id
        if self.dtok:
            d["dtok"] = self.dtok
        return d
