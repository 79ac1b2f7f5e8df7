"""``dispatcher status``: what the deployment is doing, read straight from Redis."""

from __future__ import annotations

from typing import Any

from redis.exceptions import ResponseError

from dispatcher.config import Settings
from dispatcher.keys import GROUP
from dispatcher.store import Store


async def collect(store: Store, settings: Settings) -> dict[str, Any]:
    r, k = store.r, store.k
    now = await store.server_ms()
    out: dict[str, Any] = {"namespace": settings.redis.namespace}
    out["stream_length"] = await r.xlen(k.jobs)
    try:
        groups = await r.xinfo_groups(k.jobs)
    except ResponseError:
        groups = []
    g = next((x for x in groups if x.get("name") == GROUP), {})
    out["queued"] = g.get("lag")
    out["in_flight"] = g.get("pending", 0)
    out["consumers"] = g.get("consumers", 0)
    out["delayed"] = await r.zcard(k.delayed)
    out["delayed_due"] = await r.zcount(k.delayed, "-inf", now)
    out["tracking"] = await r.zcard(k.tracking)
    out["results"] = await r.xlen(k.results)
    out["orphans"] = await r.scard(k.orphans)
    provs = {}
    for name, p in settings.providers.items():
        margin = round(p.send_margin_s * 1000)
        windows = []
        for w in p.windows:
            used = await r.zcount(k.rate_log(name), f"({now - w.ms - margin}", "+inf")
            hint = await r.get(k.rate_hint(name, w.ms))
            windows.append({"window": w.label(), "used": used,
                            "tokens_left": max(0, w.limit - used),
                            "provider_remaining": None if hint is None else int(hint)})
        cd = float(await r.get(k.cooldown(name)) or 0)
        halt = await store.halt_info(name)
        slots = await r.zcount(k.slots(name), now, "+inf")
        cap = await r.get(k.slot_cap(name))
        provs[name] = {
            "kind": p.kind, "windows": windows,
            "cooldown_s": round(max(0.0, cd - now) / 1000, 3),
            "slots_in_use": slots, "slot_cap": p.max_concurrent_calls,
            "slot_cap_shrunk_to": None if cap is None else int(cap),
            "halted": bool(halt),
            "halt": {"reason": halt.get("reason"), "code": halt.get("code"),
                     "since_s": round((now - int(halt.get("since", now))) / 1000, 1),
                     "next_probe_s": round(max(0, int(halt.get("probe_at", now)) - now) / 1000, 1)}
            if halt else None,
            "parked": await r.zcard(k.parked(name)),
        }
    out["providers"] = provs
    return out


def render(s: dict[str, Any]) -> str:
    lines = [f"namespace {s['namespace']}: queued {s['queued']}, in flight {s['in_flight']} "
             f"({s['consumers']} consumers), delayed {s['delayed']} ({s['delayed_due']} due), "
             f"tracking {s['tracking']} calls, results {s['results']}"]
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
