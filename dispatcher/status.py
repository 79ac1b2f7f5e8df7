"""``dispatcher status``: what the deployment is doing, read straight from Redis."""

from __future__ import annotations

from typing import Any

from dispatcher.config import Settings
from dispatcher.limits import Window
from dispatcher.store import Store

WAIT_PREFIX = "w:"


async def collect(store: Store, settings: Settings) -> dict[str, Any]:
    now = await store.server_ms()
    counts = await store.counts()
    sizes = await store.queue_sizes(now)
    group = await store.group_info()
    out: dict[str, Any] = {
        "namespace": settings.redis.namespace,
        "unread": int(group.get("lag") or 0),
        "queued": counts.get("queued", 0),
        "waiting": counts.get("delayed", 0) + counts.get("parked", 0),
        "waiting_by_reason": {k[len(WAIT_PREFIX):]: v for k, v in sorted(counts.items())
                              if k.startswith(WAIT_PREFIX) and v},
        "delayed": counts.get("delayed", 0),
        "delayed_due": sizes["delayed_due"],
        "dialing": counts.get("dialing", 0),
        "tracking": counts.get("live", 0),
        "finishing": counts.get("finishing", 0),
        "results": sizes["results"],
        "orphans": sizes["orphans"],
        "in_flight": int(group.get("pending") or 0) + counts.get("dialing", 0),
        "consumers": group.get("consumers", []),
    }
    provs = {}
    for name, p in settings.providers.items():
        windows = p.windows
        margin = round(p.send_margin_s * 1000)
        st = await store.provider_state(name, [(w.limit, w.ms) for w in windows], margin, now)
        provs[name] = _provider(p.kind, p.max_concurrent_calls, windows, st, now)
    out["providers"] = provs
    return out


def _provider(kind: str, cap: int | None, windows: list[Window], st: dict[str, Any],
              now: int) -> dict[str, Any]:
    halt = st["halt"]
    wins = []
    for w, s in zip(windows, st["windows"], strict=True):
        wins.append({"window": w.label(), "used": s["used"],
                     "tokens_left": max(0, w.limit - s["used"]),
                     "provider_remaining": s["provider_remaining"],
                     "resets_in_s": round(s["resets_in_ms"] / 1000, 1)})
    return {
        "kind": kind, "windows": wins, "cooldown_s": round(st["cooldown_ms"] / 1000, 3),
        "slots_in_use": st["slots_in_use"], "slot_cap": cap,
        "slot_cap_shrunk_to": st["slot_cap_shrunk_to"], "halted": bool(halt),
        "halt": {"reason": halt.get("reason"), "code": halt.get("code"),
                 "since_s": round((now - int(halt.get("since", now))) / 1000, 1),
                 "next_probe_s": round(max(0, int(halt.get("probe_at", now)) - now) / 1000, 1)}
        if halt else None,
        "parked": st["parked"],
    }


def render(s: dict[str, Any]) -> str:
    waits = ", ".join(f"{k} {v}" for k, v in s["waiting_by_reason"].items()) or "none"
    lines = [f"namespace {s['namespace']}: unread {s['unread']}, queued {s['queued']}, "
             f"waiting {s['waiting']} ({waits}), dialling {s['dialing']}, "
             f"tracking {s['tracking']} calls, results {s['results']}"]
    if s["consumers"]:
        lines.append("consumers: " + ", ".join(
            f"{c['name']} (pending {c['pending']}, idle {c['idle_ms'] / 1000:.1f} s)"
            for c in s["consumers"]))
    if s.get("orphans"):
        lines.append(f"WARNING {s['orphans']} jobs lost their payload and cannot be sent "
                     f"(ids in {{{s['namespace']}}}:orphans); re-enqueue them")
    for name, p in s["providers"].items():
        state = "HALTED" if p["halted"] else "running"
        lines.append(f"provider {name} ({p['kind']}): {state}")
        if p["halt"]:
            h = p["halt"]
            lines.append(f"  halted {h['since_s']} s ago: {h['code']} — {h['reason']}; "
                         f"next probe in {h['next_probe_s']} s; {p['parked']} jobs parked; "
                         f"resume with: dispatcher resume {name}")
        elif p["parked"]:
            lines.append(f"  {p['parked']} jobs parked; resume with: dispatcher resume {name}")
        for w in p["windows"]:
            extra = (f", provider says {w['provider_remaining']} left"
                     if w["provider_remaining"] is not None else "")
            lines.append(f"  window {w['window']}: {w['used']} used, {w['tokens_left']} left"
                         + extra)
        lines.append(f"  cooldown {p['cooldown_s']} s; call slots {p['slots_in_use']}/"
                     f"{p['slot_cap'] or '∞'}"
                     + (f" (shrunk to {p['slot_cap_shrunk_to']})" if p["slot_cap_shrunk_to"]
                        else ""))
    return "\n".join(lines)
