"""``dispatcher explain ID``: a job's history in words, and why it waits *now*.

``gather`` reads what matters from Redis (the job's hash and timeline, its provider's halt,
cooldown, windows and slots, its campaign's flags, what stands before it in line); ``explain``
turns those facts into sentences without touching Redis, so every branch is tested with a
fixed clock. The console's job page shows the same explanation.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from dispatcher.config.settings import Settings
from dispatcher.core.model import JobState, WaitReason, iso
from dispatcher.logs import clean_field, mask_number, scrub_text
from dispatcher.store import Store
from dispatcher.store.protocol import JobField

REASONS: dict[str, str] = {
    WaitReason.NOT_BEFORE: "the time the job asked for (not_before)",
    WaitReason.WINDOW: "the recipient's calling hours",
    WaitReason.REDIAL: "the next call of its redial rule",
    WaitReason.HALTED: "its provider, which is halted",
    WaitReason.UNKNOWN_PROVIDER: "its provider, which is not configured",
    WaitReason.RETRY: "a retry after a failed attempt",
    WaitReason.RATE_LIMITED: "a retry after the provider answered 429",
    WaitReason.CONCURRENCY: "a retry after the provider refused another live call",
    WaitReason.NUMBER_CAP: "the per-number call cap",
    WaitReason.SUBJECT_CAP: "the per-subject call cap",
    WaitReason.REGISTRY_STALE: "a fresh copy of a do-not-call registry",
    WaitReason.CALLER_ID_CAP: "a caller ID of its provider's pool below its cap",
    WaitReason.BUDGET: "room in its campaign's budget",
    WaitReason.PREDIAL: "a retry of the pre-dial check, which did not answer",
    WaitReason.RECONCILE: "a lookup: a call may already exist",
    WaitReason.CRASH: "a retry after the worker failed on it",
    WaitReason.REPLICAS: "a new grant: too few Redis replicas acknowledged the last one in "
                         "time (redis.wait_replicas), so it was not dialled",
}
"""Why a job waits, as what it waits *for* ("waits for the recipient's calling hours")."""
PARKED: dict[str, str] = {WaitReason.HALTED: "its provider is halted",
                          WaitReason.UNKNOWN_PROVIDER: "its provider is not configured"}


@dataclass(frozen=True)
class Why:
    """One reason a job is where it is: a code, a sentence, and what fixes it (if anyone
    must). ``action`` names the console button that fixes it."""

    code: str
    text: str
    until_ms: int | None = None
    fix: str | None = None
    action: dict[str, str] | None = None


@dataclass(frozen=True)
class Facts:
    job_id: str
    job: dict[str, str]
    timeline: list[dict[str, Any]]
    now_ms: int
    configured: bool
    provider: dict[str, Any] | None = None  # Reads.provider_state, windows labelled
    halt: dict[str, str] = field(default_factory=dict)
    campaign_paused: bool = False
    campaign_cancelled: bool = False
    campaign_cap: int | None = None
    campaign_live: int = 0
    position: dict[str, Any] | None = None


@dataclass(frozen=True)
class Explanation:
    job_id: str
    state: str
    provider: str
    campaign: str
    priority: str
    attempts: int
    to: str
    why: Why
    also: list[Why]
    timeline: list[tuple[int, str, str]]  # (ms, event, words)
    now_ms: int
    answer_status: str = ""  # a done job's: human, machine, … ("" when none)
    duration_s: float | None = None  # a done job's call, as the provider reported it

    def to_json(self) -> dict[str, Any]:
        def why(reason: Why) -> dict[str, Any]:
            return {**asdict(reason), "until": iso(reason.until_ms)}
        return {"id": self.job_id, "state": self.state, "provider": self.provider,
                "campaign": self.campaign or None, "priority": self.priority,
                "attempts": self.attempts, "to": self.to, "why": why(self.why),
                "also": [why(w) for w in self.also], "now": iso(self.now_ms),
                "timeline": [{"t": iso(t), "event": e, "text": x} for t, e, x in self.timeline],
                "answer_status": self.answer_status or None, "duration_s": self.duration_s}


# -- reading --------------------------------------------------------------------------------
async def gather(store: Store, settings: Settings, job_id: str) -> Facts | None:
    """Everything ``explain`` needs, read from Redis; None when the id is unknown."""
    job = await store.job_info(job_id)
    if not job:
        return None
    now = await store.server_ms()
    prov, camp = job.get("prov", ""), job.get("camp", "")
    cfg = settings.providers.get(prov)
    pstate = None
    if cfg is not None:
        pstate = await store.provider_state(prov, [(w.limit, w.ms) for w in cfg.windows],
                                            cfg.margin_ms, now)
        for window, state in zip(cfg.windows, pstate["windows"], strict=True):
            state["label"] = window.label()
        pstate["slot_cap"] = cfg.max_concurrent_calls
    paused, cancelled = await store.campaign_flags()
    ccfg = settings.campaigns.get(camp) if camp else None
    cap = ccfg.max_concurrent_calls if ccfg else None
    live = (await store.campaign_stats([camp], now))[camp]["cap_live"] if cap else 0
    position = None
    if job.get(JobField.STATE) == JobState.QUEUED and cfg is not None:
        position = await store.queue_position(prov, job.get("prio") or "normal", camp, job_id)
    return Facts(job_id, job, await store.timeline(job_id), now, cfg is not None, pstate,
                 await store.halt_info(prov) if prov else {}, camp in paused, camp in cancelled,
                 cap, live, position)


# -- words ----------------------------------------------------------------------------------
def clock(ms: int) -> str:
    """'2026-03-02 14:05:09 UTC'."""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def span(ms: int) -> str:
    """A duration in words: '45 s', '3 min 12 s', '2 h 5 min', '3 d 4 h'."""
    if 0 < ms < 500:
        return "<1 s"
    seconds = max(0, round(ms / 1000))
    for unit, size, sub, sub_size in (("d", 86400, "h", 3600), ("h", 3600, "min", 60),
                                      ("min", 60, "s", 1)):
        if seconds >= size:
            rest = (seconds % size) // sub_size
            return f"{seconds // size} {unit}" + (f" {rest} {sub}" if rest else "")
    return f"{seconds} s"


def when(ms: int, now: int) -> str:
    """'14:05:09 UTC (in 3 min 12 s)' / '(5 s ago)'."""
    rel = f"in {span(ms - now)}" if ms >= now else f"{span(now - ms)} ago"
    return f"{clock(ms)} ({rel})"


def _int(value: Any) -> int | None:
    """An integer field as the scripts write it; None when absent or (never expected)
    malformed, so a damaged hash is still explained."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _until(facts: Facts) -> int | None:
    return _int(facts.job.get("wu"))


def _halted(name: str, halt: dict[str, str], now: int) -> Why:
    since = _int(halt.get("since")) or now
    probe = _int(halt.get("probe_at")) or now
    what = scrub_text(f"{halt.get('code') or 'halted'} — {halt.get('reason') or 'no reason'}")
    return Why("halted", f"provider {name} is halted since {when(since, now)}: {what}; "
               f"it probes the account again at {when(probe, now)}", probe,
               fix=f"dispatcher resume {name}", action={"kind": "provider", "name": name})


def _campaign_paused(camp: str) -> Why:
    return Why("campaign_paused", f"campaign {camp} is paused: none of its jobs is dialled "
               "until it is resumed", fix="resume the campaign (console: Campaigns)",
               action={"kind": "campaign", "name": camp})


def _campaign_flags(facts: Facts) -> list[Why]:
    camp = facts.job.get("camp") or ""
    if facts.campaign_cancelled:
        return [Why("campaign_cancelled", f"campaign {camp} was cancelled: its jobs get the "
                    "result 'cancelled'", fix="resume the campaign to accept its jobs again",
                    action={"kind": "campaign", "name": camp})]
    return [_campaign_paused(camp)] if facts.campaign_paused else []


# -- why it waits now, by state -------------------------------------------------------------
def _blocked_by(facts: Facts) -> str | None:
    """The rule that blocked the job, in words, as the grant wrote it in the timeline."""
    for event in reversed(facts.timeline):
        if event.get("e") == "blocked" and event.get("d"):
            return scrub_text(str(event["d"]))
    return None


def _done(facts: Facts) -> list[Why]:
    out = facts.job.get("outcome") or "unknown"
    at = _int(facts.job.get("done_ms")) or None
    tail = f" at {when(at, facts.now_ms)}" if at else ""
    rule = _blocked_by(facts) if out == "blocked" else None
    return [Why(JobState.DONE, f"done: its result is '{out}'{tail}"
                + (f": {rule}" if rule else ""), at)]


def _finishing(facts: Facts) -> list[Why]:
    fin = facts.job.get("fin") or "a result is due"
    rule = _blocked_by(facts) if fin.startswith("blocked:") else None
    return [Why(JobState.FINISHING,
                f"its result is being written ({rule or fin.replace(':', ': ')})")]


def _tracking(facts: Facts) -> list[Why]:
    start = _int(facts.job.get("track_ms")) or None
    since = f" since {when(start, facts.now_ms)}" if start else ""
    return [Why("live", f"its call {facts.job.get('call_id') or '?'} is live{since}; it is "
                "followed until it ends")]


def _dialing(facts: Facts) -> list[Why]:
    at = _int(facts.job.get("dial_ms")) or facts.now_ms
    return [Why("dialling", f"being dialled now by worker {facts.job.get('dialer') or '?'} "
                f"(granted {when(at, facts.now_ms)})")]


def _parked(facts: Facts) -> list[Why]:
    prov = facts.job.get("prov") or "?"
    if facts.job.get(JobField.WAIT_REASON) == WaitReason.UNKNOWN_PROVIDER or not facts.configured:
        return [Why("unknown_provider", f"provider {prov!r} is not configured: the job is "
                    "parked", fix=f"configure provider {prov}, then: dispatcher resume {prov}")]
    if facts.halt:
        return [_halted(prov, facts.halt, facts.now_ms), *_campaign_flags(facts)]
    return [Why(JobState.PARKED, f"parked while provider {prov} was halted; the halt is over "
                "but the job was not sent back", fix=f"dispatcher resume {prov}",
                action={"kind": "provider", "name": prov}), *_campaign_flags(facts)]


def _delayed_text(facts: Facts, wr: str, at: str) -> str:
    detail = scrub_text(facts.job.get("wd") or "")
    last = " ".join(x for x in (facts.job.get("last_status"), facts.job.get("last_code")) if x)
    after = f" (last answer: {last})" if last else ""
    texts: dict[str, str] = {
        WaitReason.WINDOW: f"calling window closed until {detail or at}"
                           + (f", {at}" if detail else ""),
        WaitReason.NOT_BEFORE: f"not before {at}, as the job asked",
        WaitReason.REDIAL: f"next call of its redial rule at {at}"
                           + (f" ({detail})" if detail else ""),
        WaitReason.NUMBER_CAP: f"per-number cap until {at}: this number has had as many calls "
                               "as policy.max_calls_per_number allows"
                               + (f" ({detail})" if detail else ""),
        WaitReason.SUBJECT_CAP: (f"{detail}, next allowed {at}" if detail else
                                 f"per-subject cap until {at}: this subject has had as many "
                                 "calls as policy.max_calls_per_subject allows"),
        WaitReason.REGISTRY_STALE: (
            f"{detail or 'a do-not-call registry covering this number is stale'}:"
            f" held until a fresh copy is imported (looked at again {at})"),
        WaitReason.BUDGET: "its campaign's budget for the day is spent (calls billed and the "
                           f"worst case of its live calls) until {at}",
        WaitReason.CALLER_ID_CAP: f"every caller ID of its provider's pool is at its cap until "
                                  f"{at}",
        WaitReason.RECONCILE: "a call may already exist (its worker stopped mid-request): "
                              f"looked up at {at}",
    }
    if wr in texts:
        return texts[wr]
    why = REASONS.get(wr, wr or "a wait")
    return f"waiting for {why} until {at}{after}" + (f"; {detail}" if detail else "")


def _delayed(facts: Facts) -> list[Why]:
    wr, until = facts.job.get(JobField.WAIT_REASON) or "", _until(facts)
    if until is None:
        return [Why(JobState.DELAYED, f"waiting ({wr or 'no reason recorded'})")]
    code = {str(WaitReason.RATE_LIMITED): "retry", WaitReason.CONCURRENCY: "retry",
            WaitReason.PREDIAL: "retry", WaitReason.CRASH: "retry"}.get(wr, wr or "delayed")
    text = _delayed_text(facts, wr, when(until, facts.now_ms))
    if until <= facts.now_ms:
        text += "; due now, back in line at the next promotion"
    return [Why(code, text, until), *_campaign_flags(facts)]


def _provider_blocks(facts: Facts) -> list[Why]:
    """What stops the provider granting anything now, in the order the grant checks it."""
    provider, prov, now = facts.provider or {}, facts.job.get("prov") or "?", facts.now_ms
    out = []
    if provider.get("cooldown_ms"):
        until = now + int(provider["cooldown_ms"])
        out.append(Why("cooldown", f"provider {prov} is cooling down after a 429 until "
                       f"{when(until, now)}", until))
    for window in provider.get("windows", []):
        hint = window.get("provider_remaining")
        if window["used"] >= window["limit"] or (hint is not None and hint <= 0):
            until = now + int(window["resets_in_ms"])
            out.append(Why("window_full", f"{window['label']} window of provider {prov} full "
                           f"({window['used']} of {window['limit']} used) until "
                           f"{when(until, now)}, when its oldest request leaves it", until))
    cap = _slot_cap(provider)
    if cap and provider["slots_in_use"] >= cap:
        out.append(Why("slots_full", f"call slots full: {provider['slots_in_use']} of {cap} "
                       f"live calls on provider {prov}; a slot frees when a call ends"))
    return out


def _slot_cap(provider: dict[str, Any]) -> int | None:
    cap, shrunk = provider.get("slot_cap"), provider.get("slot_cap_shrunk_to")
    return min(cap, shrunk) if cap and shrunk else cap


def _position(facts: Facts) -> Why:
    pos = facts.position or {}
    ahead = pos.get("ahead")
    higher, others = int(pos.get("higher") or 0), int(pos.get("other_campaigns") or 0)
    camp = facts.job.get("camp") or ""
    if higher + (ahead or 0) == 0 and ahead is not None and others == 0:
        return Why("next", "next in line: it goes with the provider's next grant")
    total = f"{higher + ahead}" if ahead is not None else f"more than {higher + 200_000}"
    parts = [f"{higher} at a higher priority"] if higher else []
    where = f"campaign {camp}" if camp else "its list"
    parts.append(f"{ahead if ahead is not None else 'over 200000'} ahead of it in {where}")
    if others:
        parts.append(f"taking turns with {others} other campaign(s) at priority "
                     f"{facts.job.get('prio') or 'normal'} ({pos.get('other_ready', 0)} ready)")
    return Why(JobState.QUEUED, f"queued behind {total} others ({'; '.join(parts)})")


def _queued(facts: Facts) -> list[Why]:
    prov = facts.job.get("prov") or "?"
    if not facts.configured:
        return [Why("unknown_provider", f"provider {prov!r} is not configured",
                    fix=f"configure provider {prov}, then: dispatcher resume {prov}")]
    flags = _campaign_flags(facts)
    out = [_halted(prov, facts.halt, facts.now_ms)] if facts.halt else []
    out += flags + _provider_blocks(facts)
    if facts.campaign_cap and facts.campaign_live >= facts.campaign_cap:
        out.append(Why("campaign_cap", f"campaign {facts.job.get('camp')} is at its call cap "
                       f"({facts.campaign_live} of {facts.campaign_cap} live calls)"))
    if not flags:  # its place in line means nothing while its campaign is held
        out.append(_position(facts))
    return out


STATES: dict[str, Callable[[Facts], list[Why]]] = {
    JobState.DONE: _done, JobState.FINISHING: _finishing, JobState.TRACKING: _tracking,
    JobState.DIALING: _dialing, JobState.PARKED: _parked, JobState.DELAYED: _delayed,
    JobState.QUEUED: _queued,
}


def why_now(facts: Facts) -> list[Why]:
    """The reasons, the one that matters most first."""
    state = facts.job.get(JobField.STATE) or JobState.NEW
    fn = STATES.get(state)
    if fn is not None:
        return fn(facts)
    if state == JobState.ORPHANED:
        return [Why(JobState.ORPHANED, "its payload was lost: it cannot be sent",
                    fix="enqueue the job again")]
    return [Why(state, "just read from the stream: being placed")]


# -- the timeline ---------------------------------------------------------------------------
def event_words(event: dict[str, Any]) -> str:
    """One timeline entry in words."""
    kind = event.get("e")
    due = event.get("u")
    until = f" until {clock(int(due))}" if isinstance(due, int | float) and due else ""
    detail = f" — {scrub_text(str(event['d']))}" if event.get("d") else ""
    reason = str(event.get("r") or "")
    texts = {
        "claimed": f"read from the stream (entry {event.get('entry')})",
        "waiting": f"waits for {REASONS.get(reason, reason or 'no reason')}{until}{detail}",
        "parked": f"parked: {PARKED.get(reason, reason or 'no reason')}{detail}",
        "blocked": f"blocked ({reason}){detail}",
        "granted": f"granted call #{event.get('call')} to worker {event.get('w')}"
                   + (" as the halt probe" if event.get("canary") else ""),
        "dialled": f"call #{event.get('call')} started: {event.get('call_id')}",
        "webhook": f"webhook from the provider: {event.get('event')}",
        "taken_over": f"worker {event.get('from')} stopped while dialling; its call is looked up",
        "cancel_requested": "cancel requested",
        "resumed": "back in line: its provider was resumed",
        "result": f"result written: {event.get('outcome')}",
    }
    if kind in texts:
        return texts[str(kind)]
    rest = {k: v for k, v in event.items() if k not in ("t", "e")}
    return f"{kind} {json.dumps(clean_field(str(kind), rest), sort_keys=True)}" if rest \
        else str(kind)


def explain(facts: Facts, *, show_numbers: bool = False) -> Explanation:
    """Facts -> words. ``show_numbers``: the number to call unmasked."""
    reasons = why_now(facts)
    to = facts.job.get("to") or ""
    return Explanation(
        facts.job_id, facts.job.get(JobField.STATE) or JobState.NEW, facts.job.get("prov") or "",
        facts.job.get("camp") or "", facts.job.get("prio") or "normal",
        _int(facts.job.get("attempts")) or 0, to if show_numbers else mask_number(to),
        reasons[0], reasons[1:],
        [(_int(e.get("t")) or 0, str(e.get("e")), event_words(e)) for e in facts.timeline],
        facts.now_ms, facts.job.get("answer") or "", _float(facts.job.get("dur")))


def _float(value: Any) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except ValueError:
        return None


def render(explanation: Explanation) -> str:
    camp = f", campaign {explanation.campaign}" if explanation.campaign else ""
    lines = [f"job {explanation.job_id}: {explanation.state} — provider "
             f"{explanation.provider or '?'}{camp}, priority {explanation.priority}, "
             f"{explanation.attempts} attempt(s), to {explanation.to or '?'}"]
    for stamp, _, words in explanation.timeline:
        lines.append(f"  {clock(stamp)}  {words}")
    lines.append(f"now ({clock(explanation.now_ms)}): {explanation.why.text}")
    if explanation.why.fix:
        lines.append(f"  fix: {explanation.why.fix}")
    for reason in explanation.also:
        lines.append(f"also: {reason.text}" + (f" — fix: {reason.fix}" if reason.fix else ""))
    return "\n".join(lines)
