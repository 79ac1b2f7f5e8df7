"""The script protocol: what each Lua script takes and answers, as typed Python values.

One module names every part of the wire between the engine and Redis: the answer codes
(enums), each script's arguments and reply (TypedDicts, keyed exactly as the JSON is) and
the job hash's fields; ``store/types.py`` next to it holds the values the store decodes
replies into. mypy then rejects a misspelled state, reason or field wherever it is
written.

The job hash keeps short field names (``cn``, ``pf``, ``rd``, ``dk``, ``sl``, ``wr``, ``dtok``
...): every job carries them, and short names keep a hash small in Redis's listpack encoding
(docs/redis.md). ``JobField`` gives each a readable name here; the Lua scripts spell the
same strings. Script arguments and replies keep their wire names too (``dtok`` is the grant
token, ``canary`` marks the halt probe); Python code past the store uses the readable ones.
"""

from __future__ import annotations

import enum
from typing import Any, Literal, NotRequired, TypedDict

from dispatcher.core.model import JobState


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


ScriptName = Literal[
    "admit", "campaign", "cancel", "claimfin", "cooldown", "defer", "finish", "grant", "forget",
    "halt", "heartbeat", "ingest", "observe", "peek", "promote", "push", "redrive", "regrant",
    "resume", "revisit", "shrink", "sweep", "track", "visit", "webhook", "consent", "registry",
    "unconsent", "limits", "cidstat", "bill", "joblist",
    "reindex"]
CampaignOp = Literal["pause", "resume", "cancel"]
DeferTo = Literal[JobState.QUEUED, JobState.DELAYED, JobState.PARKED]


# -- arguments and replies, keyed as the JSON is (see each script's header) -----------------------
class RateArgs(TypedDict):
    """What every script that takes a place in the provider's log needs."""

    prov: str
    wins: list[list[int]]   # (limit, window ms)
    pace: list[list[int]]
    margin: int
    tracked: NotRequired[bool]  # calls are followed: a runtime slot cap holds

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
    subject_caps: NotRequired[list[list[int]]]  # per-subject caps (default policy)
    consent: NotRequired[bool]                   # policy.require_consent
    regs: NotRequired[list[Any]]                 # do-not-call registries and their state
    reserve: NotRequired[float]                  # the share of each window kept for high
    worst: NotRequired[int]                      # a live call's worst cost (millionths)
    hold_ms: NotRequired[int]                    # how long a live call's worst case is held
    cid: NotRequired[Any]                        # the provider's caller-ID pool
    shared: NotRequired[bool]                    # unsure jobs share one look-up (one place)

class AdmitArgs(RateArgs):
    tok: str

class RegrantArgs(RateArgs):
    id: str
    dtok: str
    tok: str
    keep: NotRequired[bool]  # its old place served another request: add a new one

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
    cid: NotRequired[str]  # the caller ID chosen from the pool
    np: NotRequired[bool]  # no place in the log of its own (looked up with the grant's first)


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
    subj: NotRequired[str]   # the job's subject (per-subject caps)
    sc: NotRequired[str]     # its own subject caps, JSON (when its region changes them)
    rg: NotRequired[str]     # its region, for the do-not-call registries that cover it

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
    dur: NotRequired[float]  # the call's duration_seconds, kept on the job for its page

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

# "from" (the caller ID a call used) is a keyword in Python: the functional form names it
TrackItem = TypedDict("TrackItem", {
    "id": str, "dtok": str, "call_id": str, "first_ms": int, "ttl": int, "attempts": int,
    "from": NotRequired[str]})

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


# -- the other scripts' arguments (each call site builds one, so mypy checks its keys) --------
class GrantCallArgs(TypedDict):
    rid: str                 # a request id: a replay answers the first reply
    grants: list[GrantArgs]

class IngestArgs(GrantCallArgs):
    group: str
    sleep_after: int
    entries: list[PlacementWire]

class FinishArgs(TypedDict):
    group: str
    ttl: int
    maxlen: int
    items: list[ResultWire]

class CancelArgs(TypedDict):
    id: str
    ttl: int
    ahead: bool              # not pushed yet: cancel it when it is

class TrackArgs(TypedDict):
    items: list[TrackItem]

class RevisitArgs(TypedDict):
    items: list[RevisitItem]

class ClaimfinArgs(TypedDict):
    lease: int
    limit: int
    ids: NotRequired[list[str]]

class VisitArgs(TypedDict):
    provs: list[str]
    lease: int
    limit: int

class WebhookArgs(TypedDict):
    event_id: str
    call_id: str
    ttl: int
    fields: dict[str, str]

class PromoteArgs(TypedDict):
    src: str                 # "delayed" or "parked:<prov>"
    top: str                 # "now" or "+inf"
    limit: int
    max_defer: int

class SweepArgs(TypedDict):
    limit: int

class HeartbeatArgs(TypedDict):
    group: str
    consumer: str
    held: list[str]
    dead: int
    stale: int
    settle: dict[str, int]
    margins: dict[str, int]
    visiting: list[str]
    visited: NotRequired[list[str]]
    info: NotRequired[WorkerInfoArgs]


class WorkerInfoArgs(TypedDict):
    host: str
    pid: int
    version: str
    started: int
    concurrency: int

class RedriveArgs(TypedDict):
    ids: list[str]
    outcomes: list[str]
    dry: bool

class CooldownArgs(TypedDict):
    prov: str
    ms: int

class ObserveArgs(TypedDict):
    prov: str
    limit: int
    ms: int
    remaining: int
    reset: int
    margin: int

class ShrinkArgs(TypedDict):
    prov: str
    ttl: int

class HaltArgs(TypedDict):
    prov: str
    reason: str
    code: str
    first: int
    max: int
    batch: int

class ResumeArgs(TypedDict):
    prov: str
    batch: int
    max_defer: int

class CampaignArgs(TypedDict):
    op: CampaignOp
    camp: str
    provs: list[str]
    batch: int

class PushArgs(TypedDict):
    batch: str               # the producer's token for this batch
    jobs: list[str]
    ttl: int

class PeekArgs(TypedDict):
    ids: list[str]

class ReindexArgs(TypedDict):
    ids: list[str]
    dry: bool                # count the missing entries, add none

class ForgetArgs(TypedDict):
    group: str
    ids: list[str]
    numbers: list[str]
    patterns: list[str]
    results: list[str]
    entries: list[dict[str, str]]
    replies: list[str]
    after_results: str
    after_jobs: str
    tail: int
    fence: int


# -- the other scripts' replies ------------------------------------------------------------------
class ClaimfinReply(TypedDict):
    jobs: list[dict[str, Any]]   # JobField values of each job, and its id

class VisitReply(TypedDict):
    visits: list[dict[str, Any]]  # JobField values, its id, and "hook": a webhook's end

class PeekedJob(TypedDict):
    id: str
    fields: dict[str, str]
    timeline: list[str]

class PeekReply(TypedDict):
    jobs: list[PeekedJob]

class ReindexReply(TypedDict):
    seen: int                # jobs found in a state the jobs list shows
    added: int               # of those, jobs that lacked an entry (got one, unless dry)
    entries: int             # index entries added (or missing)

class ForgetReply(TypedDict):
    jobs: list[str]
    fenced: list[str]
    unknown: list[str]
    timelines: int
    calls: int
    results: int
    entries: int
    number_logs: int
    subject_logs: int
    more: bool
