"""What each console page shows, read from Redis (the views turn it into HTML)."""

from __future__ import annotations

from typing import Any

from dispatcher.config.settings import Settings
from dispatcher.console.tail import FAILURES, ResultsTail
from dispatcher.core.model import JobState
from dispatcher.core.policies import registry_states
from dispatcher.ops import status
from dispatcher.store import Store

PACE_S = 300
CAMPAIGN_ROWS = 100


async def overview(store: Store, settings: Settings, tail: ResultsTail) -> dict[str, Any]:
    snapshot = await status.collect(store, settings)
    now = await store.server_ms()
    await tail.refresh(now)
    hour = tail.totals(now)
    paused, _ = await store.campaign_flags()
    loaded = await store.registries() if settings.policy.registries else {}
    return {
        "stale_registries": [r.words() for r in registry_states(settings.policy, loaded, now)
                             if r.stale],
        "status": snapshot, "now": now, "results_hour": hour,
        "per_minute": tail.per_minute(now),
        "failures_hour": sum(v for k, v in hour.items() if k in FAILURES),
        "starts_per_min": await store.pace(None, now, 60),
        "results_per_min": round(sum(tail.totals(now, 300_000).values()) / 5, 1),
        "halted": [n for n, p in snapshot["providers"].items() if p["halted"]],
        "parked": {n: p["parked"] for n, p in snapshot["providers"].items() if p["parked"]},
        "paused": sorted(paused),
    }


async def providers(store: Store, settings: Settings) -> dict[str, Any]:
    snapshot = await status.collect(store, settings)
    return {"now": await store.server_ms(), "providers": snapshot["providers"]}


def _no_eta(state: str, parked: int, halted: list[str]) -> str:
    """Why a campaign has no ETA now ("" when it has one): its pace says nothing of when a
    paused campaign or one whose jobs wait for a halted provider will finish."""
    if state in ("paused", "cancelled"):
        return state
    if parked and halted:
        return "provider halted"
    return ""


def _campaign_row(name: str, st: dict[str, Any], settings: Settings, paused: set[str],
                  cancelled: set[str], halted: list[str]) -> dict[str, Any]:
    counts = st["counts"]
    outcomes = {k[2:]: v for k, v in counts.items() if k.startswith("o:") and v}
    total, done = counts.get("total", 0), sum(outcomes.values())
    remaining = max(0, total - done)
    pace = st["starts"] / (PACE_S / 60)
    cfg = settings.campaigns.get(name)
    state = ("cancelled" if name in cancelled else "paused" if name in paused
             else "done" if total and not remaining else "active")
    return {
        "name": name, "state": state, "total": total, "done": done, "remaining": remaining,
        "outcomes": outcomes, "queued": counts.get(JobState.QUEUED, 0),
        "waiting": counts.get(JobState.DELAYED, 0) + counts.get(JobState.PARKED, 0),
        "dialing": counts.get(JobState.DIALING, 0),
        "live": counts.get("live", 0), "finishing": counts.get(JobState.FINISHING, 0),
        "pace_per_min": round(pace, 1),
        "no_eta": _no_eta(state, counts.get(JobState.PARKED, 0), halted),
        "eta_s": round(remaining / pace * 60) if pace > 0 and remaining
        and not _no_eta(state, counts.get(JobState.PARKED, 0), halted) else None,
        "cap": cfg.max_concurrent_calls if cfg else None, "cap_live": st["cap_live"],
        "share": cfg.share if cfg else 1.0,
    }


async def campaigns(store: Store, settings: Settings) -> dict[str, Any]:
    """The most recently active campaigns, then any configured one not seen yet."""
    now = await store.server_ms()
    names = await store.campaign_registry(CAMPAIGN_ROWS)
    names += [n for n in settings.campaigns if n not in names]
    stats = await store.campaign_stats(names, now, PACE_S)
    paused, cancelled = await store.campaign_flags()
    halted = [p for p in settings.providers if await store.halt_info(p)]
    return {"now": now, "campaigns": [_campaign_row(n, stats[n], settings, paused, cancelled,
                                                    halted) for n in names]}


async def known_campaign(store: Store, settings: Settings, name: str) -> bool:
    if name in settings.campaigns:
        return True
    return await store.campaign_known(name)
