"""What the store's calls return and take: small typed values decoded from, and encoded
into, the scripts' JSON (the wire itself is in ``store/protocol.py``)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from dispatcher.core import codec
from dispatcher.core.budgets import budget_day
from dispatcher.core.model import CallRecord
from dispatcher.store.protocol import (
    AdmitWire,
    GrantArgs,
    GrantedWire,
    GrantWire,
    JobField,
    Place,
    PlacementWire,
    RateArgs,
    ResultWire,
    Why,
)
from dispatcher.store.scripts import as_list


def calls_from(raw: str | None) -> tuple[CallRecord, ...]:
    """The ``calls`` history a job hash keeps (JSON written by the scripts)."""
    if not raw or raw == "[]":
        return ()
    try:
        items = codec.loads(raw)
    except ValueError:
        return ()
    out = []
    for call in as_list(items):
        if isinstance(call, dict) and call.get("call_id"):
            started = call.get("started_ms")
            out.append(CallRecord(
                call_id=str(call["call_id"]),
                started_ms=int(started) if isinstance(started, int | float) else None,
                call_status=call.get("call_status"), answer_status=call.get("answer_status"),
                disconnection_reason=call.get("disconnection_reason"),
                duration_seconds=call.get("duration_seconds"),
                from_=str(call["from"]) if call.get("from") else None))
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
    probe: bool
    provider: str
    dial_ms: int
    hook_failures: int = 0  # pre-dial hook failures in a row
    caller_id: str | None = None  # chosen from the provider's caller-ID pool
    placed: bool = True  # holds a place in the provider's log (an unsure job may share one)

    @classmethod
    def decode(cls, wire: GrantedWire, provider: str) -> Granted:
        return cls(id=str(wire["id"]), raw=str(wire.get("raw") or ""),
                   attempts=int(wire.get("attempts") or 0), call_n=int(wire.get("cn") or 1),
                   unsure=bool(wire.get("unsure")), tok=str(wire["tok"]),
                   campaign=str(wire.get("camp") or ""), priority=str(wire.get("prio") or "normal"),
                   first_seen_ms=int(wire.get("first_seen") or 0),
                   ready_since_ms=int(wire.get("ready_since") or 0),
                   redials=int(wire.get("rd") or 0), calls=calls_from(wire.get("calls")),
                   probe=bool(wire.get("canary")), provider=provider,
                   dial_ms=int(wire.get("dial_ms") or 0),
                   hook_failures=int(wire.get("pf") or 0),
                   caller_id=str(wire["cid"]) if wire.get("cid") else None,
                   placed=not wire.get("np"))


@dataclass(frozen=True)
class Halt:
    """HALT's answer: the wait until the next probe, the halt's start (which names it), and
    whether this call began it."""

    backoff_ms: int
    since_ms: int
    began: bool


@dataclass(frozen=True)
class GrantReply:
    provider: str
    jobs: tuple[Granted, ...]
    finish: tuple[str, ...]  # ids routed to the finish queue (cancelled, do-not-call)
    wait_ms: int
    why: Why
    # False: fewer Redis replicas than redis.wait_replicas acknowledged the grant in time, so
    # a failover could forget it: its jobs must not be dialled
    replicated: bool = True
    windows_set: WindowsSet | None = None  # limits set at runtime, when there are

    @classmethod
    def decode(cls, wire: GrantWire, replicated: bool = True) -> GrantReply:
        prov = str(wire["prov"])
        ov = wire.get("ov")
        return cls(prov, tuple(Granted.decode(j, prov) for j in as_list(wire.get("jobs"))),
                   tuple(str(x) for x in as_list(wire.get("fin"))), int(wire.get("wait") or 0),
                   Why(str(wire.get("why") or "ok")), replicated,
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
    reason: Why = Why.OK  # ok | cooldown | rate | halted (REGRANT: lost)

    @classmethod
    def decode(cls, wire: AdmitWire) -> Admit:
        return cls(bool(wire["ok"]), int(wire["wait"]), Why(str(wire["why"])))


@dataclass(frozen=True)
class JobView:
    """A job's stored fields, as a visit or the finish queue reads them."""

    id: str
    fields: dict[str, str] = field(default_factory=dict)

    def get(self, name: JobField, default: str = "") -> str:
        value = self.fields.get(name)
        return default if value is None else str(value)

    def int(self, name: JobField, default: int = 0) -> int:
        try:
            return int(float(self.get(name) or default))
        except ValueError:
            return default

    @property
    def calls(self) -> tuple[CallRecord, ...]:
        return calls_from(self.fields.get(JobField.CALLS))


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
    subject_caps: tuple[tuple[int, int], ...] = ()  # per-subject, default policy
    consent: bool = False                  # policy.require_consent (default policy)
    registries: tuple[dict[str, Any], ...] = ()  # do-not-call registries that must be fresh
    campaigns: dict[str, dict[str, Any]] = field(default_factory=dict)
    dnc: bool = False
    pace: tuple[tuple[int, int], ...] = ()  # (limit, ms) without the margin (limits.py)
    tracked: bool = False                   # calls are followed: a runtime slot cap holds
    reserve: float = 0.0                    # share of each window kept for high priority
    caller_ids: dict[str, Any] | None = None  # the pool as the script takes it (callerids.py)
    worst_micro: int | None = None          # a live call's worst cost (None: no price)
    hold_ms: int = 0                        # how long a live call's worst case is held
    shared_lookup: bool = False             # one listing looks up several calls (see lookup.py)

    def rate_args(self) -> RateArgs:
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
        for name, campaign in self.campaigns.items():
            if "budget" in campaign:
                day, nxt = budget_day(now, campaign["budget_tz"])
                out[name] = {**campaign, "bday": day, "bnext": nxt}
        return out

    def args(self, count: int, consumer: str, tok: str) -> GrantArgs:
        rate = self.rate_args()
        out: GrantArgs = {
            "prov": rate["prov"], "wins": rate["wins"], "pace": rate["pace"],
            "margin": rate["margin"], "tracked": self.tracked,
            "slot_cap": self.slot_cap, "lease": self.lease_ms,
            "caps": [list(c) for c in self.caps], "caps_keep": self.caps_keep_ms,
            "subject_caps": [list(c) for c in self.subject_caps], "consent": self.consent,
            "regs": list(self.registries), "camps": self._camps(), "dnc": self.dnc, "k": count,
            "reserve": self.reserve, "consumer": consumer, "tok": tok}
        if self.worst_micro is not None:
            out["worst"], out["hold_ms"] = self.worst_micro, self.hold_ms
        if self.caller_ids:
            out["cid"] = self.caller_ids
        if self.shared_lookup:
            out["shared"] = True
        return out


@dataclass(slots=True, kw_only=True)  # built per job: a frozen __init__ costs 5x
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
    place: Place
    reason: str = ""           # a WaitReason when delayed or parked
    due_ms: int = 0
    deadline_ms: int = 0
    fin: str = ""              # a DueReason when place is FINISH
    detail: str = ""
    subject: str = ""          # per-subject caps count this job's calls under it
    subject_caps: tuple[tuple[int, int], ...] | None = None  # its own (region); None: config's
    region: str = ""           # where a do-not-call registry may cover it ("" when none can)

    def args(self) -> PlacementWire:
        wire: PlacementWire = {
             "e": self.entry_id, "id": self.job_id, "raw": self.raw, "prov": self.provider,
             "prio": self.priority, "camp": self.campaign, "to": self.to,
             "dk": self.dnc_key, "exp": self.expires_ms, "place": self.place,
             "reason": self.reason, "due": self.due_ms, "deadline": self.deadline_ms,
             "fin": self.fin, "detail": self.detail}
        if self.subject:
            wire["subj"] = self.subject
            if self.subject_caps is not None:
                wire["sc"] = codec.dumps([list(c) for c in self.subject_caps])
        if self.region:
            wire["rg"] = self.region
        return wire


@dataclass(slots=True)  # built per job: a frozen __init__ costs 5x
class ResultItem:
    """One result for FINISH."""

    job_id: str | None
    entry_id: str | None
    result: dict[str, Any]
    outcome: str
    answer: str = ""
    grant_token: str | None = None

    def args(self) -> ResultWire:
        wire: ResultWire = {"result": codec.dumps(self.result),
                             "outcome": self.outcome, "answer": self.answer}
        if self.job_id:
            wire["id"] = self.job_id
        if self.entry_id:
            wire["e"] = self.entry_id
        if self.grant_token:
            wire["dtok"] = self.grant_token
        dur = self.result.get("duration_seconds")
        if isinstance(dur, int | float):
            wire["dur"] = dur
        return wire
