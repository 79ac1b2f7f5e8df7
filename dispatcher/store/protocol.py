"""The script protocol: what each Lua script takes and answers, as typed Python values.

One module names every part of the wire between the engine and Redis: the answer codes
(enums), each script's arguments and reply (TypedDicts, keyed exactly as the JSON is), the
job hash's fields, and the small values the store decodes replies into (dataclasses). mypy
then rejects a misspelled state, reason or field wherever it is written.

The job hash keeps short field names (``cn``, ``pf``, ``rd``, ``dk``, ``sl``, ``wr``, ``dtok``
...): every job carries them, and short names keep a hash small in Redis's listpack encoding
(docs/redis.md). ``JobField`` gives each a readable name here; the Lua scripts spell the
same strings.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Literal, NotRequired, TypedDict

from dispatcher.core import codec
from dispatcher.core.model import CallRecord, JobState
from dispatcher.store.scripts import as_list


# -- the job hash -----------------------------------------------------------------------------
class JobField(enum.StrEnum):
    """A job hash's fields: readable names for the short ones Redis keeps (see above)."""

    STATE = "state"              # a JobState
    WAIT_REASON = "wr"           # a WaitReason while delayed or parked
    DUE_WHY = "fin"              # why a result is due while finishing (a DueReason)
    PROVIDER = "prov"
    PRIORITY = "prio"
    CAMPAIGN = "camp"
    RAW = "raw"                  # the payload as pushed
    TO = "to"
    DNC_KEY = "dk"               # the number's do-not-call key (the number or its SHA-256)
    EXPIRES_MS = "exp"
    ENTRY = "owner"              # the stream entry that brought the job
    ATTEMPTS = "attempts"
    CALL_NUMBER = "cn"           # the number of the job's current call (correlation ids)
    REDIALS = "rd"               # redials done
    CALLS = "calls"              # JSON list of the calls made
    UNSURE = "unsure"            # "1": the last dial may have created a call (look it up)
    HOOK_FAILURES = "pf"         # pre-dial hook failures in a row
    HOLDS_SLOT = "sl"            # "1": the job holds a call slot its result must free
    DIALER = "dialer"            # the consumer dialling it
    GRANT_TOKEN = "dtok"         # the grant that owns the job (a write names it)
    LOG_TOKEN = "rtok"           # its place in the provider's rate log
    DIAL_MS = "dial_ms"          # when its current dial was granted
    FIRST_SEEN = "first_seen"
    READY_SINCE = "ready_since"
    CALL_ID = "call_id"
    TRACK_MS = "track_ms"        # when tracking of its live call began
    VISITS = "visits"            # polls of the live call so far
    LAST_STATUS = "last_status"  # the last provider error's HTTP status
    LAST_CODE = "last_code"      # and its code
    CRASHES = "crashes"          # times a worker failed on the job
    CANCELLED = "cancelled"
    OUTCOME = "outcome"


# -- answer codes -------------------------------------------------------------------------------
class Ingested(enum.StrEnum):
    """What INGEST did with one stream entry."""

    OK = "ok"              # placed: ready, delayed or parked
    DUPLICATE = "dup"      # another entry carries this id
    DONE = "done"          # the id already has a result
    AGAIN = "again"        # this very entry was ingested before
    FINISH = "fin"         # a result must be written now (cancelled, invalid, expired, ...)


class Why(enum.StrEnum):
    """Why a grant call gave fewer jobs than asked (GRANT), or no grant (ADMIT, REGRANT)."""

    OK = "ok"
    EMPTY = "empty"
    RATE = "rate"
    COOLDOWN = "cooldown"
    SLOT = "slot"
    HALTED = "halted"
    LOST = "lost"          # REGRANT: another worker owns the job now


class CancelResult(enum.StrEnum):
    CANCELLED = "cancelled"
    AHEAD = "ahead"
    UNKNOWN = "unknown"
    DONE = "done"
    TOO_LATE = "too_late"


class Redriven(enum.StrEnum):
    """What REDRIVE did with one job."""

    REDRIVEN = "redriven"
    WOULD = "would"            # a dry run would redrive it
    UNKNOWN = "unknown"
    NOT_DONE = "not_done"
    OUTCOME = "outcome"        # finished with an outcome not asked for
    NO_PAYLOAD = "no_payload"


class Place(enum.StrEnum):
    """Where INGEST puts an entry: a waiting state, or straight to its result."""

    QUEUED = JobState.QUEUED.value
    DELAYED = JobState.DELAYED.value
    PARKED = JobState.PARKED.value
    FINISH = "finish"


CampaignOp = Literal["pause", "resume", "cancel"]
DeferTo = Literal[JobState.QUEUED, JobState.DELAYED, JobState.PARKED]


# -- arguments and replies, keyed as the JSON is (see each script's header) -----------------------
class RateArgs(TypedDict):
    """What every script that takes a place in the provider's log needs."""

    prov: str
    wins: list[list[int]]   # (limit, window ms)
    pace: list[list[int]]
    margin: int

class GrantArgs(RateArgs):
    slot_cap: int
    lease: int
    caps: list[list[int]]
    caps_keep: int
    camps: dict[str, dict[str, Any]]
    dnc: bool
    k: int
    consumer: str
    tok: str

class AdmitArgs(RateArgs):
    tok: str

class RegrantArgs(RateArgs):
    id: str
    dtok: str
    tok: str

class AdmitWire(TypedDict):
    """ADMIT's and REGRANT's reply."""

    ok: bool
    wait: int
    why: str

class GrantedWire(TypedDict):
    """One job of a grant (lib/grant.lua, ``take``)."""

    id: str
    raw: str
    attempts: int
    cn: int
    unsure: bool
    tok: str
    camp: str
    prio: str
    first_seen: int
    ready_since: int
    rd: int
    calls: str
    canary: bool
    dial_ms: int
    pf: int

class GrantWire(TypedDict):
    prov: str
    jobs: list[GrantedWire]
    fin: list[str]
    wait: int
    why: str

class GrantReplyWire(TypedDict):
    grants: list[GrantWire]
class PlacementWire(TypedDict):
    e: str
    id: str
    raw: str
    prov: str
    prio: str
    camp: str
    to: str
    dk: str
    exp: int
    place: str
    reason: str
    due: int
    deadline: int
    fin: str
    detail: str

class IngestedWire(TypedDict):
    id: str
    r: str
    fin: NotRequired[str]

class IngestReply(TypedDict):
    entries: list[IngestedWire]
    grants: list[GrantWire]
class ResultWire(TypedDict):
    result: str
    outcome: str
    answer: str
    id: NotRequired[str]
    e: NotRequired[str]
    dtok: NotRequired[str]

class FinishReply(TypedDict):
    written: int
    skipped: list[str]
    done: list[int]
class DeferArgs(TypedDict):
    id: str
    to: str
    reason: str
    until: int
    detail: str
    set: dict[str, Any]     # more job fields (JobField names) written with the new state
    deadline: int
    refund_rate: bool
    refund_number: bool
    dtok: NotRequired[str]

class TrackItem(TypedDict):
    id: str
    dtok: str
    call_id: str
    first_ms: int
    ttl: int
    attempts: int

class TrackConflict(TypedDict):
    id: str
    call_id: str
    other: str
class TrackReply(TypedDict):
    tracked: list[str]
    conflicts: list[TrackConflict]
class RevisitItem(TypedDict):
    id: str
    prov: str
    delay: int
    lease: NotRequired[int]
    camp: NotRequired[str]

class HeartbeatReply(TypedDict):
    reaped: list[str]
    reconciled: int
    claimed: int
    revisit: int

class CancelReply(TypedDict):
    r: str
class PromoteReply(TypedDict):
    moved: int
    seen: int
class SweepReply(TypedDict):
    due: list[str]
class HaltReply(TypedDict):
    backoff: int
    parked: int
    left: int
class ResumeReply(TypedDict):
    was_halted: bool
    moved: int
    left: int
class CampaignReply(TypedDict):
    op: str
    cancelled: int
    left: int
class RedriveItem(TypedDict):
    id: str
    r: str
class RedriveReply(TypedDict):
    jobs: list[RedriveItem]
class PushReply(TypedDict):
    n: int
    again: NotRequired[bool]


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
                duration_seconds=c.get("duration_seconds")))
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

    @classmethod
    def decode(cls, d: GrantedWire, provider: str) -> Granted:
        return cls(id=str(d["id"]), raw=str(d.get("raw") or ""),
                   attempts=int(d.get("attempts") or 0), call_n=int(d.get("cn") or 1),
                   unsure=bool(d.get("unsure")), tok=str(d["tok"]),
                   campaign=str(d.get("camp") or ""), priority=str(d.get("prio") or "normal"),
                   first_seen_ms=int(d.get("first_seen") or 0),
                   ready_since_ms=int(d.get("ready_since") or 0),
                   redials=int(d.get("rd") or 0), calls=calls_from(d.get("calls")),
                   canary=bool(d.get("canary")), provider=provider,
                   dial_ms=int(d.get("dial_ms") or 0),
                   hook_failures=int(d.get("pf") or 0))


@dataclass(frozen=True)
class GrantReply:
    provider: str
    jobs: tuple[Granted, ...]
    finish: tuple[str, ...]  # ids routed to the finish queue (cancelled, do-not-call)
    wait_ms: int
    why: Why

    @classmethod
    def decode(cls, d: GrantWire) -> GrantReply:
        prov = str(d["prov"])
        return cls(prov, tuple(Granted.decode(j, prov) for j in as_list(d.get("jobs"))),
                   tuple(str(x) for x in as_list(d.get("fin"))), int(d.get("wait") or 0),
                   Why(str(d.get("why") or "ok")))


@dataclass(frozen=True)
class Admit:
    granted: bool
    wait_ms: int = 0
    reason: Why = Why.OK  # ok | cooldown | rate | halted (REGRANT: lost)

    @classmethod
    def decode(cls, d: AdmitWire) -> Admit:
        return cls(bool(d["ok"]), int(d["wait"]), Why(str(d["why"])))


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
    campaigns: dict[str, dict[str, Any]] = field(default_factory=dict)
    dnc: bool = False
    pace: tuple[tuple[int, int], ...] = ()  # (limit, ms) without the margin (limits.py)

    def rate_args(self) -> RateArgs:
        """What every script that takes a place in the provider's log needs."""
        return {"prov": self.provider, "wins": [list(w) for w in self.windows],
                "pace": [list(p) for p in self.pace], "margin": self.margin_ms}

    def args(self, k: int, consumer: str, tok: str) -> GrantArgs:
        return {**self.rate_args(), "slot_cap": self.slot_cap, "lease": self.lease_ms,
                "caps": [list(c) for c in self.caps], "caps_keep": self.caps_keep_ms,
                "camps": self.campaigns or {"~": {}}, "dnc": self.dnc, "k": k,
                "consumer": consumer, "tok": tok}


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

    def args(self) -> PlacementWire:
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

    def args(self) -> ResultWire:
        d: ResultWire = {"result": codec.dumps(self.result),
                             "outcome": self.outcome, "answer": self.answer}
        if self.job_id:
            d["id"] = self.job_id
        if self.entry_id:
            d["e"] = self.entry_id
        if self.dtok:
            d["dtok"] = self.dtok
        return d
