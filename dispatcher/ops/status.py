"""``dispatcher status``: what the deployment is doing, read straight from Redis."""

from __future__ import annotations

from typing import Any

from dispatcher.config.settings import Settings
from dispatcher.core.limits import Window
from dispatcher.core.model import JobState
from dispatcher.core.workers import is_alive
from dispatcher.store.callerids import CallerIdHealth
from dispatcher.store.ports import OperatorReads

WAIT_PREFIX = "w:"


async def collect(store: OperatorReads, settings: Settings) -> dict[str, Any]:
    """Every number is an int (0 before the first worker has created anything)."""
    now = await store.server_ms()
    counts, parked = await store.counts_and_parked(list(settings.providers))
    sizes = await store.queue_sizes(now)
    backlog = await store.backlog()
    out: dict[str, Any] = {
        "namespace": settings.redis.namespace,
        "unread": backlog["unread"],
        "queued": counts.get(JobState.QUEUED, 0),
        "waiting": counts.get(JobState.DELAYED, 0) + counts.get(JobState.PARKED, 0),
        "waiting_by_reason": waiting_by_reason(counts),
        "delayed": counts.get(JobState.DELAYED, 0),
        "delayed_due": sizes["delayed_due"],
        "parked": counts.get(JobState.PARKED, 0),
        "dialing": counts.get(JobState.DIALING, 0),
        "tracking": counts.get("live", 0),
        "finishing": counts.get(JobState.FINISHING, 0),
        "results": sizes["results"],
        "orphans": sizes["orphans"],
        "in_flight": backlog["pending"] + counts.get(JobState.DIALING, 0),
        "consumers": await consumers(store, now, settings.worker.dead_after_s * 1000),
        "dead_after_ms": round(settings.worker.dead_after_s * 1000),
    }
    out["live_workers"] = sum(1 for c in out["consumers"] if c["alive"])
    provs = {}
    for name, provider in settings.providers.items():
        ov = await store.limits_get(name)  # `dispatcher limits set` replaces the file's
        windows, margin, cap = ov.in_force(provider.windows, provider.margin_ms,
                                           provider.max_concurrent_calls)
        st = await store.provider_state(name, [(w.limit, w.ms) for w in windows], margin, now)
        provs[name] = _provider(provider.kind, cap, windows, {**st, "parked": parked[name]}, now)
        provs[name]["state"] = provider_state(provs[name], out["live_workers"])
        provs[name]["limits_set_at_runtime"] = bool(ov.windows or ov.slots is not None)
        if provider.caller_ids:
            provs[name]["caller_ids"] = pool_summary(
                await store.caller_id_health(name, provider.caller_ids.keys()))
    out["providers"] = provs
    out["unconfigured"] = await store.unconfigured_parked(set(settings.providers))
    return out


def waiting_by_reason(counts: dict[str, int]) -> dict[str, int]:
    return {k[len(WAIT_PREFIX):]: v for k, v in sorted(counts.items())
            if k.startswith(WAIT_PREFIX) and v}


def provider_state(provider: dict[str, Any], live_workers: int) -> str:
    """What a provider's badge says: nothing runs, whatever its budget, without a worker."""
    if provider["halted"]:
        return "halted"
    if not live_workers:
        return "no live worker"
    return "cooling down" if provider["cooldown_s"] else "running"


async def consumers(store: OperatorReads, now: int, dead_after_ms: float
                    ) -> list[dict[str, Any]]:
    """Workers by their last heartbeat (the heartbeat registry), alive or dead by the rule
    the takeover applies, with what the stream's consumer group says of each: entries read
    and not yet ingested, idle time."""
    group = {c["name"]: c for c in (await store.group_info()).get("consumers", [])}
    out = []
    for name, beat in await store.consumer_beats():
        info = group.pop(name, {})
        out.append({"name": name, "last_heartbeat_s": round((now - beat) / 1000, 1),
                    "alive": is_alive(now, beat, dead_after_ms),
                    "pending": int(info.get("pending") or 0),
                    "idle_ms": int(info.get("idle_ms") or 0)})
    for name, info in group.items():
        out.append({"name": name, "last_heartbeat_s": None, "alive": False,
                    "pending": int(info["pending"] or 0), "idle_ms": int(info["idle_ms"] or 0)})
    return out


def no_live_worker(status: dict[str, Any]) -> str:
    """The fleet alarm's words ("" while a worker lives)."""
    if status["live_workers"]:
        return ""
    if not status["consumers"]:
        return "NO LIVE WORKER: no worker has sent a heartbeat; nothing is dialled"
    return (f"NO LIVE WORKER: every worker's last heartbeat is older than "
            f"worker.dead_after_s ({status['dead_after_ms'] / 1000:g} s); nothing is dialled "
            f"until one starts")


def _provider(kind: str, cap: int | None, windows: list[Window], st: dict[str, Any],
              now: int) -> dict[str, Any]:
    halt = st["halt"]
    wins = []
    for window, state in zip(windows, st["windows"], strict=True):
        wins.append({"window": window.label(), "limit": window.limit, "used": state["used"],
                     "tokens_left": max(0, window.limit - state["used"]),
                     "provider_remaining": state["provider_remaining"],
                     "resets_in_s": round(state["resets_in_ms"] / 1000, 1)})
    return {
        "kind": kind, "windows": wins, "cooldown_s": round(st["cooldown_ms"] / 1000, 3),
        "slots_in_use": st["slots_in_use"], "slot_cap": cap,
        "slot_cap_shrunk_to": st["slot_cap_shrunk_to"], "halted": bool(halt),
        "halt": {"reason": halt.get("reason"), "code": halt.get("code"),
                 "since_ms": int(halt.get("since", now)),
                 "since_s": round((now - int(halt.get("since", now))) / 1000, 1),
                 "next_probe_s": round(max(0, int(halt.get("probe_at", now)) - now) / 1000, 1)}
        if halt else None,
        "parked": st["parked"],
    }


def render(status: dict[str, Any]) -> str:
    waits = ", ".join(f"{k} {v}" for k, v in status["waiting_by_reason"].items()) or "none"
    lines = [f"namespace {status['namespace']}: unread {status['unread']}, "
             f"queued {status['queued']}, waiting {status['waiting']} ({waits}), "
             f"dialling {status['dialing']}, tracking {status['tracking']} calls, "
             f"results {status['results']}"]
    if no_live_worker(status):
        lines.append(no_live_worker(status))
    lines.append("consumers: " + (", ".join(_consumer(c) for c in status["consumers"])
                                  or "none (no worker has started)"))
    if status.get("orphans"):
        lines.append(f"WARNING {status['orphans']} jobs lost their payload and cannot be sent "
                     f"(ids in {{{status['namespace']}}}:orphans); re-enqueue them")
    for name, provider in status["providers"].items():
        lines += _render_provider(name, provider)
    for name, parked in status.get("unconfigured", {}).items():
        lines.append(f"provider {name}: NOT CONFIGURED; {parked} jobs parked for it; configure it, "
                     f"then: dispatcher resume {name}")
    return "\n".join(lines)


def _consumer(consumer: dict[str, Any]) -> str:
    beat = ("no heartbeat" if consumer["last_heartbeat_s"] is None
            else f"last heartbeat {consumer['last_heartbeat_s']:.1f} s ago")
    alive = "alive" if consumer["alive"] else "DEAD"
    return f"{consumer['name']} ({alive}, {beat}, pending {consumer['pending']})"


def pool_summary(items: list[CallerIdHealth]) -> dict[str, Any]:
    calls, answered = sum(h.calls for h in items), sum(h.answered for h in items)
    return {"size": len(items), "calls": calls, "answered": answered,
            "flagged": [h.caller_id for h in items if h.flagged_since_ms is not None],
            "rested": [h.caller_id for h in items if h.rested]}


def _render_provider(name: str, provider: dict[str, Any]) -> list[str]:
    state = "HALTED" if provider["halted"] else provider["state"]
    lines = [f"provider {name} ({provider['kind']}): {state}"
             + (" — limits set at runtime (dispatcher limits show "
                f"{name})" if provider.get("limits_set_at_runtime") else "")]
    if provider["halt"]:
        halt = provider["halt"]
        lines.append(f"  halted {halt['since_s']} s ago: {halt['code']} — {halt['reason']}; "
                     f"next probe in {halt['next_probe_s']} s; {provider['parked']} jobs parked; "
                     f"resume with: dispatcher resume {name}")
    elif provider["parked"]:
        lines.append(f"  {provider['parked']} jobs parked; resume with: dispatcher resume {name}")
    for window in provider["windows"]:
        extra = (f", provider says {window['provider_remaining']} left"
                 if window["provider_remaining"] is not None else "")
        lines.append(f"  window {window['window']}: {window['used']} used, "
                     f"{window['tokens_left']} left{extra}")
    lines.append(f"  cooldown {provider['cooldown_s']} s; call slots {provider['slots_in_use']}/"
                 f"{provider['slot_cap'] or '∞'}"
                 + (f" (shrunk to {provider['slot_cap_shrunk_to']})"
                    if provider["slot_cap_shrunk_to"] else ""))
    pool = provider.get("caller_ids")
    if pool:
        rate = f", {pool['answered'] / pool['calls']:.0%} answered" if pool["calls"] else ""
        lines.append(f"  caller IDs {pool['size']}: {pool['calls']} calls{rate}"
                     + (f"; flagged {', '.join(pool['flagged'])}" if pool["flagged"] else "")
                     + (f"; rested {', '.join(pool['rested'])}" if pool["rested"] else "")
                     + f" (dispatcher callerid list {name})")
    return lines
