"""Campaigns as an operator sees them: pause, resume and cancel, and each campaign's live
counts, pace and ETA. Shared by the command line, the Python client and the console.

The counts are the per-campaign hashes the scripts keep in step with every job's state; this
module only reads them (one hash per campaign), it never scans jobs.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from dispatcher.core.budgets import MICRO, budget_day, parse_budget
from dispatcher.core.model import JobState
from dispatcher.store import Store
from dispatcher.store.keys import PRIORITIES

Op = Literal["pause", "resume", "cancel"]
OPS: tuple[Op, ...] = ("pause", "resume", "cancel")
PACE_WINDOW_S = 60
WAIT_PREFIX, OUTCOME_PREFIX, ANSWER_PREFIX = "w:", "o:", "a:"


@dataclass(frozen=True)
class CampaignStatus:
    """One campaign now. ``remaining`` counts the jobs that still need a dial; jobs pushed
    but not yet read by a worker are not counted anywhere until they are read."""

    name: str
    paused: bool = False
    cancelled: bool = False
    jobs: int = 0                    # jobs read so far (each id once)
    queued: int = 0                  # ready, waiting only for the provider's budget
    waiting: int = 0                 # waiting for a time or a condition (by reason below)
    waiting_by_reason: dict[str, int] = field(default_factory=dict)
    dialing: int = 0
    live: int = 0                    # calls in progress, followed to their end
    finishing: int = 0               # result decided, being written
    done: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    answers: dict[str, int] = field(default_factory=dict)
    calls: int = 0                   # calls started (a job may make several)
    pace_per_min: int = 0            # dials granted over the last minute
    eta_s: float | None = None       # at the current pace; None: paused or no pace

    @property
    def remaining(self) -> int:
        return self.queued + self.waiting + self.dialing

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "remaining": self.remaining}


def _prefixed(counts: Mapping[str, int], prefix: str) -> dict[str, int]:
    return {k[len(prefix):]: v for k, v in sorted(counts.items())
            if k.startswith(prefix) and v}


def eta_seconds(remaining: int, pace_per_min: int, paused: bool) -> float | None:
    """Time to dial what is left at the pace of the last minute; None when it cannot move."""
    if remaining <= 0:
        return 0.0
    if paused or pace_per_min <= 0:
        return None
    return round(remaining * 60 / pace_per_min, 1)


def status_from(name: str, counts: Mapping[str, int], *, paused: bool, cancelled: bool,
                pace_per_min: int) -> CampaignStatus:
    """Build the status from a campaign's counter hash (pure)."""
    count_of = counts.get
    outcomes = _prefixed(counts, OUTCOME_PREFIX)
    waiting = count_of(JobState.DELAYED, 0) + count_of(JobState.PARKED, 0)
    remaining = count_of(JobState.QUEUED, 0) + waiting + count_of(JobState.DIALING, 0)
    return CampaignStatus(
        name=name, paused=paused, cancelled=cancelled, jobs=count_of("total", 0),
        queued=count_of(JobState.QUEUED, 0), waiting=waiting,
        waiting_by_reason=_prefixed(counts, WAIT_PREFIX), dialing=count_of(JobState.DIALING, 0),
        live=count_of("live", 0), finishing=count_of(JobState.FINISHING, 0),
        done=sum(outcomes.values()), outcomes=outcomes,
        answers=_prefixed(counts, ANSWER_PREFIX), calls=count_of("calls", 0),
        pace_per_min=pace_per_min,
        eta_s=eta_seconds(remaining, pace_per_min, paused))


async def names(store: Store) -> list[str]:
    """Every campaign seen (a job read, or a control used), oldest first."""
    return await store.campaign_names()


async def status(store: Store, name: str) -> CampaignStatus | None:
    """The campaign's status; None when no job of it was ever read and no control used."""
    if name not in set(await store.campaign_names()):
        return None
    return (await statuses(store, [name]))[0]


async def statuses(store: Store, only: Sequence[str] | None = None) -> list[CampaignStatus]:
    now = await store.server_ms()
    paused, cancelled = await store.campaign_flags()
    out = []
    for name in (await store.campaign_names()) if only is None else only:
        out.append(status_from(name, await store.counts(name), paused=name in paused,
                               cancelled=name in cancelled,
                               pace_per_min=await store.pace(name, now, PACE_WINDOW_S)))
    return out


async def ready_providers(store: Store) -> set[str]:
    """Providers that have ready lists now, found by key name (a rare fallback for cancel when
    the caller does not know the workers' configuration)."""
    return await store.provider_names_with_ready_lists(PRIORITIES)


async def control(store: Store, op: Op, name: str, providers: Iterable[str] = ()) -> int:
    """Pause, resume or cancel a campaign; returns the jobs cancelled (0 for pause/resume).

    Cancel empties the campaign's ready lists of ``providers`` and every delayed or parked
    job; when ready jobs are left (a provider the caller did not name), the providers that
    have ready lists are looked up and the cancel runs again for them. Any job still on its
    way (being dialled when the cancel ran, then deferred) is cancelled when it reaches the
    head of the line.
    """
    if op not in OPS:
        raise ValueError(f"campaign operation must be one of {OPS}, got {op!r}")
    provs = sorted(set(providers))
    total = await store.campaign(op, name, provs)
    if op == "cancel" and (await store.counts(name)).get(JobState.QUEUED, 0) > 0:
        others = sorted(await ready_providers(store) - set(provs))
        if others:
            total += await store.campaign(op, name, others)
    return total


# -- text for people ----------------------------------------------------------------------------

def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    total = int(seconds)
    if total < 60:
        return f"{total}s"
    if total < 3600:
        return f"{total // 60}m{total % 60:02d}s"
    return f"{total // 3600}h{total % 3600 // 60:02d}m"


def _state(status: CampaignStatus) -> str:
    if status.cancelled:
        return "cancelled"
    if status.paused:
        return "paused"
    return "active" if status.remaining or status.live or status.finishing else "idle"


def _pairs(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items()) or "none"


def render_list(items: Sequence[CampaignStatus]) -> str:
    if not items:
        return "no campaigns yet"
    width = max(8, *(len(s.name) for s in items))
    head = (f"{'CAMPAIGN':<{width}}  {'STATE':<9} {'QUEUED':>7} {'WAITING':>7} "
            f"{'LIVE':>5} {'DONE':>7} {'CALLS':>7} {'PACE/MIN':>8}  ETA")
    rows = [f"{s.name:<{width}}  {_state(s):<9} {s.queued:>7} {s.waiting:>7} {s.live:>5} "
            f"{s.done:>7} {s.calls:>7} {s.pace_per_min:>8}  {_duration(s.eta_s)}"
            for s in items]
    return "\n".join([head, *rows])


async def spend(store: Store, name: str, budget: str, tz: str) -> dict[str, Any]:
    """Today's spend of a campaign with a budget: billed, its live calls' worst case, left."""
    day, _ = budget_day(round(time.time() * 1000), tz)
    billed, live = await store.spend(name, day)
    total = parse_budget(budget)
    return {"day": day, "budget": total / MICRO, "billed": billed / MICRO,
            "live_worst_case": live / MICRO, "left": max(0, total - billed - live) / MICRO}


def render_spend(sp: dict[str, Any]) -> str:
    return (f"\n  spend {sp['day']}: {sp['billed']:g} billed + {sp['live_worst_case']:g} live "
            f"(worst case) of {sp['budget']:g}; {sp['left']:g} left")


def render_status(status: CampaignStatus) -> str:
    return "\n".join([
        f"campaign {status.name}: {_state(status)}",
        f"  jobs read    {status.jobs}",
        f"  queued       {status.queued}",
        f"  waiting      {status.waiting} ({_pairs(status.waiting_by_reason)})",
        f"  dialling     {status.dialing}",
        f"  live calls   {status.live}",
        f"  results      {status.done} ({_pairs(status.outcomes)})",
        f"  answers      {_pairs(status.answers)}",
        f"  calls made   {status.calls}",
        f"  pace         {status.pace_per_min}/min over the last minute",
        f"  ETA          {_duration(status.eta_s)}"
        + (" (paused)" if status.paused and status.remaining else ""),
    ])
