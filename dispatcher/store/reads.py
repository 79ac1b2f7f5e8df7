"""Reading state for people: status, the console, metrics and ``explain``. Reads only."""

from __future__ import annotations

import json
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from dispatcher import keys as K


class Reads:
    r: aioredis.Redis
    k: K.Keys

    async def server_ms(self) -> int:
        t = await self.r.time()
        return int(t[0]) * 1000 + int(t[1]) // 1000

    async def _hash(self, key: str) -> dict[str, str]:
        raw: Any = await self.r.hgetall(key)
        return {str(k): str(v) for k, v in raw.items()}

    async def job_info(self, job_id: str) -> dict[str, str]:
        return await self._hash(self.k.job(job_id))

    async def timeline(self, job_id: str) -> list[dict[str, Any]]:
        return [json.loads(x) for x in await self.r.lrange(self.k.timeline(job_id), 0, -1)]

    async def halt_info(self, provider: str) -> dict[str, str]:
        return await self._hash(self.k.halt(provider))

    async def counts(self, campaign: str | None = None) -> dict[str, int]:
        key = self.k.campaign(campaign) if campaign else self.k.counts
        return {k: int(v) for k, v in (await self._hash(key)).items()
                if v.lstrip("-").isdigit()}

    async def group_info(self) -> dict[str, Any]:
        """The consumer group: lag, pending, consumers with their idle time (empty if none)."""
        try:
            groups: Any = await self.r.xinfo_groups(self.k.jobs)
        except ResponseError:
            return {}
        g = next((x for x in groups if x.get("name") == K.GROUP), None)
        if g is None:
            return {}
        consumers: Any = await self.r.xinfo_consumers(self.k.jobs, K.GROUP)
        scored: Any = await self.r.zrange(self.k.consumers, 0, -1, withscores=True)
        beats = {str(m): float(s) for m, s in scored}
        return {"lag": g.get("lag") or 0, "pending": g.get("pending") or 0,
                "consumers": [{"name": c["name"], "pending": c["pending"],
                               "idle_ms": c["idle"],
                               "last_heartbeat_ms": int(beats.get(c["name"], 0)) or None}
                              for c in consumers]}

    async def provider_state(self, provider: str, windows: list[tuple[int, int]],
                             margin_ms: int, now: int) -> dict[str, Any]:
        k = self.k
        pipe = self.r.pipeline(transaction=False)
        for _, ms in windows:
            pipe.zcount(k.rate_log(provider), f"({now - ms - margin_ms}", "+inf")
            pipe.get(k.rate_hint(provider, ms))
            pipe.zrangebyscore(k.rate_log(provider), f"({now - ms - margin_ms}", "+inf",
                               start=0, num=1, withscores=True)
        pipe.get(k.cooldown(provider))
        pipe.hgetall(k.halt(provider))
        pipe.zcount(k.slots(provider), now, "+inf")
        pipe.get(k.slot_cap(provider))
        pipe.zcard(k.parked(provider))
        res = await pipe.execute()
        wins = []
        for i, (limit, ms) in enumerate(windows):
            used, hint, oldest = res[3 * i], res[3 * i + 1], res[3 * i + 2]
            reset = int(oldest[0][1]) + ms + margin_ms - now if oldest else 0
            wins.append({"limit": limit, "ms": ms, "used": int(used),
                         "provider_remaining": None if hint is None else int(hint),
                         "resets_in_ms": max(0, reset)})
        cd, halt, slots, cap, parked = res[3 * len(windows):]
        return {"windows": wins, "cooldown_ms": max(0, int(float(cd or 0)) - now),
                "halt": {str(a): str(b) for a, b in (halt or {}).items()},
                "slots_in_use": int(slots), "slot_cap_shrunk_to": None if cap is None else int(cap),
                "parked": int(parked)}

    async def queue_sizes(self, now: int) -> dict[str, int]:
        pipe = self.r.pipeline(transaction=False)
        for key in (self.k.delayed, self.k.tracking, self.k.finishq, self.k.deadlines):
            pipe.zcard(key)
        pipe.xlen(self.k.results)
        pipe.scard(self.k.orphans)
        pipe.xlen(self.k.jobs)
        pipe.zcount(self.k.delayed, "-inf", now)
        d, t, f, dl, res, orph, stream, due = await pipe.execute()
        return {"delayed": d, "tracking": t, "finishing": f, "deadlines": dl, "results": res,
                "orphans": orph, "stream_length": stream, "delayed_due": due}

    async def campaign_names(self) -> list[str]:
        return [str(x) for x in await self.r.zrange(self.k.campaigns, 0, -1)]

    async def campaign_flags(self) -> tuple[set[str], set[str]]:
        paused = {str(x) for x in await self.r.smembers(self.k.paused)}
        cancelled = {str(x) for x in await self.r.smembers(self.k.cancelled_campaigns)}
        return paused, cancelled

    async def pace(self, campaign: str | None, now: int, seconds: int = 60) -> int:
        """Call starts over the last ``seconds`` (10-second buckets)."""
        buckets = await self._hash(self.k.pace(campaign))
        first = (now - seconds * 1000) // 10000
        return sum(int(v) for b, v in buckets.items() if b.isdigit() and int(b) > first)
