"""Reading state for people: status, the console, metrics and ``explain``. Reads only."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from dispatcher.core.model import JobState
from dispatcher.store import keys as K
from dispatcher.store.protocol import JobField, PeekArgs, PeekReply
from dispatcher.store.scripts import Scripts, as_list


async def peek(scripts: Scripts, job_ids: list[str]) -> list[dict[str, Any]]:
    """Of these ids, the jobs that sleep (lua/lib/dormant.lua), read without waking them."""
    res: PeekReply = await scripts.call("peek", **PeekArgs(ids=job_ids))
    return [dict(j) for j in as_list(res["jobs"])]


class Reads:
    r: aioredis.Redis
    k: K.Keys
    s: Scripts

    async def server_ms(self) -> int:
        server_time = await self.r.time()
        return int(server_time[0]) * 1000 + int(server_time[1]) // 1000

    async def _hash(self, key: str) -> dict[str, str]:
        raw: Any = await self.r.hgetall(key)
        return {str(k): str(v) for k, v in raw.items()}

    async def job_info(self, job_id: str) -> dict[str, str]:
        """The job's hash; for a job that sleeps until it is due, what its hash will hold."""
        info = await self._hash(self.k.job(job_id))
        if not info:
            for job in await peek(self.s, [job_id]):
                info = {str(k): str(v) for k, v in job["fields"].items()}
        return info

    async def timeline(self, job_id: str) -> list[dict[str, Any]]:
        events = [str(x) for x in await self.r.lrange(self.k.timeline(job_id), 0, -1)]
        if not events:
            for job in await peek(self.s, [job_id]):
                events = [str(e) for e in as_list(job["timeline"])]
        return [json.loads(x) for x in events]

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
        group = next((x for x in groups if x.get("name") == K.GROUP), None)
        if group is None:
            return {}
        consumers: Any = await self.r.xinfo_consumers(self.k.jobs, K.GROUP)
        scored: Any = await self.r.zrange(self.k.consumers, 0, -1, withscores=True)
        beats = {str(m): float(s) for m, s in scored}
        return {"lag": group.get("lag") or 0, "pending": group.get("pending") or 0,
                "consumers": [{"name": c["name"], "pending": c["pending"],
                               "idle_ms": c["idle"],
                               "last_heartbeat_ms": int(beats.get(c["name"], 0)) or None}
                              for c in consumers]}

    async def provider_state(self, provider: str, windows: list[tuple[int, int]],
                             margin_ms: int, now: int) -> dict[str, Any]:
        keys = self.k
        pipe = self.r.pipeline(transaction=False)
        for _, ms in windows:
            pipe.zcount(keys.rate_log(provider), f"({now - ms - margin_ms}", "+inf")
            pipe.get(keys.rate_hint(provider, ms))
            pipe.zrangebyscore(keys.rate_log(provider), f"({now - ms - margin_ms}", "+inf",
                               start=0, num=1, withscores=True)
        pipe.get(keys.cooldown(provider))
        pipe.hgetall(keys.halt(provider))
        pipe.zcount(keys.slots(provider), now, "+inf")
        pipe.get(keys.slot_cap(provider))
        pipe.zcard(keys.parked(provider))
        res = await pipe.execute()
        wins = []
        for index, (limit, ms) in enumerate(windows):
            used, hint, oldest = res[3 * index], res[3 * index + 1], res[3 * index + 2]
            reset = int(oldest[0][1]) + ms + margin_ms - now if oldest else 0
            wins.append({"limit": limit, "ms": ms, "used": int(used),
                         "provider_remaining": None if hint is None else int(hint),
                         "resets_in_ms": max(0, reset)})
        cd, halt, slots, cap, parked = res[3 * len(windows):]
        return {"windows": wins, "cooldown_ms": max(0, int(float(cd or 0)) - now),
                "halt": {str(a): str(b) for a, b in (halt or {}).items()},
                "slots_in_use": int(slots), "slot_cap_shrunk_to": None if cap is None else int(cap),
                "parked": int(parked)}

    async def counts_and_parked(self, providers: Sequence[str]
                                ) -> tuple[dict[str, int], dict[str, int]]:
        """The live counts and each provider's parked set size at one instant (MULTI): a
        halt's banner and the waiting table, read apart, could straddle a resume batch."""
        pipe = self.r.pipeline(transaction=True)
        pipe.hgetall(self.k.counts)
        for provider in providers:
            pipe.zcard(self.k.parked(provider))
        raw, *sizes = await pipe.execute()
        counts = {str(k): int(v) for k, v in raw.items() if str(v).lstrip("-").isdigit()}
        return counts, {name: int(size) for name, size in zip(providers, sizes, strict=True)}

    async def queue_sizes(self, now: int) -> dict[str, int]:
        pipe = self.r.pipeline(transaction=False)
        for key in (self.k.delayed, self.k.finishq, self.k.deadlines):
            pipe.zcard(key)
        pipe.xlen(self.k.results)
        pipe.scard(self.k.orphans)
        pipe.xlen(self.k.jobs)
        pipe.zcount(self.k.delayed, "-inf", now)
        delayed, finishing, dl, res, orph, stream, due = await pipe.execute()
        tracking = int((await self.counts()).get("live", 0))
        return {"delayed": delayed, "tracking": tracking, "finishing": finishing,
                "deadlines": dl, "results": res, "orphans": orph,
                "stream_length": stream, "delayed_due": due}

    async def unconfigured_parked(self, configured: set[str]) -> dict[str, int]:
        """Jobs parked for each provider name that is not configured (none: left out)."""
        known: Any = await self.r.smembers(self.k.unknown_providers)
        names = sorted({str(n) for n in known} - configured)
        pipe = self.r.pipeline(transaction=False)
        for name in names:
            pipe.zcard(self.k.parked(name))
        return {n: int(c) for n, c in zip(names, await pipe.execute(), strict=True) if c}

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

    # -- the deployment at a glance (status, the console, the metrics collector) -------------
    async def backlog(self) -> dict[str, int]:
        """Stream entries no worker has read (``unread``) and read but not yet ingested
        (``pending``). Ingested entries are deleted, so the stream holds exactly these two:
        when Redis cannot tell the group's lag (deleted entries), it is length - pending;
        before the first worker creates the group, every entry is unread."""
        length = int(await self.r.xlen(self.k.jobs))
        try:
            groups: Any = await self.r.xinfo_groups(self.k.jobs)
        except ResponseError:
            groups = []
        group = next((x for x in groups if x.get("name") == K.GROUP), None)
        if group is None:
            return {"unread": length, "pending": 0, "length": length}
        pending = int(group.get("pending") or 0)
        lag = group.get("lag")
        unread = int(lag) if lag is not None else max(0, length - pending)
        return {"unread": unread, "pending": pending, "length": length}

    async def consumer_beats(self) -> list[tuple[str, int]]:
        """Every worker that has sent a heartbeat, with its last one (ms), newest first."""
        scored: Any = await self.r.zrevrange(self.k.consumers, 0, -1, withscores=True)
        return [(str(m), int(s)) for m, s in scored]

    async def _ready_lists(self, provider: str, priority: str) -> list[tuple[str, int]]:
        """(campaign tag, length) of every ready list of a provider and priority."""
        camps = [str(c) for c in await self.r.zrange(self.k.ready_campaigns(provider, priority),
                                                      0, 999)]
        pipe = self.r.pipeline(transaction=False)
        for tag in camps:
            pipe.llen(self.k.ready(provider, priority, None if tag == K.NO_CAMPAIGN else tag))
        return list(zip(camps, [int(n) for n in await pipe.execute()], strict=True))

    async def oldest_ready_ms(self, provider: str) -> int | None:
        """When the longest-waiting ready job of a provider became ready (None: none ready).
        Looks at the first few ids of each ready list (later ids joined later)."""
        pipe = self.r.pipeline(transaction=False)
        for prio in K.PRIORITIES:
            for camp, _ in await self._ready_lists(provider, prio):
                pipe.lrange(self.k.ready(provider, prio, None if camp == K.NO_CAMPAIGN else camp),
                            0, 4)
        heads = [str(x) for ids in await pipe.execute() for x in ids]
        pipe = self.r.pipeline(transaction=False)
        for job_id in heads:
            pipe.hmget(self.k.job(job_id), [JobField.STATE, JobField.READY_SINCE,
                                            JobField.FIRST_SEEN])
        since = [int(rs or fs or 0) for st, rs, fs in await pipe.execute()
                 if st == JobState.QUEUED]
        return min(since) if since else None

    async def queue_position(self, provider: str, priority: str, campaign: str,
                             job_id: str) -> dict[str, Any]:
        """What stands before a ready job: ids at higher priorities, ids ahead of it in its
        own list (None: not found in the first 200 000), and the other campaigns it takes
        turns with. Counts include ids of jobs that moved on and are not yet cleaned."""
        higher = 0
        for prio in K.PRIORITIES[:K.PRIORITIES.index(priority)]:
            higher += sum(n for _, n in await self._ready_lists(provider, prio))
        tag = campaign or K.NO_CAMPAIGN
        others = [(c, n) for c, n in await self._ready_lists(provider, priority) if c != tag]
        pos: Any = await self.r.lpos(self.k.ready(provider, priority, campaign or None),
                                     job_id, maxlen=200_000)
        return {"higher": higher, "ahead": None if pos is None else int(pos),
                "other_campaigns": len(others), "other_ready": sum(n for _, n in others)}

    async def stream_oldest_ms(self, key: str) -> int | None:
        """The time of a stream's first entry (its id's milliseconds), None when empty."""
        first: Any = await self.r.xrange(key, "-", "+", count=1)
        return int(str(first[0][0]).split("-")[0]) if first else None

    async def tracking_oldest_ms(self, providers: list[str], limit: int = 2000) -> int | None:
        """When the longest-followed live call started being tracked (up to ``limit`` calls
        per provider looked at)."""
        ids: list[Any] = []
        for provider in providers:
            ids += await self.r.zrange(self.k.tracking(provider), 0, limit - 1)
        pipe = self.r.pipeline(transaction=False)
        for job_id in ids:
            pipe.hget(self.k.job(str(job_id)), "track_ms")
        starts = [int(x) for x in await pipe.execute() if x]
        return min(starts) if starts else None

    async def campaign_registry(self, limit: int = 100) -> list[str]:
        """Campaigns by their last new job, most recent first."""
        return [str(x) for x in await self.r.zrevrange(self.k.campaigns, 0, limit - 1)]

    async def campaign_stats(self, names: list[str], now: int,
                             seconds: int = 300) -> dict[str, dict[str, Any]]:
        """Per campaign: its counts, call starts over the last ``seconds`` and live calls
        against its own cap."""
        pipe = self.r.pipeline(transaction=False)
        for name in names:
            pipe.hgetall(self.k.campaign(name))
            pipe.hgetall(self.k.pace(name))
            pipe.zcount(self.k.campaign_slots(name), now, "+inf")
        res = await pipe.execute()
        first = (now - seconds * 1000) // 10000
        out = {}
        for index, name in enumerate(names):
            counts, pace, live = res[3 * index], res[3 * index + 1], res[3 * index + 2]
            out[name] = {"counts": {str(k): int(v) for k, v in counts.items()
                                 if str(v).lstrip("-").isdigit()},
                      "starts": sum(int(v) for b, v in pace.items()
                                    if str(b).isdigit() and int(b) > first),
                      "cap_live": int(live)}
        return out

    async def campaign_known(self, name: str) -> bool:
        """True once a job of the campaign was seen (or the campaign was paused/cancelled)."""
        return await self.r.zscore(self.k.campaigns, name) is not None
